import { describe, expect, it } from "vitest";
import { formatMoney } from "./money";

describe("prices", () => {
  it("are formatted in the currency they are charged in, with that currency's decimals", () => {
    expect(formatMoney({ amount_minor: 4900, currency: "USD" }, "en-US")).toBe("$49.00");
    expect(formatMoney({ amount_minor: 4900, currency: "JPY" }, "en-US")).toBe("¥4,900");
    expect(formatMoney({ amount_minor: 123456, currency: "EUR" }, "de-DE")).toBe("1.234,56\u00a0€");
  });
});
