import { describe, expect, it } from "vitest";
import { withItem } from "./cart";

describe("a guest's cart", () => {
  it("holds one licence per image: adding again changes the licence instead of duplicating", () => {
    const one = withItem([], { image_id: "a", license_type: "standard", title: "A" });
    const two = withItem(one, { image_id: "b", license_type: "standard", title: "B" });
    const changed = withItem(two, { image_id: "a", license_type: "enhanced", title: "A" });
    expect(changed.map((i) => [i.image_id, i.license_type])).toEqual([
      ["b", "standard"],
      ["a", "enhanced"],
    ]);
  });
});
