import { api, call } from "./api";
import { capitalize } from "./searchState";

let names: Promise<Map<string, string>> | null = null;

/** Category names by slug, fetched once per page load (they change rarely). */
export function categoryNames(): Promise<Map<string, string>> {
  names ??= call(api.GET("/api/categories")).then(
    (list) => new Map(list.items.map((c) => [c.slug, c.name])),
    () => {
      names = null;
      return new Map<string, string>();
    },
  );
  return names;
}

export function nameOf(map: Map<string, string> | undefined, slug: string): string {
  return map?.get(slug) ?? capitalize(slug);
}
