"use client";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { api, call, type Schemas } from "@/lib/api";
import { addToCart } from "@/lib/cart";
import { categoryNames, nameOf } from "@/lib/categories";
import { formatCount } from "@/lib/money";
import {
  chips,
  isSearching,
  pageCount,
  parseSearch,
  searchHref,
  SORTS,
  toApiQuery,
  withChange,
  type SearchState,
} from "@/lib/searchState";
import { useLoad } from "@/lib/useLoad";
import { ByImage } from "./ByImage";
import { Facets } from "./Facets";
import { GridSkeleton, ImageGrid } from "./ImageGrid";
import { SearchBox } from "./SearchBox";
import { EmptyState, ErrorState } from "./States";

type Results = Schemas["SearchOut"];
const SORT_LABELS = { relevance: "Most relevant", newest: "Newest", popular: "Most popular" } as const;

function useCategoryNames() {
  const [map, setMap] = useState<Map<string, string>>();
  useEffect(() => void categoryNames().then(setMap), []);
  return (slug: string) => nameOf(map, slug);
}

function useQuickAdd() {
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const add = (item: { id: string; title: string }) =>
    addToCart({ image_id: item.id, license_type: "standard", title: item.title }).then(
      () => setMessage({ ok: true, text: `Added “${item.title}” (standard licence) to your cart.` }),
      (err: unknown) => setMessage({ ok: false, text: err instanceof Error ? err.message : String(err) }),
    );
  const notice = message && (
    <p className={`notice ${message.ok ? "success" : "error"}`} role="status">
      {message.text} {message.ok && <Link href="/cart/">View cart</Link>}
    </p>
  );
  return { add, notice };
}

function Pager({ state, total }: { state: SearchState; total: number }) {
  const pages = pageCount(total);
  if (pages <= 1) return null;
  const link = (page: number) => searchHref({ ...state, page });
  return (
    <nav className="pager" aria-label="Pages">
      {state.page > 1 ? (
        <Link className="button quiet small" href={link(state.page - 1)}>
          ← Previous
        </Link>
      ) : null}
      <span className="muted">
        Page {state.page} of {formatCount(pages)}
      </span>
      {state.page < pages ? (
        <Link className="button quiet small" href={link(state.page + 1)} rel="next">
          Next →
        </Link>
      ) : null}
    </nav>
  );
}

function ResultsView({ state }: { state: SearchState }) {
  const router = useRouter();
  const categoryName = useCategoryNames();
  const href = searchHref(state);
  const results = useLoad(() => call(api.GET("/api/search", { params: { query: toApiQuery(state) } })), href);
  const { add, notice } = useQuickAdd();
  const applied = chips(state, categoryName);
  const words = state.q.trim();

  return (
    <div className="results-layout">
      <aside>
        {results.status === "ready" ? (
          <Facets facets={results.data.facets} state={state} categoryName={categoryName} />
        ) : (
          <div className="facets" aria-hidden="true">
            <div className="skeleton skeleton-line" />
            <div className="skeleton skeleton-line" />
            <div className="skeleton skeleton-line" />
          </div>
        )}
      </aside>
      <section aria-labelledby="results-heading">
        <div className="toolbar">
          <h1 id="results-heading" style={{ margin: 0, fontSize: "1.35rem" }}>
            {words ? `“${words}”` : "All images"}
            {results.status === "ready" && (
              <span className="muted" style={{ fontWeight: 400, fontSize: "1rem" }}>
                {" "}
                · {formatCount(results.data.total)} {results.data.total === 1 ? "image" : "images"}
              </span>
            )}
          </h1>
          <span className="spacer" />
          <label htmlFor="sort">Sort</label>
          <select
            id="sort"
            value={state.sort}
            onChange={(e) => router.push(searchHref(withChange(state, { sort: e.target.value as SearchState["sort"] })))}
          >
            {SORTS.map((s) => (
              <option key={s} value={s}>
                {SORT_LABELS[s]}
              </option>
            ))}
          </select>
        </div>
        {applied.length > 0 && (
          <ul className="chips" aria-label="Applied filters" style={{ marginBottom: "var(--space-4)" }}>
            {applied.map((chip) => (
              <li key={chip.key}>
                <Link className="chip applied" href={chip.href} aria-label={`Remove filter ${chip.label}`}>
                  {chip.label} <span className="x" aria-hidden="true">×</span>
                </Link>
              </li>
            ))}
            <li>
              <Link className="chip" href={searchHref({ q: state.q, sort: state.sort, page: 1 })}>
                Clear all
              </Link>
            </li>
          </ul>
        )}
        {notice}
        {results.status === "loading" && <GridSkeleton />}
        {results.status === "error" && <ErrorState error={results.error} retry={results.reload} />}
        {results.status === "ready" &&
          (results.data.items.length ? (
            <>
              <ImageGrid items={results.data.items} label="Search results" onQuickAdd={add} />
              <Pager state={state} total={results.data.total} />
            </>
          ) : (
            <EmptyState
              title={words ? `No images for “${words}”` : "No images match these filters"}
              actions={
                applied.length > 0 ? (
                  <Link className="button secondary" href={searchHref({ q: state.q, sort: state.sort, page: 1 })}>
                    Remove the filters
                  </Link>
                ) : (
                  <Link className="button secondary" href="/">
                    Browse the newest images
                  </Link>
                )
              }
            >
              <p>Try fewer or different words, remove a filter, or search by image with a picture of what you need.</p>
            </EmptyState>
          ))}
      </section>
    </div>
  );
}

function ByImageResults({ file, onClear }: { file: File; onClear: () => void }) {
  const results = useLoad(
    () =>
      call(
        api.POST("/api/search/by-image", {
          params: { query: { per_page: 48 } },
          body: file as unknown as string,
          bodySerializer: (body: unknown) => body as Blob,
          headers: { "Content-Type": file.type },
        }),
      ),
    `${file.name}:${file.size}:${file.lastModified}`,
  );
  const { add, notice } = useQuickAdd();
  return (
    <section aria-labelledby="by-image-heading" className="stack">
      <div className="toolbar">
        <h1 id="by-image-heading" style={{ margin: 0, fontSize: "1.35rem" }}>
          Images like “{file.name}”
        </h1>
        <span className="spacer" />
        <button type="button" className="button quiet small" onClick={onClear}>
          Clear picture
        </button>
      </div>
      {notice}
      {results.status === "loading" && <GridSkeleton />}
      {results.status === "error" && <ErrorState error={results.error} retry={results.reload} />}
      {results.status === "ready" &&
        (results.data.items.length ? (
          <ImageGrid items={results.data.items} label="Similar images" onQuickAdd={add} />
        ) : (
          <EmptyState title="No similar images yet">
            <p>Try another picture, or search with words.</p>
          </EmptyState>
        ))}
    </section>
  );
}

function Home() {
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
    <div className="stack">
      {picture ? (
        <ByImageResults file={picture} onClear={() => setPicture(null)} />
      ) : searching ? (
        <ResultsView state={state} />
      ) : (
        <Home />
      )}
      <ByImage onPicture={setPicture} />
    </div>
  );
}
