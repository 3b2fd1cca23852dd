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
