"use client";
import { useId, useState, type FormEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { percent } from "@/lib/earnings";
import { formatDate } from "@/lib/money";
import { useLoad } from "@/lib/useLoad";
import { ErrorState, LinesSkeleton } from "../States";

type Level = { from_download: string; rate: string };

/** The royalty levels per yearly download count; a new table applies to sales from its start date. */
export function RoyaltyLevels() {
  const tables = useLoad(() => call(api.GET("/api/admin/royalty-tables")), "royalties");
  const [levels, setLevels] = useState<Level[]>([
    { from_download: "1", rate: "15" },
    { from_download: "101", rate: "25" },
  ]);
  const [effective, setEffective] = useState("");
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const base = useId();

  const publish = async (event: FormEvent) => {
    event.preventDefault();
    const parsed = levels.map((l) => ({
      from_download: Number.parseInt(l.from_download, 10),
      // Basis points from a percentage typed with up to two decimals, without float drift.
      rate_bp: Math.round(Number.parseFloat(l.rate.replace(",", ".")) * 100),
    }));
    if (parsed.some((l) => !Number.isInteger(l.from_download) || !Number.isFinite(l.rate_bp))) {
      setNotice({ tone: "error", text: "Each level needs a first download (a whole number) and a rate in percent." });
      return;
    }
    try {
      await call(
        api.POST("/api/admin/royalty-tables", {
          body: { effective_at: new Date(`${effective}T00:00:00`).toISOString(), levels: parsed },
        }),
      );
      setNotice({ tone: "success", text: "Royalty levels published." });
      tables.reload();
    } catch (err) {
      setNotice({ tone: "error", text: messageOf(err) });
    }
  };

  return (
    <div className="two-col">
      <section className="stack" aria-labelledby="tables-heading">
        <h2 id="tables-heading">Published tables</h2>
        {tables.status === "loading" && <LinesSkeleton lines={4} />}
        {tables.status === "error" && <ErrorState error={tables.error} retry={tables.reload} />}
        {tables.status === "ready" &&
          [...tables.data.tables].reverse().map((t: Schemas["RoyaltyTableOut"]) => (
            <div key={t.version} className="panel">
              <h3>
                Version {t.version}, from {formatDate(t.effective_at)}
              </h3>
              <ol className="levels">
                {t.levels.map((l, i) => (
                  <li key={l.from_download}>
                    Level {i + 1}: from download {new Intl.NumberFormat().format(l.from_download)} of the year,{" "}
                    <strong>{percent(l.rate_bp)}</strong>
                  </li>
                ))}
              </ol>
              <p className="muted small">
                Published by {t.published_by} on {formatDate(t.published_at)}
              </p>
            </div>
          ))}
      </section>
      <form className="panel stack" onSubmit={publish} aria-labelledby="new-table-heading">
        <h2 id="new-table-heading">New table</h2>
        <div className="field">
          <label htmlFor={`${base}-from`}>Applies to sales from</label>
          <input id={`${base}-from`} type="date" required value={effective} onChange={(e) => setEffective(e.target.value)} />
        </div>
        {levels.map((level, i) => (
          <fieldset key={i} className="level-row">
            <legend>Level {i + 1}</legend>
            <div className="field">
              <label htmlFor={`${base}-d${i}`}>From download</label>
              <input
                id={`${base}-d${i}`}
                type="text"
                inputMode="numeric"
                value={level.from_download}
                disabled={i === 0}
                onChange={(e) => setLevels(levels.map((l, j) => (j === i ? { ...l, from_download: e.target.value } : l)))}
              />
            </div>
            <div className="field">
              <label htmlFor={`${base}-r${i}`}>Rate (%)</label>
              <input
                id={`${base}-r${i}`}
                type="text"
                inputMode="decimal"
                value={level.rate}
                onChange={(e) => setLevels(levels.map((l, j) => (j === i ? { ...l, rate: e.target.value } : l)))}
              />
            </div>
            {i > 0 && (
              <button
                type="button"
                className="button small quiet"
                onClick={() => setLevels(levels.filter((_, j) => j !== i))}
              >
                Remove<span className="visually-hidden"> level {i + 1}</span>
              </button>
            )}
          </fieldset>
        ))}
        <div className="row">
          <button
            type="button"
            className="button secondary"
            onClick={() => setLevels([...levels, { from_download: "", rate: "" }])}
          >
            Add a level
          </button>
          <button type="submit" className="button">
            Publish
          </button>
        </div>
        {notice && (
          <p className={`notice ${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
            {notice.text}
          </p>
        )}
      </form>
    </div>
  );
}
