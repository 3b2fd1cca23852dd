// The whole search lives in the URL (?q=...&orientation=...&page=2), so back/forward and a shared
// link give the same results. This module is the one place that reads, writes and explains it.
import type { paths } from "@/api/schema";

export type SearchQuery = NonNullable<paths["/api/search"]["get"]["parameters"]["query"]>;

export const ORIENTATIONS = ["landscape", "portrait", "square"] as const;
export const LICENSES = ["commercial", "editorial"] as const;
export const SORTS = ["relevance", "newest", "popular"] as const;
// The search service keeps browse counts at these widths (SEARCH_COUNTED_MIN_WIDTHS): change both together.
export const SIZES = { large: 2500, xlarge: 4000 } as const;
export const ADDED = { day: 1, week: 7, month: 30, year: 365 } as const;

type Orientation = (typeof ORIENTATIONS)[number];
type LicenseUse = (typeof LICENSES)[number];
type Sort = (typeof SORTS)[number];
type Size = keyof typeof SIZES;
type Added = keyof typeof ADDED;

export type SearchState = {
  q: string;
  category?: string;
  orientation?: Orientation;
  color?: string;
  license?: LicenseUse;
  size?: Size;
  added?: Added;
  contributor?: string;
  sort: Sort;
  page: number;
};

export type FilterKey = "category" | "orientation" | "color" | "license" | "size" | "added" | "contributor";
export const FILTER_KEYS: readonly FilterKey[] = [
  "category",
  "orientation",
  "color",
  "license",
  "size",
  "added",
  "contributor",
];
export const PER_PAGE = 24;
export const MAX_PAGE = 100;

function oneOf<T extends string>(values: readonly T[], value: string | null): T | undefined {
  return values.find((v) => v === value);
}

function text(value: string | null, max: number): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed.slice(0, max) : undefined;
}

/** Reads the URL; anything unknown or malformed is dropped rather than sent to the API. */
export function parseSearch(params: URLSearchParams): SearchState {
  const page = Number.parseInt(params.get("page") ?? "1", 10);
  return {
    q: (params.get("q") ?? "").replace(/[\x00-\x1f\x7f]/g, " ").slice(0, 200),
    category: text(params.get("category"), 64),
    orientation: oneOf(ORIENTATIONS, params.get("orientation")),
    color: text(params.get("color"), 32),
    license: oneOf(LICENSES, params.get("license")),
    size: oneOf(Object.keys(SIZES) as Size[], params.get("size")),
    added: oneOf(Object.keys(ADDED) as Added[], params.get("added")),
    contributor: text(params.get("contributor"), 128),
    sort: oneOf(SORTS, params.get("sort")) ?? "relevance",
    page: Number.isFinite(page) ? Math.min(Math.max(page, 1), MAX_PAGE) : 1,
  };
}

/** The query string for a state, defaults left out so links stay short. */
export function searchHref(state: SearchState): string {
  const params = new URLSearchParams();
  if (state.q.trim()) params.set("q", state.q.trim());
  for (const key of FILTER_KEYS) {
    const value = state[key];
    if (value) params.set(key, value);
  }
  if (state.sort !== "relevance") params.set("sort", state.sort);
  if (state.page > 1) params.set("page", String(state.page));
  const qs = params.toString();
  return qs ? `/?${qs}` : "/";
}

export function isSearching(state: SearchState): boolean {
  return Boolean(state.q.trim()) || FILTER_KEYS.some((key) => state[key]);
}

/** A changed filter, sort or query starts again at page 1. */
export function withChange(state: SearchState, change: Partial<Omit<SearchState, "page">>): SearchState {
  return { ...state, ...change, page: 1 };
}

export function withoutFilter(state: SearchState, key: FilterKey): SearchState {
  return withChange(state, { [key]: undefined });
}

/** The API's parameters; relative dates become absolute at the moment of the request. */
export function toApiQuery(state: SearchState, now: Date = new Date()): SearchQuery {
  const query: SearchQuery = { page: state.page, per_page: PER_PAGE, sort: state.sort, facets: true };
  if (state.q.trim()) query.q = state.q.trim();
  if (state.category) query.category = state.category;
  if (state.orientation) query.orientation = state.orientation;
  if (state.color) query.color = state.color;
  if (state.license) query.license = state.license;
  if (state.contributor) query.contributor = state.contributor;
  if (state.size) query.min_width = SIZES[state.size];
  if (state.added) query.added_after = new Date(now.getTime() - ADDED[state.added] * 86_400_000).toISOString();
  return query;
}

export function capitalize(value: string): string {
  return value.charAt(0).toUpperCase() + value.slice(1).replace(/-/g, " ");
}

export function pageCount(total: number): number {
  return Math.min(Math.max(Math.ceil(total / PER_PAGE), 1), MAX_PAGE);
}
