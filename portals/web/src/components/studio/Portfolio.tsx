"use client";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useId, useState, type FormEvent } from "react";
import { api, call, type Schemas } from "@/lib/api";
import { portfolioEmpty } from "@/lib/studioEmpty";
import { useLoad } from "@/lib/useLoad";
import { EmptyState, ErrorState } from "../States";

type Status = NonNullable<Schemas["PortfolioParams"]["status"]>;
const STATUSES: { value: Status | ""; label: string }[] = [
  { value: "", label: "All" },
  { value: "pending", label: "Processing" },
  { value: "flagged", label: "In review" },
  { value: "approved", label: "Live" },
  { value: "rejected", label: "Rejected" },
  { value: "removed", label: "Taken down" },
];
const LABEL: Record<Status, string> = {
  pending: "Processing",
  flagged: "In review",
  approved: "Live",
  rejected: "Rejected",
  removed: "Taken down",
};
const TONE: Record<Status, string> = {
  pending: "progress",
  flagged: "warning",
  approved: "success",
  rejected: "danger",
  removed: "danger",
};
const PER_PAGE = 24;

/** Search over one's own photos in every state; the URL holds the query, status and page. */
export function Portfolio() {
  const params = useSearchParams();
  const router = useRouter();
  const q = params.get("q") ?? "";
  const status = (params.get("status") ?? "") as Status | "";
  const page = Math.max(1, Number(params.get("page") ?? "1") || 1);
  const [draft, setDraft] = useState(q);
  const searchId = useId();

  const href = (next: { q?: string; status?: string; page?: number }) => {
    const out = new URLSearchParams();
    const merged = { q, status, page: 1, ...next };
    if (merged.q) out.set("q", merged.q);
    if (merged.status) out.set("status", merged.status);
    if (merged.page > 1) out.set("page", String(merged.page));
    const query = out.toString();
    return `/contributor/portfolio/${query ? `?${query}` : ""}`;
  };

  const results = useLoad(
    () =>
      call(
        api.GET("/api/contributor/search", {
          params: { query: { q: q || undefined, status: status || undefined, page, per_page: PER_PAGE } },
        }),
      ),
    `${q}|${status}|${page}`,
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    router.push(href({ q: draft.trim() }));
  };

  return (
    <div className="stack">
      <form role="search" className="searchbox" onSubmit={submit}>
        <label htmlFor={searchId} className="visually-hidden">
          Search your photos
        </label>
        <input
          id={searchId}
          type="search"
          value={draft}
          placeholder="Title or keyword"
          onChange={(e) => setDraft(e.target.value)}
        />
        <button type="submit" className="button">
          Search
        </button>
      </form>
      <nav aria-label="Filter by status">
        <ul className="chips">
          {STATUSES.map((s) => (
            <li key={s.value}>
              <Link
                href={href({ status: s.value })}
                className={`chip${status === s.value ? " applied" : ""}`}
                aria-current={status === s.value ? "true" : undefined}
              >
                {s.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>

      {results.status === "loading" && (
        <ul className="portfolio-grid" aria-busy="true" aria-label="Loading">
          {Array.from({ length: 8 }, (_, i) => (
            <li key={i} className="portfolio-card">
              <div className="skeleton portfolio-thumb" />
              <div className="skeleton skeleton-line" />
            </li>
          ))}
        </ul>
      )}
      {results.status === "error" && <ErrorState error={results.error} retry={results.reload} />}
      {results.status === "ready" && results.data.items.length === 0 && (
        <PortfolioEmpty q={q} status={status} page={page} total={results.data.total} href={href} />
      )}
      {results.status === "ready" && results.data.items.length > 0 && (
        <>
          <p className="muted" role="status">
            {new Intl.NumberFormat().format(results.data.total)} {results.data.total === 1 ? "photo" : "photos"}
          </p>
          <ul className="portfolio-grid">
            {results.data.items.map((item) => (
              <li key={item.id} className="portfolio-card">
                <Link href={`/contributor/image/?id=${item.id}`} className="portfolio-link">
                  {item.thumbnail_url ? (
                    <img
                      src={item.thumbnail_url}
                      alt={item.title || "Untitled photo"}
                      width={item.width ?? 300}
                      height={item.height ?? 200}
                      loading="lazy"
                      className="portfolio-thumb"
                    />
                  ) : (
                    <div className="portfolio-thumb placeholder" aria-hidden="true" />
                  )}
                </Link>
                <strong className="portfolio-title">{item.title || "Untitled"}</strong>
                <span className={`pill ${TONE[item.status]}`}>{LABEL[item.status]}</span>
                {item.status_reason && <p className="muted small">{item.status_reason}</p>}
              </li>
            ))}
          </ul>
          <Pager page={page} total={results.data.total} perPage={PER_PAGE} href={(p) => href({ page: p })} />
        </>
      )}
    </div>
  );
}

function PortfolioEmpty({
  href,
  ...where
}: {
  q: string;
  status: Status | "";
  page: number;
  total: number;
  href: (next: { q?: string; status?: string; page?: number }) => string;
}) {
  const copy = portfolioEmpty(where);
  const target = {
    upload: "/contributor/",
    "all-statuses": href({ status: "" }),
    "no-search": href({ q: "" }),
    "first-page": href({ page: 1 }),
  }[copy.action.to];
  return (
    <EmptyState
      title={copy.title}
      actions={
        <Link className={copy.action.to === "upload" ? "button" : "button secondary"} href={target}>
          {copy.action.label}
        </Link>
      }
    >
      <p>{copy.text}</p>
    </EmptyState>
  );
}

export function Pager({
  page,
  total,
  perPage,
  href,
}: {
  page: number;
  total: number;
  perPage: number;
  href: (page: number) => string;
}) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (pages <= 1) return null;
  return (
    <nav className="pager" aria-label="Pages">
      {page > 1 && (
        <Link className="button small secondary" href={href(page - 1)}>
          Previous
        </Link>
      )}
      <span className="muted">
        Page {page} of {pages}
      </span>
      {page < pages && (
        <Link className="button small secondary" href={href(page + 1)}>
          Next
        </Link>
      )}
    </nav>
  );
}
