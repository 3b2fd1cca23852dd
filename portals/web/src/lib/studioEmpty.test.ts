import { describe, expect, it } from "vitest";
import { portfolioEmpty } from "./studioEmpty";

const none = { q: "", status: "" as const, page: 1, total: 0 };

describe("an empty portfolio says what to do next", () => {
  it("sends a new contributor to upload their first photos", () => {
    expect(portfolioEmpty(none)).toMatchObject({ title: "Upload your first photos", action: { to: "upload" } });
  });

  it("offers every status when one status has nothing", () => {
    const copy = portfolioEmpty({ ...none, status: "rejected" });
    expect(copy.title).toBe("No rejected photos");
    expect(copy.action).toEqual({ label: "Show all photos", to: "all-statuses" });
  });

  it("offers fewer words, then every status or no search, when a search finds nothing", () => {
    expect(portfolioEmpty({ ...none, q: "xyzzy" })).toMatchObject({
      title: "No photos match “xyzzy”",
      action: { to: "no-search" },
    });
    expect(portfolioEmpty({ ...none, q: "xyzzy", status: "approved" }).action.to).toBe("all-statuses");
  });

  it("sends a page past the end back to the first page", () => {
    expect(portfolioEmpty({ ...none, page: 4, total: 30 })).toMatchObject({
      title: "There is no page 4",
      action: { to: "first-page" },
    });
  });
});
