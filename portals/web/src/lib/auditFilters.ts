// The audit log's filters as URL state: only known keys, dates as plain YYYY-MM-DD days, page >= 1.
export const AUDIT_FIELDS = ["actor", "action", "target", "since", "until"] as const;
export type AuditFilters = Record<(typeof AUDIT_FIELDS)[number], string>;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function auditQuery(params: URLSearchParams): { filters: AuditFilters; page: number } {
  const text = (key: string, max: number) => (params.get(key) ?? "").trim().slice(0, max);
  const day = (key: string) => {
    const value = text(key, 10);
    return DAY.test(value) && !Number.isNaN(Date.parse(value)) ? value : "";
  };
  const page = Number.parseInt(params.get("page") ?? "1", 10);
  return {
    filters: {
      actor: text("actor", 200),
      action: text("action", 64),
      target: text("target", 200),
      since: day("since"),
      until: day("until"),
    },
    page: Number.isInteger(page) && page >= 1 && page <= 10_000 ? page : 1,
  };
}

type Row = [key: string, before: string, after: string];

/** The keys an audited action changed, each with its value before and after; null when not two objects. */
export function changedKeys(before: unknown, after: unknown): Row[] | null {
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(after) || (before !== null && before !== undefined && !isObject(before))) return null;
  const old = isObject(before) ? before : {};
  const show = (v: unknown) => (v === null || v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v));
  const keys = [...new Set([...Object.keys(old), ...Object.keys(after)])];
  // Missing and null read the same ("–"): a key that went from absent to null changed nothing visible.
  return keys.map<Row>((k) => [k, show(old[k]), show(after[k])]).filter(([, from, to]) => from !== to);
}
