import { describe, expect, it } from "vitest";
import { fromMinor, toMinor } from "./moneyInput";

describe("price entry", () => {
  it("reads what a person types as integer minor units of the currency", () => {
    expect(toMinor("19", "USD")).toBe(1900);
    expect(toMinor("19.5", "USD")).toBe(1950);
    expect(toMinor(" 1,299.00 ", "USD")).toBe(129900);
    expect(toMinor("19,50", "EUR")).toBe(1950);
    expect(toMinor("1900", "JPY")).toBe(1900);
    expect(toMinor("0.1", "USD")).toBe(10); // no float drift: 0.1 * 100 would be fine, 0.29 * 100 would not
    expect(toMinor("0.29", "USD")).toBe(29);
  });

  it("refuses what is not a price", () => {
    for (const bad of ["", "-5", "abc", "19.999", "1.5"]) {
      expect(toMinor(bad, bad === "1.5" ? "JPY" : "USD")).toBeNull();
    }
  });

  it("shows stored prices for editing", () => {
    expect(fromMinor(1900, "USD")).toBe("19.00");
    expect(fromMinor(5, "EUR")).toBe("0.05");
    expect(fromMinor(1900, "JPY")).toBe("1900");
  });
});
