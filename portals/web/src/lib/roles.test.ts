import { describe, expect, it } from "vitest";
import { rolesFromToken } from "./roles";

const jwt = (payload: object) =>
  `e30.${btoa(JSON.stringify(payload)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.sig`;

describe("roles from the access token", () => {
  it("reads the roles claim, keeping only roles the portals know", () => {
    expect(rolesFromToken(jwt({ sub: "bob", roles: ["buyer", "superuser", "admin"] }))).toEqual(["buyer", "admin"]);
    expect(rolesFromToken(jwt({ roles: "contributor" }))).toEqual(["contributor"]);
  });

  it("gives no roles for a missing, unreadable or role-less token", () => {
    expect([rolesFromToken(undefined), rolesFromToken("garbage"), rolesFromToken(jwt({ sub: "x" }))]).toEqual([[], [], []]);
  });
});
