"use client";
import { useEffect, useId, useState, type FormEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { fromMinor, toMinor } from "@/lib/moneyInput";
import { useLoad } from "@/lib/useLoad";
import { ErrorState, LinesSkeleton } from "../States";

const LICENCES = [
  { key: "standard", label: "Standard licence", help: "Web, social and print up to 500,000 copies." },
  { key: "enhanced", label: "Enhanced licence", help: "Unlimited print runs and merchandise." },
] as const;
const CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "AUD"];

type Draft = Record<(typeof LICENCES)[number]["key"], { amount: string; currency: string }>;

/** The price of each licence, entered in major units and stored as integer minor units. */
export function Pricing() {
  const pricing = useLoad(() => call(api.GET("/api/admin/pricing")), "pricing");
  const [draft, setDraft] = useState<Draft | null>(null);
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const ids = { standard: useId(), enhanced: useId() };

  // Only a new answer from the API resets the form (useLoad hands out a new wrapper every render).
  const loaded = pricing.status === "ready" ? pricing.data : null;
  useEffect(() => {
    if (!loaded) return;
    const p = loaded.prices;
    const of = (k: string) => {
      const price = p[k];
      return price ? { amount: fromMinor(price.amount_minor, price.currency), currency: price.currency } : { amount: "", currency: "USD" };
    };
    setDraft({ standard: of("standard"), enhanced: of("enhanced") });
  }, [loaded]);

  if (pricing.status === "loading" || !draft) {
    return pricing.status === "error" ? <ErrorState error={pricing.error} retry={pricing.reload} /> : <LinesSkeleton lines={4} />;
  }
  if (pricing.status === "error") return <ErrorState error={pricing.error} retry={pricing.reload} />;

  const save = async (event: FormEvent) => {
    event.preventDefault();
    const prices: Partial<Schemas["PricesIn"]> = {};
    for (const { key, label } of LICENCES) {
      const minor = toMinor(draft[key].amount, draft[key].currency);
      if (minor === null || minor < 1) {
        setNotice({ tone: "error", text: `${label}: enter a price above zero, like 19.00.` });
        return;
      }
      prices[key] = { amount_minor: minor, currency: draft[key].currency };
    }
    try {
      await call(api.PUT("/api/admin/pricing", { body: { prices: prices as Schemas["PricesIn"] } }));
      setNotice({ tone: "success", text: "Prices published. Buyers see them on their next page." });
      pricing.reload();
    } catch (err) {
      setNotice({ tone: "error", text: messageOf(err) });
    }
  };

  const data = pricing.data;
  return (
    <form className="stack pricing-form" onSubmit={save}>
      {LICENCES.map(({ key, label, help }) => (
        <fieldset key={key} className="panel">
          <legend>{label}</legend>
          <p className="muted">{help}</p>
          <div className="row">
            <div className="field">
              <label htmlFor={ids[key]}>Price</label>
              <input
                id={ids[key]}
                type="text"
                inputMode="decimal"
                value={draft[key].amount}
                onChange={(e) => setDraft({ ...draft, [key]: { ...draft[key], amount: e.target.value } })}
              />
            </div>
            <div className="field">
              <label htmlFor={`${ids[key]}-currency`}>Currency</label>
              <select
                id={`${ids[key]}-currency`}
                value={draft[key].currency}
                onChange={(e) => setDraft({ ...draft, [key]: { ...draft[key], currency: e.target.value } })}
              >
                {[...new Set([draft[key].currency, ...CURRENCIES])].map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            </div>
          </div>
        </fieldset>
      ))}
      <p className="muted">
        Revision {data.revision}
        {data.updated_by ? `, set by ${data.updated_by}` : ""} on{" "}
        {new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(data.updated_at))}.
      </p>
      <div className="row">
        <button type="submit" className="button">
          Publish prices
        </button>
      </div>
      {notice && (
        <p className={`notice ${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
          {notice.text}
        </p>
      )}
    </form>
  );
}
