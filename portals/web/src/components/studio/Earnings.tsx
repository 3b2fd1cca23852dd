"use client";
import Link from "next/link";
import { useEffect, useRef, useState } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { downloadReport } from "@/lib/download";
import { fillMonths, formatEarned, type Group, lastMonths, levelProgress, monthLabel, summarise, type Row } from "@/lib/earnings";
import { formatDate, formatMoney } from "@/lib/money";
import { useLoad } from "@/lib/useLoad";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";

const MONTHS = 12;

async function loadEarnings() {
  const now = new Date();
  const months = lastMonths(now, MONTHS);
  const from = `${months[0]}-01T00:00:00Z`;
  const [byMonth, byImage, level, payouts] = await Promise.all([
    call(api.GET("/api/contributor/earnings", { params: { query: { from, group_by: "month" } } })),
    call(api.GET("/api/contributor/earnings", { params: { query: { from, group_by: "image" } } })),
    call(api.GET("/api/contributor/level")),
    call(api.GET("/api/contributor/payouts")),
  ]);
  return { months, from, byMonth, byImage, level, payouts, titles: await photoTitles(byImage.groups) };
}

const NAMED_PHOTOS = 100; // the API names at most this many images per call; the table lists the best earners

/** Titles for the photos of the per-image report (payouts keeps no catalogue; the studio's own list does). */
async function photoTitles(groups: Group[]): Promise<Map<string, string>> {
  const ids = summarise(groups)
    .sort((a, b) => total(b) - total(a))
    .slice(0, NAMED_PHOTOS)
    .map((r) => r.key);
  if (ids.length === 0) return new Map();
  const page = await call(
    api.GET("/api/contributor/images", { params: { query: { ids: ids.join(","), per_page: NAMED_PHOTOS } } }),
  );
  return new Map(page.items.map((i) => [i.image_id, i.listing?.title || i.sidecar.title || i.file_name]));
}

