import { describe, expect, it } from "vitest";
import { auditQuery, changedKeys } from "./auditFilters";

describe("audit log filters in the URL", () => {
  it("reads every filter and the page back from a shared link", () => {
    const { filters, page } = auditQuery(
      new URLSearchParams("actor=ada&action=image.reject&target=abc&since=2026-12-01&until=2026-12-06&page=3"),
    );
    expect(filters).toEqual({ actor: "ada", action: "image.reject", target: "abc", since: "2026-12-01", until: "2026-12-06" });
    expect(page).toBe(3);
  });

  it("drops what the API would refuse instead of showing an error for a hand-edited link", () => {
    const { filters, page } = auditQuery(new URLSearchParams("since=yesterday&until=2026-13-45&page=-2&x=1"));
    expect(filters.since).toBe("");
    expect(filters.until).toBe("");
    expect(page).toBe(1);
  });
});

describe("an audit entry's change", () => {
  it("lists only what changed, before and after", () => {
    const before = { state: "pending", reasons: ["missing_title"], revision: 2 };
    const after = { state: "rejected", reasons: ["missing_title"], revision: 3, reason_code: "poor_quality", note: null };
    expect(changedKeys(before, after)).toEqual([
      ["state", "pending", "rejected"],
      ["revision", "2", "3"],
      ["reason_code", "–", "poor_quality"],
    ]);
    expect(changedKeys(null, { name: "Food" })).toEqual([["name", "–", "Food"]]);
    expect(changedKeys("x", 1)).toBeNull();
  });
});
