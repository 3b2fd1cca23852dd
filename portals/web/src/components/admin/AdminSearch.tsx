"use client";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useId, useState, type FormEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { useLoad } from "@/lib/useLoad";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";
import { Pager } from "../studio/Portfolio";

type Status = NonNullable<Schemas["AdminSearchParams"]["status"]>;
const STATUSES: { value: Status | ""; label: string }[] = [
  { value: "flagged", label: "Flagged" },
  { value: "pending", label: "Pending" },
  { value: "approved", label: "Live" },
  { value: "rejected", label: "Rejected" },
  { value: "removed", label: "Taken down" },
  { value: "", label: "All" },
];
const PER_PAGE = 25;

/** Search every image in every state (flagged by default); take a live one down with a reason. */
export function AdminSearch() {
  const params = useSearchParams();
  const router = useRouter();
  const q = params.get("q") ?? "";
  const contributor = params.get("contributor") ?? "";
  const status = (params.has("status") ? params.get("status") : "flagged") as Status | "";
  const page = Math.max(1, Number(params.get("page") ?? "1") || 1);
  const [draft, setDraft] = useState({ q, contributor });
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const qId = useId();
  const contributorId = useId();

  const href = (next: { q?: string; contributor?: string; status?: string; page?: number }) => {
    const merged = { q, contributor, status, page: 1, ...next };
    const out = new URLSearchParams();
    if (merged.q) out.set("q", merged.q);
    if (merged.contributor) out.set("contributor", merged.contributor);
    out.set("status", merged.status);
    if (merged.page > 1) out.set("page", String(merged.page));
    return `/admin/search/?${out.toString()}`;
  };

  const results = useLoad(
    () =>
      call(
        api.GET("/api/admin/search", {
          params: {
            query: {
              q: q || undefined,
              contributor: contributor || undefined,
              status: status || undefined,
              page,
              per_page: PER_PAGE,
            },
          },
        }),
      ),
    `${q}|${contributor}|${status}|${page}`,
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    router.push(href({ q: draft.q.trim(), contributor: draft.contributor.trim() }));
  };

  return (
    <div className="stack">
      <form role="search" className="filters" onSubmit={submit}>
        <div className="field">
          <label htmlFor={qId}>Words</label>
          <input id={qId} type="search" value={draft.q} onChange={(e) => setDraft({ ...draft, q: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor={contributorId}>Contributor</label>
          <input
            id={contributorId}
            type="text"
            value={draft.contributor}
            onChange={(e) => setDraft({ ...draft, contributor: e.target.value })}
          />
        </div>
        <button type="submit" className="button">
          Search
        </button>
      </form>
      <nav aria-label="Filter by status">
        <ul className="chips">
          {STATUSES.map((s) => (
            <li key={s.value || "all"}>
              <Link
                href={href({ status: s.value })}
                className={`chip${status === s.value ? " applied" : ""}`}
                aria-current={status === s.value ? "true" : undefined}
              >
                {s.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      {notice && (
        <p className={`notice ${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
          {notice.text}
        </p>
      )}
      {results.status === "loading" && <LinesSkeleton lines={6} />}
      {results.status === "error" && <ErrorState error={results.error} retry={results.reload} />}
      {results.status === "ready" && results.data.items.length === 0 && (
        <EmptyState title="Nothing matches">
          <p>Try another status, fewer words, or no contributor filter.</p>
        </EmptyState>
      )}
      {results.status === "ready" && results.data.items.length > 0 && (
        <>
          <p className="muted">{new Intl.NumberFormat().format(results.data.total)} images</p>
          <table className="table stackable">
            <thead>
              <tr>
                <th scope="col">Image</th>
                <th scope="col">Contributor</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Safety
                </th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {results.data.items.map((item) => (
                <ResultRow
                  key={item.id}
                  item={item}
                  onDone={(text, tone) => {
                    setNotice({ text, tone });
                    if (tone === "success") results.reload();
                  }}
                />
              ))}
            </tbody>
          </table>
          <Pager page={page} total={results.data.total} perPage={PER_PAGE} href={(p) => href({ page: p })} />
        </>
      )}
    </div>
  );
}

function ResultRow({
  item,
  onDone,
}: {
  item: Schemas["CatalogueItem"];
  onDone: (text: string, tone: "success" | "error") => void;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const reasonId = useId();
  const title = item.title || "Untitled";
  const takeDown = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      await call(
        api.POST("/api/admin/images/{id}/takedown", { params: { path: { id: item.id } }, body: { reason: reason.trim() } }),
      );
      onDone(`“${title}” was taken down.`, "success");
      setOpen(false);
    } catch (err) {
      onDone(messageOf(err), "error");
    } finally {
      setBusy(false);
    }
  };
  const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  return (
    <tr>
      <td data-label="Image">
        <div className="row nowrap">
          {item.thumbnail_url && <img src={item.thumbnail_url} alt={title} width={56} height={56} className="thumb-sq" loading="lazy" />}
          <span>
            <strong>{title}</strong>
            <br />
            <span className="muted small">{item.keywords.slice(0, 6).join(", ")}</span>
          </span>
        </div>
      </td>
      <td data-label="Contributor">{item.contributor_id}</td>
      <td data-label="Status">
        <span className="pill neutral">{item.status}</span>
        {item.status_reason && <div className="muted small">{item.status_reason}</div>}
      </td>
      <td data-label="Safety" className="num">
        {item.safety_score === null ? "–" : fmt.format(item.safety_score * 100)}
      </td>
      <td data-label="Action">
        {item.status === "approved" &&
          (open ? (
            <form onSubmit={takeDown} className="stack">
              <label htmlFor={reasonId}>Reason for the takedown</label>
              <input id={reasonId} type="text" required value={reason} onChange={(e) => setReason(e.target.value)} />
              <div className="row">
                <button type="submit" className="button small" disabled={busy || !reason.trim()}>
                  Take down
                </button>
                <button type="button" className="button small quiet" onClick={() => setOpen(false)}>
                  Cancel
                </button>
              </div>
            </form>
          ) : (
            <button type="button" className="button small secondary" onClick={() => setOpen(true)}>
              Take down…<span className="visually-hidden"> {title}</span>
            </button>
          ))}
      </td>
    </tr>
  );
}
