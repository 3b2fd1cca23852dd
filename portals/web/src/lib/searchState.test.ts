import { describe, expect, it } from "vitest";
import { chips } from "./searchLabels";
import { parseSearch, searchHref, toApiQuery, withChange, pageCount } from "./searchState";

const parse = (qs: string) => parseSearch(new URLSearchParams(qs));

describe("search state in the URL", () => {
  it("round-trips every filter, the sort and the page through the link", () => {
    const href = "/?q=red+bicycle&category=travel&orientation=portrait&color=red&license=editorial&size=large&added=week&sort=newest&page=3";
    expect(searchHref(parse(href.slice(2)))).toBe(href);
  });

  it("narrows to one contributor, shown as a chip", () => {
    const state = parse("contributor=carol");
    expect(toApiQuery(state).contributor).toBe("carol");
    expect(chips(state).map((c) => [c.label, c.href])).toEqual([["By carol", "/"]]);
  });

  it("drops unknown or malformed values instead of sending them to the API", () => {
    const state = parse("orientation=diagonal&sort=random&page=-4&size=huge&license=any&q=%00cats");
    expect(state).toMatchObject({ orientation: undefined, sort: "relevance", page: 1, size: undefined, license: undefined });
    expect(state.q).toBe(" cats");
    expect(parse("page=9999").page).toBe(100);
  });

  it("starts a changed search at page one", () => {
    expect(withChange(parse("q=cats&page=4"), { orientation: "square" }).page).toBe(1);
  });

  it("gives one chip per filter, each linking to the search without it", () => {
    const list = chips(parse("q=cats&orientation=square&added=day&page=2"));
    expect(list.map((c) => [c.label, c.href])).toEqual([
      ["Square", "/?q=cats&added=day"],
      ["Past 24 hours", "/?q=cats&orientation=square"],
    ]);
  });

  it("turns relative dates and sizes into the API's absolute parameters", () => {
    const query = toApiQuery(parse("q=cats&size=xlarge&added=week"), new Date("2026-12-08T12:00:00Z"));
    expect(query).toMatchObject({ q: "cats", min_width: 4000, added_after: "2026-12-01T12:00:00.000Z", page: 1 });
  });

  it("counts pages, never fewer than one or more than the API serves", () => {
    expect([pageCount(0), pageCount(24), pageCount(25), pageCount(1_000_000)]).toEqual([1, 1, 2, 100]);
  });
});
