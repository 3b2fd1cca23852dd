"use client";
import { useId, useState, type FormEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { formatDate, formatMoney } from "@/lib/money";
import { useLoad } from "@/lib/useLoad";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";

type Batch = Schemas["BatchOut"];

const EXCLUSION_WORDS: Record<string, string> = {
  negative_balance: "Balance below zero",
  below_threshold: "Below their payout threshold",
  no_tax_profile: "No tax form",
  onboarding_incomplete: "Stripe account not finished",
};

/** Monthly payout batches: create a draft, review totals and exclusions, approve or cancel it. */
export function PayoutBatches() {
  const list = useLoad(() => call(api.GET("/api/admin/payout-batches")), "batches");
  const [period, setPeriod] = useState("");
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const periodId = useId();

  const create = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const batch = await call(
        api.POST("/api/admin/payout-batches", { body: { period: period.trim() || null } }),
      );
      setNotice({ tone: "success", text: `Draft batch for ${batch.period} created. Review it, then approve.` });
      setOpen(batch.id);
      list.reload();
    } catch (err) {
      setNotice({ tone: "error", text: messageOf(err) });
    }
  };

  return (
    <div className="stack">
      <form className="panel filters" onSubmit={create} aria-label="New payout batch">
        <div className="field">
          <label htmlFor={periodId}>Period (YYYY-MM, empty for last month)</label>
          <input
            id={periodId}
            type="text"
            inputMode="numeric"
            pattern="\d{4}-(0[1-9]|1[0-2])"
            placeholder="2026-11"
            value={period}
            onChange={(e) => setPeriod(e.target.value)}
          />
        </div>
        <button type="submit" className="button">
          Create draft batch
        </button>
      </form>
      {notice && (
        <p className={`notice ${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
          {notice.text}
        </p>
      )}
      {list.status === "loading" && <LinesSkeleton lines={5} />}
      {list.status === "error" && <ErrorState error={list.error} retry={list.reload} />}
      {list.status === "ready" && list.data.batches.length === 0 && (
        <EmptyState title="No payout batches yet">
          <p>Create a draft for a month: it lists who would be paid and who is left out, and why.</p>
        </EmptyState>
      )}
      {list.status === "ready" &&
        list.data.batches.map((batch) => (
          <BatchCard
            key={batch.id}
            batch={batch}
            open={open === batch.id}
            onToggle={() => setOpen(open === batch.id ? null : batch.id)}
            onChanged={(text, tone) => {
              setNotice({ text, tone });
              list.reload();
            }}
          />
        ))}
    </div>
  );
}

function BatchCard({
  batch,
  open,
  onToggle,
  onChanged,
}: {
  batch: Batch;
  open: boolean;
  onToggle: () => void;
  onChanged: (text: string, tone: "success" | "error") => void;
}) {
  const [busy, setBusy] = useState(false);
  const detail = useLoad(
    open ? () => call(api.GET("/api/admin/payout-batches/{id}", { params: { path: { id: batch.id } } })) : null,
    `${batch.id}|${open}|${batch.status}`,
  );
  const act = async (action: "approve" | "cancel") => {
    setBusy(true);
    try {
      const path = { params: { path: { id: batch.id } } };
      if (action === "approve") await call(api.POST("/api/admin/payout-batches/{id}/approve", path));
      else await call(api.POST("/api/admin/payout-batches/{id}/cancel", path));
      onChanged(`Batch ${batch.period} ${action === "approve" ? "approved: transfers are on their way" : "cancelled"}.`, "success");
    } catch (err) {
      onChanged(messageOf(err), "error");
    } finally {
      setBusy(false);
    }
  };
  const statusTone = batch.status === "approved" ? "success" : batch.status === "cancelled" ? "neutral" : "warning";
  return (
    <section className="panel stack batch" aria-labelledby={`batch-${batch.id}`}>
      <div className="row">
        <h2 id={`batch-${batch.id}`}>Payouts for {batch.period}</h2>
        <span className={`pill ${statusTone}`}>{batch.status}</span>
        <span className="spacer" />
        <button type="button" className="button small quiet" onClick={onToggle} aria-expanded={open}>
          {open ? "Hide details" : "Details"}
        </button>
      </div>
      <p className="muted small">
        Made by {batch.created_by} on {formatDate(batch.created_at)}; balances payable at{" "}
        {new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(batch.cutoff_at))}.
        {batch.approved_by && ` Approved by ${batch.approved_by}.`}
        {batch.cancelled_by && ` Cancelled by ${batch.cancelled_by}.`}
      </p>
      <table className="table stackable">
        <thead>
          <tr>
            <th scope="col">Currency</th>
            <th scope="col" className="num">
              Payouts
            </th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col" className="num">
              Withheld
            </th>
            <th scope="col" className="num">
              Paid
            </th>
          </tr>
        </thead>
        <tbody>
          {batch.totals.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                Nobody to pay in this batch.
              </td>
            </tr>
          )}
          {batch.totals.map((t) => (
            <tr key={t.currency}>
              <td data-label="Currency">{t.currency}</td>
              <td data-label="Payouts" className="num">
                {t.payouts}
              </td>
              <td data-label="Amount" className="num">
                {formatMoney({ amount_minor: t.amount_minor, currency: t.currency })}
              </td>
              <td data-label="Withheld" className="num">
                {formatMoney({ amount_minor: t.withholding_minor, currency: t.currency })}
              </td>
              <td data-label="Paid" className="num">
                {formatMoney({ amount_minor: t.net_paid_minor, currency: t.currency })}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {batch.exclusions_by_reason.length > 0 && (
        <ul className="chips" aria-label="Left out">
          {batch.exclusions_by_reason.map((e) => (
            <li key={`${e.reason}-${e.currency}`} className="chip">
              {EXCLUSION_WORDS[e.reason] ?? e.reason}: {e.contributors} ({formatMoney({ amount_minor: e.payable_minor, currency: e.currency })})
            </li>
          ))}
        </ul>
      )}
      {open && detail.status === "loading" && <LinesSkeleton lines={3} />}
      {open && detail.status === "error" && <ErrorState error={detail.error} retry={detail.reload} />}
      {open && detail.status === "ready" && !(detail.data.payouts?.length || detail.data.exclusions?.length) && (
        <p className="muted">No contributor had a payable balance at the cut-off.</p>
      )}
      {open && detail.status === "ready" && !!(detail.data.payouts?.length || detail.data.exclusions?.length) && (
        <BatchLines key={`${batch.id}|${batch.status}`} period={batch.period} first={detail.data} />
      )}
      {batch.status === "draft" && (
        <div className="row">
          <button type="button" className="button" disabled={busy} onClick={() => void act("approve")}>
            Approve and pay<span className="visually-hidden"> {batch.period}</span>
          </button>
          <button type="button" className="button secondary" disabled={busy} onClick={() => void act("cancel")}>
            Cancel batch<span className="visually-hidden"> {batch.period}</span>
          </button>
        </div>
      )}
    </section>
  );
}

type Payout = Schemas["BatchPayout"];
type Exclusion = Schemas["BatchExclusion"];

/** A batch's payouts, then who was left out: the detail view's first page, and more on request. */
function BatchLines({ period, first }: { period: string; first: Batch }) {
  const [payouts, setPayouts] = useState<Payout[]>(first.payouts ?? []);
  const [exclusions, setExclusions] = useState<Exclusion[]>(first.exclusions ?? []);
  const [cursors, setCursors] = useState({ payouts: first.payouts_next_cursor ?? null, exclusions: first.exclusions_next_cursor ?? null });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const more = async () => {
    setBusy(true);
    setError(null);
    try {
      const path = { id: first.id };
      if (cursors.payouts) {
        const page = await call(api.GET("/api/admin/payout-batches/{id}/payouts", { params: { path, query: { cursor: cursors.payouts } } }));
        setPayouts((seen) => [...seen, ...page.items]);
        setCursors((c) => ({ ...c, payouts: page.next_cursor }));
      } else if (cursors.exclusions) {
        const page = await call(
          api.GET("/api/admin/payout-batches/{id}/exclusions", { params: { path, query: { cursor: cursors.exclusions } } }),
        );
        setExclusions((seen) => [...seen, ...page.items]);
        setCursors((c) => ({ ...c, exclusions: page.next_cursor }));
      }
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  // Payouts page before exclusions, so the rows stay in the order the API sorts them.
  const shownExclusions = cursors.payouts ? [] : exclusions;
  return (
    <>
      <table className="table stackable" aria-label={`Payouts in ${period}`}>
        <thead>
          <tr>
            <th scope="col">Contributor</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col" className="num">
              Paid
            </th>
          </tr>
        </thead>
        <tbody>
          {payouts.map((p) => (
            <tr key={p.id}>
              <td data-label="Contributor">{p.contributor_id}</td>
              <td data-label="Status">
                <span className={`status ${p.status}`}>{p.status}</span>
                {p.failure_reason && <div className="muted small">{p.failure_reason}</div>}
              </td>
              <td data-label="Amount" className="num">
                {formatMoney({ amount_minor: p.amount_minor, currency: p.currency })}
              </td>
              <td data-label="Paid" className="num">
                {p.net_minor == null ? "–" : formatMoney({ amount_minor: p.net_minor, currency: p.currency })}
              </td>
            </tr>
          ))}
          {shownExclusions.map((e) => (
            <tr key={`x-${e.contributor_id}-${e.currency}`}>
              <td data-label="Contributor">{e.contributor_id}</td>
              <td data-label="Status">
                <span className="status">Left out: {EXCLUSION_WORDS[e.reason] ?? e.reason}</span>
              </td>
              <td data-label="Amount" className="num">
                {formatMoney({ amount_minor: e.payable_minor, currency: e.currency })}
              </td>
              <td data-label="Paid" className="num">
                –
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(cursors.payouts || cursors.exclusions) && (
        <div className="row">
          <span className="muted small">
            Showing {payouts.length + shownExclusions.length} rows; the totals above count the whole batch.
          </span>
          <button type="button" className="button small secondary" onClick={() => void more()} disabled={busy}>
            {busy ? "Loading…" : "Show more"}
          </button>
        </div>
      )}
      {error && (
        <p className="notice error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}
