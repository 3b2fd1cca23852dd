// Words for the search state: filter labels, chips and options (kept apart from searchState.ts so
// the home page, which only reads and writes the URL, does not ship them).
import {
  ADDED,
  capitalize,
  FILTER_KEYS,
  SIZES,
  searchHref,
  withoutFilter,
  type FilterKey,
  type SearchState,
} from "./searchState";

type Size = keyof typeof SIZES;
type Added = keyof typeof ADDED;
type LicenseUse = "commercial" | "editorial";

const SIZE_LABELS: Record<Size, string> = { large: "Large (2,500 px wide or more)", xlarge: "Extra large (4,000 px+)" };
const ADDED_LABELS: Record<Added, string> = {
  day: "Past 24 hours",
  week: "Past week",
  month: "Past month",
  year: "Past year",
};
const LICENSE_LABELS: Record<LicenseUse, string> = { commercial: "Commercial use", editorial: "Editorial use" };

export function filterLabel(key: FilterKey, value: string, categoryName?: (slug: string) => string): string {
  switch (key) {
    case "category":
      return categoryName?.(value) ?? capitalize(value);
    case "size":
      return SIZE_LABELS[value as Size] ?? value;
    case "added":
      return ADDED_LABELS[value as Added] ?? value;
    case "license":
      return LICENSE_LABELS[value as LicenseUse] ?? value;
    case "contributor":
      return `By ${value}`;
    default:
      return capitalize(value);
  }
}

export type Chip = { key: FilterKey; label: string; href: string };

/** One removable chip per applied filter, each linking to the search without it. */
export function chips(state: SearchState, categoryName?: (slug: string) => string): Chip[] {
  return FILTER_KEYS.flatMap((key) => {
    const value = state[key];
    if (!value) return [];
    return [{ key, label: filterLabel(key, value, categoryName), href: searchHref(withoutFilter(state, key)) }];
  });
}

export function sizeOptions(): { value: Size; label: string }[] {
  return (Object.keys(SIZES) as Size[]).map((value) => ({ value, label: SIZE_LABELS[value] }));
}

export function addedOptions(): { value: Added; label: string }[] {
  return (Object.keys(ADDED) as Added[]).map((value) => ({ value, label: ADDED_LABELS[value] }));
}

