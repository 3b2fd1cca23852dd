import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it, vi } from "vitest";

const at = vi.hoisted(() => ({ path: "/admin/" }));
vi.mock("next/navigation", () => ({ usePathname: () => at.path }));

const { SectionNav } = await import("./SectionNav");

const LINKS = [
  { href: "/admin/", text: "Review queue", short: "Queue" },
  { href: "/admin/pricing/", text: "Pricing" },
  { href: "/admin/audit/", text: "Audit log" },
];

function render(path: string, layout?: "wrap" | "fill" | "scroll") {
  at.path = path;
  return renderToStaticMarkup(createElement(SectionNav, { label: "Console", links: LINKS, layout }));
}

/** Each tab as markup shows it: its inner HTML, and whether it is marked as the current page. */
function tabs(html: string) {
  return [...html.matchAll(/<a([^>]*)>(.*?)<\/a>/g)].map(([, attrs, inner]) => ({
    current: attrs!.includes('aria-current="page"'),
    inner,
  }));
}

describe("the section's tab bar", () => {
  it("is a labelled navigation whose current tab, and only that one, is the page", () => {
    const html = render("/admin/audit/");
    expect(html).toMatch(/^<nav class="section-nav wrap" aria-label="Console">/);
    expect(tabs(html).filter((t) => t.current)).toEqual([{ current: true, inner: "Audit log" }]);
  });

  it("gives a tab with a short label both, for the stylesheet to show one by width", () => {
    expect(tabs(render("/admin/pricing/"))).toEqual([
      { current: false, inner: '<span class="tab-long">Review queue</span><span class="tab-short">Queue</span>' },
      { current: true, inner: "Pricing" },
      { current: false, inner: "Audit log" },
    ]);
  });

  it("takes its layout as a class: wrapping rows by default, an even row on phones, or a sliding strip", () => {
    expect(render("/admin/", "fill")).toMatch(/^<nav class="section-nav fill" aria-label="Console">/);
  });

  it("as a sliding strip, starts with no cue until it has measured what the screen hides", () => {
    const html = render("/admin/", "scroll");
    expect(html).toMatch(/^<nav class="section-nav scroll" aria-label="Console" data-more="">/);
    expect(html).not.toContain("section-nav-cue");
  });
});
