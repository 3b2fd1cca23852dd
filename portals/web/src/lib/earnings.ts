// Earnings as the studio shows them: one total per month and per image in each currency (licence types
// summed), a full run of months with zeros where nothing sold, and the level progress in words.
import { formatMoney } from "./money";

export interface Line {
  license_type: string;
  currency: string;
  downloads: number;
  refunds: number;
  earned_minor: number;
}

export interface Group {
  key: string;
  lines: Line[];
}

export interface Row {
  key: string;
  downloads: number;
  refunds: number;
  earned: Record<string, number>; // currency -> minor units
}

export function summarise(groups: Group[]): Row[] {
  return groups.map((g) => {
    const earned: Record<string, number> = {};
    let downloads = 0;
    let refunds = 0;
    for (const line of g.lines) {
      earned[line.currency] = (earned[line.currency] ?? 0) + line.earned_minor;
      downloads += line.downloads;
      refunds += line.refunds;
    }
    return { key: g.key, downloads, refunds, earned };
  });
}

/** "YYYY-MM" for each of the `count` months ending with the month of `until` (UTC), oldest first. */
export function lastMonths(until: Date, count: number): string[] {
  const months: string[] = [];
  for (let i = count - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(until.getUTCFullYear(), until.getUTCMonth() - i, 1));
    months.push(`${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`);
  }
  return months;
}

/** Every month in `months`, with the rows that sold and zeros for the rest. */
export function fillMonths(rows: Row[], months: string[]): Row[] {
  const byKey = new Map(rows.map((r) => [r.key, r]));
  return months.map((key) => byKey.get(key) ?? { key, downloads: 0, refunds: 0, earned: {} });
}

export function formatEarned(earned: Record<string, number>, locale?: string): string {
  const parts = Object.entries(earned)
    .filter(([, minor]) => minor !== 0)
    .map(([currency, amount_minor]) => formatMoney({ amount_minor, currency }, locale));
  return parts.length ? parts.join(" + ") : "–";
}

export function monthLabel(key: string, locale?: string): string {
  const [year, month] = key.split("-").map(Number);
  return new Intl.DateTimeFormat(locale, { month: "short", year: "numeric", timeZone: "UTC" }).format(
    new Date(Date.UTC(year ?? 1970, (month ?? 1) - 1, 1)),
  );
}

export interface LevelView {
  level: number;
  levels: number;
  rate_bp: number;
  next_level_rate_bp?: number | null;
  downloads_this_year: number;
  downloads_to_next_level?: number | null;
  next_level_from_download?: number | null;
}

export function percent(bp: number, locale?: string): string {
  return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 2 }).format(bp / 10_000);
}

/** The level sentence and how far along the way to the next one (0..1, or 1 at the top level). */
export function levelProgress(level: LevelView, locale?: string): { text: string; progress: number } {
  const rate = percent(level.rate_bp, locale);
  if (!level.downloads_to_next_level || !level.next_level_from_download || level.next_level_rate_bp == null) {
    return { text: `Level ${level.level} of ${level.levels}: you earn ${rate}, the top rate.`, progress: 1 };
  }
  const count = new Intl.NumberFormat(locale).format(level.downloads_to_next_level);
  const next = percent(level.next_level_rate_bp, locale);
  const done = level.next_level_from_download - 1;
  return {
    text: `Level ${level.level} of ${level.levels}: you earn ${rate}. ${count} more ${
      level.downloads_to_next_level === 1 ? "download" : "downloads"
    } this year to reach level ${level.level + 1} (${next}).`,
    progress: done > 0 ? Math.min(1, level.downloads_this_year / done) : 0,
  };
}
