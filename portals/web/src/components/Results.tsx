"use client";
// The results view, split from the search page so a visitor landing on the home page does not load it.
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useState, type ReactNode } from "react";
import { api, call } from "@/lib/api";
import { categoryNames, nameOf } from "@/lib/categories";
import { formatCount } from "@/lib/money";
import { chips } from "@/lib/searchLabels";
import {
  pageCount,
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
import { EmptyState, ErrorState } from "./States";
import { useQuickAdd } from "./useQuickAdd";

const SORT_LABELS = { relevance: "Most relevant", newest: "Newest", popular: "Most popular" } as const;

function useCategoryNames() {
  const [map, setMap] = useState<Map<string, string>>();
  useEffect(() => void categoryNames().then(setMap), []);
  return (slug: string) => nameOf(map, slug);
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

/** Filters beside the grid on wide screens; on phones folded behind one button so results come first. */
function FiltersToggle({ applied, children }: { applied: number; children: ReactNode }) {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const wide = window.matchMedia("(min-width: 960px)");
    const follow = () => setOpen(wide.matches);
    follow();
    wide.addEventListener("change", follow);
    return () => wide.removeEventListener("change", follow);
  }, []);
  return (
    <details className="filters" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{applied ? `Filters (${applied} applied)` : "Filters"}</summary>
      {children}
    </details>
  );
}

export function ResultsView({ state, onPicture }: { state: SearchState; onPicture: (file: File) => void }) {
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
        <FiltersToggle applied={applied.length}>
          {results.status === "ready" ? (
            <Facets facets={results.data.facets} state={state} categoryName={categoryName} />
          ) : (
            <div className="facets" aria-hidden="true">
              <div className="skeleton skeleton-line" />
              <div className="skeleton skeleton-line" />
              <div className="skeleton skeleton-line" />
            </div>
          )}
        </FiltersToggle>
      </aside>
      <section aria-labelledby="results-heading">
        <div className="toolbar">
          <h1 id="results-heading" style={{ margin: 0, fontSize: "1.35rem" }}>
            {words ? `“${words}”` : "All images"}
            {results.status === "ready" && (
              <span className="muted" style={{ fontWeight: 400, fontSize: "1rem" }}>
                {" "}
                · {results.data.total_is_estimate ? "about " : ""}
                {formatCount(results.data.total)} {results.data.total === 1 ? "image" : "images"}
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
              <div style={{ marginTop: "var(--space-5)" }}>
                <ByImage onPicture={onPicture} />
              </div>
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
              <ByImage onPicture={onPicture} />
            </EmptyState>
          ))}
      </section>
    </div>
  );
}

export function ByImageResults({ file, onClear }: { file: File; onClear: () => void }) {
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

