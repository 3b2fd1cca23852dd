"use client";
import { useRouter, useSearchParams } from "next/navigation";
import { useId, useState, type FormEvent } from "react";
import { api, call } from "@/lib/api";
import { auditQuery, AUDIT_FIELDS, changedKeys, type AuditFilters } from "@/lib/auditFilters";
import { useLoad } from "@/lib/useLoad";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";
import { Pager } from "../studio/Portfolio";

const PER_PAGE = 50;
const LABELS: Record<keyof AuditFilters, string> = {
  actor: "Who",
  action: "Action",
  target: "On (id or slug)",
  since: "From",
  until: "Until",
};

/** Every admin action, newest first; each filter lives in the URL so a view can be shared. */
export function AuditLog() {
  const params = useSearchParams();
  const router = useRouter();
  const { filters, page } = auditQuery(new URLSearchParams(params.toString()));
  const [draft, setDraft] = useState<AuditFilters>(filters);
  const baseId = useId();

  const toUrl = (next: AuditFilters, nextPage = 1) => {
    const out = new URLSearchParams();
    for (const key of AUDIT_FIELDS) if (next[key]) out.set(key, next[key]);
    if (nextPage > 1) out.set("page", String(nextPage));
    const query = out.toString();
    return `/admin/audit/${query ? `?${query}` : ""}`;
  };

  const log = useLoad(
    () =>
      call(
        api.GET("/api/admin/audit-log", {
          params: {
            query: {
              actor: filters.actor || undefined,
              action: filters.action || undefined,
              target: filters.target || undefined,
              // Dates from the form are local days; the API wants instants.
              since: filters.since ? new Date(`${filters.since}T00:00:00`).toISOString() : undefined,
              until: filters.until ? new Date(`${filters.until}T23:59:59.999`).toISOString() : undefined,
              page,
              per_page: PER_PAGE,
            },
          },
        }),
      ),
    params.toString(),
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    router.push(toUrl(draft));
  };
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  return (
    <div className="stack">
      <form className="filters" onSubmit={submit} aria-label="Filter the audit log">
        {AUDIT_FIELDS.map((key) => (
          <div className="field" key={key}>
            <label htmlFor={`${baseId}-${key}`}>{LABELS[key]}</label>
            <input
              id={`${baseId}-${key}`}
              type={key === "since" || key === "until" ? "date" : "text"}
              value={draft[key]}
              onChange={(e) => setDraft({ ...draft, [key]: e.target.value })}
            />
          </div>
        ))}
        <div className="row">
          <button type="submit" className="button">
            Filter
          </button>
          <button
            type="button"
            className="button quiet"
            onClick={() => {
              const empty = { actor: "", action: "", target: "", since: "", until: "" };
              setDraft(empty);
              router.push(toUrl(empty));
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {log.status === "loading" && <LinesSkeleton lines={8} />}
      {log.status === "error" && <ErrorState error={log.error} retry={log.reload} />}
      {log.status === "ready" && log.data.items.length === 0 && (
        <EmptyState title="No entries">
          <p>No action matches these filters. Widen the dates or clear a filter.</p>
        </EmptyState>
      )}
      {log.status === "ready" && log.data.items.length > 0 && (
        <>
          <p className="muted">{new Intl.NumberFormat().format(log.data.total)} entries</p>
          <table className="table stackable audit-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">On</th>
                <th scope="col">Change</th>
              </tr>
            </thead>
            <tbody>
              {log.data.items.map((entry) => (
                <tr key={entry.id}>
                  <td data-label="When">{dateTime.format(new Date(entry.at))}</td>
                  <td data-label="Who">{entry.actor}</td>
                  <td data-label="Action">
                    <code>{entry.action}</code>
                  </td>
                  <td data-label="On">
                    {/* One flex item: the type stays a word and the id wraps beside it, not each squeezed apart. */}
                    <span>
                      {entry.target_type} <code className="wrap">{entry.target_id}</code>
                    </span>
                  </td>
                  <td data-label="Change">
                    <Change before={entry.before} after={entry.after} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager page={page} total={log.data.total} perPage={PER_PAGE} href={(p) => toUrl(filters, p)} />
        </>
      )}
    </div>
  );
}

function Change({ before, after }: { before: unknown; after: unknown }) {
  const changes = changedKeys(before, after);
  if (!changes) {
    const show = (value: unknown) => (value === null || value === undefined ? "–" : JSON.stringify(value));
    return (
      <span className="change small">
        <span className="muted">{show(before)}</span> → <span>{show(after)}</span>
      </span>
    );
  }
  return (
    <ul className="change-list small">
      {changes.map(([key, from, to]) => (
        <li key={key}>
          <strong>{key}</strong>: <span className="muted">{from}</span> → {to}
        </li>
      ))}
    </ul>
  );
}
