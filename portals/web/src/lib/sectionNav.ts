/** A section's tab bar (studio, console): which tab is current, and how a one-row strip slides. */

/** The current tab's href: the longest one the path starts with, so "/admin/" is not current on "/admin/audit/". */
export function currentHref(pathname: string, hrefs: string[]): string | undefined {
  const normal = pathname.endsWith("/") ? pathname : `${pathname}/`;
  return hrefs.filter((href) => normal.startsWith(href)).sort((a, b) => b.length - a.length)[0];
}

/** Where a strip is scrolled: its visible width, its whole width, and how far along it is. */
export type Strip = { scrollLeft: number; clientWidth: number; scrollWidth: number };
/** A tab within the strip, measured from the strip's start (not from what is visible). */
export type Span = { left: number; width: number };

// Sub-pixel layout leaves a strip scrolled to its end a fraction short of it.
const SLACK = 1;

/** Which sides of the strip hide tabs, so each can show its "more this way" cue. */
export function hiddenSides({ scrollLeft, clientWidth, scrollWidth }: Strip): { start: boolean; end: boolean } {
  return { start: scrollLeft > SLACK, end: scrollLeft + clientWidth < scrollWidth - SLACK };
}

/**
 * Where to scroll so a tab shows whole and clear of the cues (`margin` at each edge): unchanged when it
 * already does; otherwise "nearest" moves it just inside the nearer edge (following the focus) and "center"
 * centres it (the current tab on arrival, with its neighbours either side). Never past either end.
 */
export function scrollToShow(strip: Strip, tab: Span, margin: number, align: "nearest" | "center"): number {
  const { scrollLeft, clientWidth, scrollWidth } = strip;
  const max = Math.max(0, scrollWidth - clientWidth);
  const clamp = (x: number) => Math.min(max, Math.max(0, Math.round(x)));
  const shown = tab.left - margin >= scrollLeft - SLACK && tab.left + tab.width + margin <= scrollLeft + clientWidth + SLACK;
  if (shown || max === 0) return clamp(scrollLeft);
  if (align === "center") return clamp(tab.left + tab.width / 2 - clientWidth / 2);
  if (tab.left - margin < scrollLeft) return clamp(tab.left - margin);
  return clamp(tab.left + tab.width + margin - clientWidth);
}

/** How far one press of a "more" cue slides the strip: most of a screen, keeping a tab's worth of context. */
export function pageStep(clientWidth: number): number {
  return Math.max(1, Math.round(clientWidth * 0.7));
}
