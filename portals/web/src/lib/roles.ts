// Roles come from the access token's `roles` claim (the local issuer and Entra app roles both put them
// there). The browser only reads them to choose what to show; the API checks them on every call.
export type Role = "buyer" | "contributor" | "admin";
const KNOWN: readonly Role[] = ["buyer", "contributor", "admin"];

export function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return payload !== null && typeof payload === "object" && !Array.isArray(payload)
      ? (payload as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

export function rolesFromToken(token: string | undefined): Role[] {
  if (!token) return [];
  const claim = decodeJwtPayload(token)?.roles;
  const values = Array.isArray(claim) ? claim : typeof claim === "string" ? [claim] : [];
  return KNOWN.filter((role) => values.includes(role));
}
