"use client";
import Link from "next/link";
import type { Schemas } from "@/lib/api";
import { swatch } from "@/lib/colours";
import { formatCount } from "@/lib/money";
import { addedOptions, filterLabel, sizeOptions } from "@/lib/searchLabels";
import {
  searchHref,
  withChange,
  type FilterKey,
  type SearchState,
} from "@/lib/searchState";

type FacetValue = { value: string; count?: number };


function Group({
  title,
  filter,
  values,
  state,
  categoryName,
}: {
  title: string;
  filter: FilterKey;
  values: FacetValue[];
  state: SearchState;
  categoryName?: (slug: string) => string;
}) {
  if (!values.length) return null;
  const applied = state[filter];
  return (
    <details open>
      <summary>{title}</summary>
      <ul>
        {values.map(({ value, count }) => {
          const on = applied === value;
          const href = searchHref(withChange(state, { [filter]: on ? undefined : value }));
          return (
            <li key={value}>
              <Link href={href} aria-current={on ? "true" : undefined} scroll={false}>
                <span>
                  {filter === "color" && (
                    <span className="swatch" style={{ background: swatch(value) }} aria-hidden="true" />
                  )}
                  {filterLabel(filter, value, categoryName)}
                </span>
                {count !== undefined && <span className="count">{formatCount(count)}</span>}
              </Link>
            </li>
          );
        })}
      </ul>
    </details>
  );
}

/** Filters with the counts the search returned; choosing one adds it to the URL, choosing it again removes it. */
export function Facets({
  facets,
  state,
  categoryName,
}: {
  facets: Schemas["Facets"] | null | undefined;
  state: SearchState;
  categoryName: (slug: string) => string;
}) {
  const withApplied = (key: FilterKey, values: FacetValue[]) => {
    const applied = state[key];
    return applied && !values.some((v) => v.value === applied) ? [{ value: applied }, ...values] : values;
  };
  return (
    <nav className="facets" aria-label="Filters">
      <Group title="Category" filter="category" values={withApplied("category", facets?.category ?? [])} state={state} categoryName={categoryName} />
      <Group title="Orientation" filter="orientation" values={withApplied("orientation", facets?.orientation ?? [])} state={state} />
      <Group title="Colour" filter="color" values={withApplied("color", facets?.color ?? [])} state={state} />
      <Group title="Licence use" filter="license" values={withApplied("license", facets?.license ?? [])} state={state} />
      <Group title="Size" filter="size" values={sizeOptions().map((o) => ({ value: o.value }))} state={state} />
      <Group title="Date added" filter="added" values={addedOptions().map((o) => ({ value: o.value }))} state={state} />
    </nav>
  );
}
