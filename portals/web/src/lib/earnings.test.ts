import { describe, expect, it } from "vitest";
import { fillMonths, formatEarned, lastMonths, levelProgress, monthLabel, summarise } from "./earnings";

describe("earnings", () => {
  it("sums licence types per currency and keeps downloads and refunds", () => {
    const rows = summarise([
      {
        key: "2026-11",
        lines: [
          { license_type: "standard", currency: "USD", downloads: 3, refunds: 1, earned_minor: 450 },
          { license_type: "enhanced", currency: "USD", downloads: 1, refunds: 0, earned_minor: 2475 },
          { license_type: "standard", currency: "EUR", downloads: 1, refunds: 0, earned_minor: 300 },
        ],
      },
    ]);
    expect(rows).toEqual([{ key: "2026-11", downloads: 5, refunds: 1, earned: { USD: 2925, EUR: 300 } }]);
    expect(formatEarned(rows[0]!.earned, "en-US")).toBe("$29.25 + €3.00");
    expect(formatEarned({}, "en-US")).toBe("–");
  });

  it("shows every month of the last year, oldest first, with zeros where nothing sold", () => {
    const months = lastMonths(new Date("2026-12-06T12:00:00Z"), 12);
    expect(months[0]).toBe("2026-01");
    expect(months.at(-1)).toBe("2026-12");
    expect(lastMonths(new Date("2027-02-01T00:00:00Z"), 3)).toEqual(["2026-12", "2027-01", "2027-02"]);
    const filled = fillMonths([{ key: "2026-11", downloads: 2, refunds: 0, earned: { USD: 10 } }], ["2026-10", "2026-11"]);
    expect(filled.map((r) => r.downloads)).toEqual([0, 2]);
    expect(monthLabel("2026-11", "en-US")).toBe("Nov 2026");
  });

  it("says the level, the rate and the downloads left to the next level", () => {
    const mid = levelProgress(
      { level: 2, levels: 3, rate_bp: 2500, next_level_rate_bp: 3000, downloads_this_year: 150, downloads_to_next_level: 350, next_level_from_download: 501 },
      "en-US",
    );
    expect(mid.text).toBe("Level 2 of 3: you earn 25%. 350 more downloads this year to reach level 3 (30%).");
    expect(mid.progress).toBeCloseTo(0.3);
    const top = levelProgress({ level: 3, levels: 3, rate_bp: 3000, downloads_this_year: 900 }, "en-US");
    expect(top).toEqual({ text: "Level 3 of 3: you earn 30%, the top rate.", progress: 1 });
  });
});
