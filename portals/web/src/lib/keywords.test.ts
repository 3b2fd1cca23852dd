import { describe, expect, it } from "vitest";
import { addKeywords, changedFields, MAX_KEYWORDS, suggestionsFrom } from "./keywords";

describe("the details editor", () => {
  it("adds keywords trimmed and once, whatever their case, up to the limit", () => {
    expect(addKeywords(["Coffee"], [" coffee ", "cup  of tea", "", "Cup of tea"])).toEqual(["Coffee", "cup of tea"]);
    const full = addKeywords([], Array.from({ length: 60 }, (_, i) => `k${i}`));
    expect(full).toHaveLength(MAX_KEYWORDS);
  });

  it("offers the model's confident tags, best first, as readable keywords", () => {
    const tags = [
      { label: "espresso", confidence: 0.4 },
      { label: "coffee_mug", confidence: 0.8 },
      { label: "noise", confidence: 0.01 },
    ];
    expect(suggestionsFrom(tags)).toEqual(["coffee mug", "espresso"]);
  });

  it("sends only what changed, and nothing when nothing did", () => {
    const before = { title: "Cup", description: "", keywords: ["coffee"], category: "food" };
    expect(changedFields(before, { ...before })).toBeNull();
    expect(changedFields(before, { ...before, title: " Espresso ", category: "" })).toEqual({
      title: "Espresso",
      category: null,
    });
    expect(changedFields(before, { ...before, keywords: ["coffee", "cup"] })).toEqual({ keywords: ["coffee", "cup"] });
  });
});
