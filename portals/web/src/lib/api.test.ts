import { describe, expect, it } from "vitest";
import { call, problemFrom } from "./api";

const response = (status: number) => new Response(null, { status });

describe("API errors", () => {
  it("show the problem's detail", () => {
    const problem = problemFrom(409, { title: "Conflict", detail: "This image is already licensed to you." });
    expect([problem.status, problem.message]).toEqual([409, "This image is already licensed to you."]);
  });

  it("fall back to the field errors, then the title, then the status", () => {
    const fields = { title: "Invalid request", errors: [{ name: "q", in: "query", reason: "too long" }] };
    expect(problemFrom(400, fields).message).toBe("q: too long");
    expect(problemFrom(404, { title: "Not found" }).message).toBe("Not found");
    expect(problemFrom(502, "<html>bad gateway</html>").message).toBe("Request failed (HTTP 502)");
  });

  it("reach the caller as a thrown ApiProblem, and a network failure says to check the connection", async () => {
    await expect(call(Promise.resolve({ error: { detail: "Sign in to check out." }, response: response(401) }))).rejects.toThrow(
      "Sign in to check out.",
    );
    await expect(call(Promise.reject(new TypeError("fetch failed")))).rejects.toThrow(/could not be reached/);
    await expect(call(Promise.resolve({ data: { ok: 1 }, response: response(200) }))).resolves.toEqual({ ok: 1 });
  });
});
