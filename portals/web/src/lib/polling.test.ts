import { describe, expect, it } from "vitest";
import { MAX_ATTEMPTS, nextDelay, totalWait } from "./polling";

describe("waiting for the payment webhook", () => {
  it("asks soon at first, then no more than every five seconds", () => {
    expect([nextDelay(0), nextDelay(1), nextDelay(2)]).toEqual([1000, 1500, 2250]);
    expect(nextDelay(20)).toBe(5000);
  });

  it("gives up after about three minutes", () => {
    expect(totalWait(MAX_ATTEMPTS)).toBeGreaterThan(150_000);
    expect(totalWait(MAX_ATTEMPTS)).toBeLessThan(240_000);
  });
});
