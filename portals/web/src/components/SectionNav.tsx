"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useCallback, useEffect, useRef, useState, type FocusEvent } from "react";
import { currentHref, hiddenSides, pageStep, scrollToShow, type Strip } from "@/lib/sectionNav";

export type SectionLink = {
  href: string;
  text: string;
  /** A shorter label for phones, where a long list of tabs slides; the page's heading keeps the full name. */
  short?: string;
};

/**
 * How the tabs lie when they do not fit: "wrap" onto more rows; "fill", on phones, share one row evenly
 * (a handful of short labels); "scroll" stay on one row at every width and slide sideways, with a cue at
 * each edge that hides tabs, the current tab brought into view and each focused tab kept in view.
 */
export type SectionNavLayout = "wrap" | "fill" | "scroll";

// The cue covers this much of an edge; a tab brought into view is kept clear of it.
const CUE_PX = 36;

const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

function measure(strip: HTMLElement): Strip {
  return { scrollLeft: strip.scrollLeft, clientWidth: strip.clientWidth, scrollWidth: strip.scrollWidth };
}

function spanOf(strip: HTMLElement, tab: HTMLElement) {
  const at = tab.getBoundingClientRect();
  return { left: at.left - strip.getBoundingClientRect().left + strip.scrollLeft, width: at.width };
}

/** The tabs of a section (studio, console); the current one is marked for screen readers too. */
export function SectionNav({
  label,
  links,
  layout = "wrap",
}: {
  label: string;
  links: SectionLink[];
  layout?: SectionNavLayout;
}) {
  const pathname = usePathname() ?? "/";
  const current = currentHref(
    pathname,
    links.map((l) => l.href),
  );
  const strip = useRef<HTMLUListElement>(null);
  const [hidden, setHidden] = useState({ start: false, end: false });
  const scrolls = layout === "scroll";

  const update = useCallback(() => {
    if (!strip.current) return;
    const now = hiddenSides(measure(strip.current));
    // Scroll events come every frame: re-render only when a cue comes or goes.
    setHidden((was) => (was.start === now.start && was.end === now.end ? was : now));
  }, []);

  // On arrival, on each tab change and when the strip's width changes (a phone turned, a window resized),
  // the current tab is shown whole, centred when it was out of view; a user's own sliding is left alone.
  const reveal = useCallback(() => {
    const ul = strip.current;
    if (!ul) return;
    const tab = ul.querySelector<HTMLElement>('a[aria-current="page"]');
    if (tab) ul.scrollLeft = scrollToShow(measure(ul), spanOf(ul, tab), CUE_PX, "center");
    update();
  }, [update]);
  useEffect(() => {
    const ul = strip.current;
    if (!scrolls || !ul) return;
    reveal();
    // Only a new width re-reveals: a change of height alone (the observer reports any box change) must not
    // undo where the user has slid or tabbed the strip to.
    let width = ul.clientWidth;
    const resized = new ResizeObserver(() => {
      if (ul.clientWidth === width) return update();
      width = ul.clientWidth;
      reveal();
    });
    resized.observe(ul);
    return () => resized.disconnect();
  }, [scrolls, current, reveal, update]);

  // Tabbing along the strip: the focused tab clears the cue instead of sitting half under it.
  const onFocus = (event: FocusEvent<HTMLUListElement>) => {
    const ul = strip.current;
    if (!scrolls || !ul || !(event.target instanceof HTMLElement)) return;
    ul.scrollLeft = scrollToShow(measure(ul), spanOf(ul, event.target), CUE_PX, "nearest");
  };

  // The cues are for pointers (a tap slides most of a screen); keyboards and screen readers reach every
  // tab through the links themselves, so the cues stay out of the tab order and the accessibility tree.
  const slide = (direction: -1 | 1) => {
    const ul = strip.current;
    if (!ul) return;
    ul.scrollBy({ left: direction * pageStep(ul.clientWidth), behavior: reducedMotion() ? "auto" : "smooth" });
  };

  return (
    <nav
      className={`section-nav ${layout}`}
      aria-label={label}
      data-more={scrolls ? [hidden.start && "start", hidden.end && "end"].filter(Boolean).join(" ") : undefined}
    >
      <ul ref={strip} onScroll={scrolls ? update : undefined} onFocus={onFocus}>
        {links.map((link) => (
          <li key={link.href}>
            <Link href={link.href} aria-current={link.href === current ? "page" : undefined}>
              {link.short ? (
                <>
                  <span className="tab-long">{link.text}</span>
                  <span className="tab-short">{link.short}</span>
                </>
              ) : (
                link.text
              )}
            </Link>
          </li>
        ))}
      </ul>
      {scrolls && hidden.start && (
        <span className="section-nav-cue start" aria-hidden="true" onClick={() => slide(-1)}>
          ‹
        </span>
      )}
      {scrolls && hidden.end && (
        <span className="section-nav-cue end" aria-hidden="true" onClick={() => slide(1)}>
          ›
        </span>
      )}
    </nav>
  );
}
