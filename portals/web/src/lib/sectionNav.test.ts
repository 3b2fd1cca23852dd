import { describe, expect, it } from "vitest";
import { currentHref, hiddenSides, pageStep, scrollToShow } from "./sectionNav";

const CONSOLE = ["/admin/", "/admin/search/", "/admin/categories/", "/admin/audit/"];

describe("the current tab", () => {
  it("is the longest href the path starts with, with or without its trailing slash", () => {
    expect(currentHref("/admin/", CONSOLE)).toBe("/admin/");
    expect(currentHref("/admin/audit/", CONSOLE)).toBe("/admin/audit/");
    expect(currentHref("/admin/audit", CONSOLE)).toBe("/admin/audit/");
    expect(currentHref("/admin/search/some-image/", CONSOLE)).toBe("/admin/search/");
  });

  it("is none outside the section, and a prefix of a word is not a match", () => {
    expect(currentHref("/contributor/", CONSOLE)).toBeUndefined();
    expect(currentHref("/admin/searching/", ["/admin/search/"])).toBeUndefined();
  });
});

// A 343 px strip (a 375 px phone less the page's padding) over a 540 px row of tabs.
const PHONE = { clientWidth: 343, scrollWidth: 540 };

describe("the strip's cues", () => {
  it("show on each side that hides tabs", () => {
    expect(hiddenSides({ ...PHONE, scrollLeft: 0 })).toEqual({ start: false, end: true });
    expect(hiddenSides({ ...PHONE, scrollLeft: 100 })).toEqual({ start: true, end: true });
    expect(hiddenSides({ ...PHONE, scrollLeft: 197 })).toEqual({ start: true, end: false });
  });

  it("do not show on a row that fits, nor for a sub-pixel short of either end", () => {
    expect(hiddenSides({ scrollLeft: 0, clientWidth: 1376, scrollWidth: 1376 })).toEqual({ start: false, end: false });
    expect(hiddenSides({ ...PHONE, scrollLeft: 196.5 })).toEqual({ start: true, end: false });
    expect(hiddenSides({ ...PHONE, scrollLeft: 0.5 })).toEqual({ start: false, end: true });
  });

  it("slide most of a screen per press", () => {
    expect(pageStep(343)).toBe(240);
    expect(pageStep(0)).toBe(1);
  });
});

describe("bringing a tab into view", () => {
  const margin = 36;

  it("leaves the strip where it is when the tab already shows whole and clear of the cues", () => {
    expect(scrollToShow({ ...PHONE, scrollLeft: 0 }, { left: 0, width: 60 }, margin, "center")).toBe(0);
    expect(scrollToShow({ ...PHONE, scrollLeft: 100 }, { left: 150, width: 80 }, margin, "nearest")).toBe(100);
  });

  it("centres the current tab on arrival, but never scrolls past either end", () => {
    expect(scrollToShow({ ...PHONE, scrollLeft: 0 }, { left: 300, width: 80 }, margin, "center")).toBe(169);
    // The last tab: as far as the strip goes, which is enough to show it whole.
    expect(scrollToShow({ ...PHONE, scrollLeft: 0 }, { left: 470, width: 70 }, margin, "center")).toBe(197);
    // The first tab, with the strip scrolled away from it: back to the start.
    expect(scrollToShow({ ...PHONE, scrollLeft: 197 }, { left: 0, width: 60 }, margin, "center")).toBe(0);
  });

  it("following the focus, moves a tab just inside the edge it was hidden by", () => {
    // Tabbing forward onto a tab cut by the right-hand cue.
    expect(scrollToShow({ ...PHONE, scrollLeft: 0 }, { left: 290, width: 70 }, margin, "nearest")).toBe(53);
    // Shift+Tab back onto a tab under the left-hand cue.
    expect(scrollToShow({ ...PHONE, scrollLeft: 197 }, { left: 200, width: 70 }, margin, "nearest")).toBe(164);
  });

  it("does nothing on a row that fits", () => {
    const wide = { scrollLeft: 0, clientWidth: 1376, scrollWidth: 1376 };
    expect(scrollToShow(wide, { left: 1300, width: 76 }, margin, "center")).toBe(0);
  });
});
