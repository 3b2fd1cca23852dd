import { describe, expect, it } from "vitest";
import { errorSummary, placeErrors } from "./formErrors";

const FIELDS = ["form_type", "legal_name", "address.line1", "address.country", "country", "tin", "treaty_claim"];

describe("a refused form's field errors", () => {
  it("go next to their fields, as sentences", () => {
    const placed = placeErrors(
      [{ name: "country", reason: "must be an ISO 3166-1 alpha-2 code in capitals, e.g. US or DE" }],
      FIELDS,
    );
    expect(placed.byField).toEqual({ country: "Must be an ISO 3166-1 alpha-2 code in capitals, e.g. US or DE." });
    expect(placed.invalid).toEqual(["country"]);
    expect(errorSummary(placed)).toBe("Check this field:");
  });

  it("focus the first invalid field in the form's order, not the API's", () => {
    const placed = placeErrors(
      [
        { name: "tin", reason: "is required" },
        { name: "address.country", reason: "is wrong" },
      ],
      FIELDS,
    );
    expect(placed.invalid).toEqual(["address.country", "tin"]);
    expect(errorSummary(placed)).toBe("Check these 2 fields:");
  });

  it("say both reasons when one field breaks two rules, each once", () => {
    const placed = placeErrors(
      [
        { name: "body.country", reason: "must be an ISO code" },
        { name: "country", reason: "a W-9 is for US persons" },
        { name: "country", reason: "a W-9 is for US persons" },
      ],
      FIELDS,
    );
    expect(placed.byField.country).toBe("Must be an ISO code. A W-9 is for US persons.");
  });

  it("keep what names no field for the summary, so nothing is lost", () => {
    const placed = placeErrors([{ name: "(body)", reason: "Input should be an object" }], FIELDS);
    expect(placed.byField).toEqual({});
    expect(placed.invalid).toEqual([]);
    expect(errorSummary(placed)).toBe("(body): Input should be an object");
  });
});