/** The month chart, the per-image table, the level and the way to the next one, balances and payouts. */
export function Earnings() {
  const load = useLoad(loadEarnings, "earnings");
  if (load.status === "loading") return <LinesSkeleton lines={8} />;
  if (load.status === "error") return <ErrorState error={load.error} retry={load.reload} />;
  const { months, from, byMonth, byImage, level, payouts, titles } = load.data;
  const monthRows = fillMonths(summarise(byMonth.groups), months);
  const imageRows = summarise(byImage.groups).sort((a, b) => total(b) - total(a));
  const progress = levelProgress(level);
  const fmt = new Intl.NumberFormat();

  return (
    <div className="stack earnings">
      <div className="cards">
        <section className="panel card" aria-labelledby="level-heading">
          <h2 id="level-heading">Your level</h2>
          <p>{progress.text}</p>
          <progress max={1} value={progress.progress} aria-labelledby="level-heading" />
          <p className="muted small">
            {fmt.format(level.downloads_this_year)} {level.downloads_this_year === 1 ? "download" : "downloads"} in{" "}
            {level.year}; counts reset on{" "}
            {formatDate(level.resets_at)}.
          </p>
        </section>
        {byMonth.balances.length === 0 ? (
          <section className="panel card" aria-labelledby="balance-heading">
            <h2 id="balance-heading">Balance</h2>
            <p className="muted">Nothing earned yet: you earn each time a buyer licenses one of your photos.</p>
            <p className="small">
              <Link href="/contributor/">Upload more photos</Link> and give each a title and keywords so buyers find
              them.
            </p>
          </section>
        ) : (
          byMonth.balances.map((b) => (
            <section key={b.currency} className="panel card" aria-labelledby={`balance-${b.currency}`}>
              <h2 id={`balance-${b.currency}`}>Balance ({b.currency})</h2>
              <p className="big-number">{formatMoney({ amount_minor: b.balance_minor, currency: b.currency })}</p>
              <p className="muted small">
                {formatMoney({ amount_minor: b.payable_minor, currency: b.currency })} payable now ·{" "}
                {formatMoney({ amount_minor: b.held_minor, currency: b.currency })} still in the hold period
              </p>
            </section>
          ))
        )}
      </div>

      <section className="panel" aria-labelledby="months-heading">
        <div className="panel-head">
          <h2 id="months-heading">Earnings by month</h2>
          <CsvButton from={from} />
        </div>
        <MonthChart rows={monthRows} />
        <details>
          <summary>The same as a table</summary>
          <table className="table stackable">
            <thead>
              <tr>
                <th scope="col">Month</th>
                <th scope="col" className="num">
                  Downloads
                </th>
                <th scope="col" className="num">
                  Refunds
                </th>
                <th scope="col" className="num">
                  Earned
                </th>
              </tr>
            </thead>
            <tbody>
              {monthRows.map((r) => (
                <tr key={r.key}>
                  <td data-label="Month">{monthLabel(r.key)}</td>
                  <td data-label="Downloads" className="num">
                    {fmt.format(r.downloads)}
                  </td>
                  <td data-label="Refunds" className="num">
                    {fmt.format(r.refunds)}
                  </td>
                  <td data-label="Earned" className="num">
                    {formatEarned(r.earned)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      </section>

      <section className="panel" aria-labelledby="images-heading">
        <h2 id="images-heading">By photo</h2>
        {imageRows.length === 0 ? (
          <div className="stack">
            <p className="muted">No sales in the last twelve months yet.</p>
            <p className="small">
              Buyers find photos by their words: <Link href="/contributor/portfolio/">open your portfolio</Link> and add
              a clear title and keywords to the photos that have few.
            </p>
          </div>
        ) : (
          <table className="table stackable">
            <thead>
              <tr>
                <th scope="col">Photo</th>
                <th scope="col" className="num">
                  Downloads
                </th>
                <th scope="col" className="num">
                  Earned
                </th>
              </tr>
            </thead>
            <tbody>
              {imageRows.map((r) => (
                <tr key={r.key}>
                  <td data-label="Photo">
                    <Link href={`/contributor/image/?id=${r.key}`}>{titles.get(r.key) ?? `Photo ${r.key.slice(0, 8)}`}</Link>
                  </td>
                  <td data-label="Downloads" className="num">
                    {fmt.format(r.downloads)}
                  </td>
                  <td data-label="Earned" className="num">
                    {formatEarned(r.earned)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section className="panel" aria-labelledby="payouts-heading">
        <h2 id="payouts-heading">Payouts</h2>
        <PayoutHistory payouts={payouts.payouts} />
      </section>
    </div>
  );
}

/** Every ledger entry of the twelve months as CSV, for a spreadsheet or an accountant. */
function CsvButton({ from }: { from: string }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function save() {
    setBusy(true);
    setError(null);
    try {
      await downloadReport(`/api/contributor/earnings.csv?from=${encodeURIComponent(from)}`, "earnings.csv");
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div>
      <button type="button" className="button small secondary" onClick={() => void save()} disabled={busy}>
        {busy ? "Preparing…" : "Download CSV"}
      </button>
      {error && (
        <p role="alert" className="notice error">
          {error}
        </p>
      )}
    </div>
  );
}

function total(row: Row): number {
  return Object.values(row.earned).reduce((a, b) => a + b, 0);
}

const PAYOUT_WORDS: Record<string, string> = {
  draft: "Being prepared",
  approved: "Approved",
  sending: "On its way",
  paid: "Paid",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function PayoutHistory({ payouts }: { payouts: Schemas["PayoutOut"][] }) {
  if (payouts.length === 0) {
    return (
      <EmptyState title="No payouts yet">
        <p>
          Payouts go out monthly once your balance passes your threshold, with your{" "}
          <Link href="/contributor/payouts/">tax form and payout account</Link> in place.
        </p>
      </EmptyState>
    );
  }
  return (
    <table className="table stackable">
      <thead>
        <tr>
          <th scope="col">Period</th>
          <th scope="col">Status</th>
          <th scope="col" className="num">
            Amount
          </th>
          <th scope="col" className="num">
            Tax withheld
          </th>
          <th scope="col" className="num">
            Paid to you
          </th>
          <th scope="col">Date</th>
        </tr>
      </thead>
      <tbody>
        {payouts.map((p) => (
          <tr key={p.id}>
            <td data-label="Period">{p.period}</td>
            <td data-label="Status">
              <span className={`status ${p.status}`}>{PAYOUT_WORDS[p.status] ?? p.status}</span>
              {p.failure_reason && <div className="muted small">{p.failure_reason}</div>}
            </td>
            <td data-label="Amount" className="num">
              {formatMoney({ amount_minor: p.gross_minor ?? p.amount_minor, currency: p.currency })}
            </td>
            <td data-label="Tax withheld" className="num">
              {p.withholding_minor == null ? "–" : formatMoney({ amount_minor: p.withholding_minor, currency: p.currency })}
            </td>
            <td data-label="Paid to you" className="num">
              {p.net_minor == null ? "–" : formatMoney({ amount_minor: p.net_minor, currency: p.currency })}
            </td>
            <td data-label="Date">{formatDate(p.updated_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A bar per month with chart.js, loaded only on this page; the table below says the same in text. */
function MonthChart({ rows }: { rows: Row[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const currency = rows.flatMap((r) => Object.keys(r.earned))[0] ?? "USD";
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  const values = rows.map((r) => (r.earned[currency] ?? 0) / 10 ** digits);
  const labels = rows.map((r) => monthLabel(r.key));
  const summary = `Earnings per month in ${currency}, ${labels[0]} to ${labels.at(-1)}: ${values
    .map((v, i) => `${labels[i]} ${new Intl.NumberFormat(undefined, { style: "currency", currency }).format(v)}`)
    .join(", ")}.`;

  useEffect(() => {
    let chart: { destroy: () => void } | null = null;
    let cancelled = false;
    void import("chart.js/auto").then(({ default: Chart }) => {
      if (cancelled || !canvas.current) return;
      chart = new Chart(canvas.current, {
        type: "bar",
        data: { labels, datasets: [{ label: `Earned (${currency})`, data: values, backgroundColor: "#0b57d0" }] },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: false } },
          scales: {
            y: {
              beginAtZero: true,
              ticks: { callback: (v) => new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(v)) },
            },
          },
        },
      });
    });
    return () => {
      cancelled = true;
      chart?.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [summary]);

  return (
    <div className="chart-box">
      <canvas ref={canvas} role="img" aria-label={summary} />
    </div>
  );
}
