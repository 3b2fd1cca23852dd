"use client";
import { useSearchParams } from "next/navigation";
import { lazy, Suspense, useEffect, useState } from "react";
import { api, call } from "@/lib/api";
import { isSearching, parseSearch } from "@/lib/searchState";
import { useLoad } from "@/lib/useLoad";
import { GridSkeleton, ImageGrid } from "./ImageGrid";
import { SearchBox } from "./SearchBox";
import { EmptyState, ErrorState } from "./States";
import { useQuickAdd } from "./useQuickAdd";

// Loaded when needed, so the home page's first load stays small (it is most visitors' first page).
const ResultsView = lazy(() => import("./Results").then((m) => ({ default: m.ResultsView })));
const ByImageResults = lazy(() => import("./Results").then((m) => ({ default: m.ByImageResults })));
const ByImage = lazy(() => import("./ByImage").then((m) => ({ default: m.ByImage })));

function Home({ onPicture }: { onPicture: (file: File) => void }) {
  const latest = useLoad(
    () => call(api.GET("/api/search", { params: { query: { sort: "newest", per_page: 24, facets: false } } })),
    "home",
  );
  const { add, notice } = useQuickAdd();
  return (
    <>
      <section className="hero" aria-labelledby="hero-heading">
        <h1 id="hero-heading">Photos for every story</h1>
        <p>Search images from independent photographers and license them in a minute.</p>
        <SearchBox big autoFocus />
        <Suspense fallback={<div className="dropzone">Search by image</div>}>
          <ByImage onPicture={onPicture} />
        </Suspense>
      </section>
      <section aria-labelledby="latest-heading" className="stack">
        <h2 id="latest-heading">Newest images</h2>
        {notice}
        {latest.status === "loading" && <GridSkeleton />}
        {latest.status === "error" && <ErrorState error={latest.error} retry={latest.reload} />}
        {latest.status === "ready" &&
          (latest.data.items.length ? (
            <ImageGrid items={latest.data.items} label="Newest images" onQuickAdd={add} />
          ) : (
            <EmptyState title="No images yet">
              <p>Contributors have not published any photos yet. Sign in as a contributor to upload the first ones.</p>
            </EmptyState>
          ))}
      </section>
    </>
  );
}

export function SearchPage() {
  const params = useSearchParams();
  const state = parseSearch(new URLSearchParams(params.toString()));
  const [picture, setPicture] = useState<File | null>(null);
  const searching = isSearching(state);

  useEffect(() => setPicture(null), [params]);

  return (
    <Suspense fallback={<GridSkeleton />}>
    <div className="stack">
      {picture ? (
        <ByImageResults file={picture} onClear={() => setPicture(null)} />
      ) : searching ? (
        <ResultsView state={state} onPicture={setPicture} />
      ) : (
        <Home onPicture={setPicture} />
      )}
    </div>
    </Suspense>
  );
}
