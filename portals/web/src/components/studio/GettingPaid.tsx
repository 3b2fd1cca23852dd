"use client";
import { useId, useState, type FormEvent, type ReactNode } from "react";
import { ApiProblem, api, call, messageOf, type Schemas } from "@/lib/api";
import { formatDate } from "@/lib/money";
import { percent } from "@/lib/earnings";
import { optionalFields } from "@/lib/optionalFields";
import { useLoad } from "@/lib/useLoad";
import { ErrorState, LinesSkeleton } from "../States";

type TaxIn = Schemas["TaxInfoIn"];
type FormType = TaxIn["form_type"];
const FORMS: { value: FormType; label: string }[] = [
  { value: "W-9", label: "W-9: US person (SSN or EIN)" },
  { value: "W-8BEN", label: "W-8BEN: individual outside the US" },
  { value: "W-8BEN-E", label: "W-8BEN-E: company outside the US" },
];

/** null where there is nothing yet (the API's 404), so the page offers to create it. */
async function orNone<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (err) {
    if (err instanceof ApiProblem && err.status === 404) return null;
    throw err;
  }
}

export function GettingPaid() {
  const tax = useLoad(() => orNone(call(api.GET("/api/contributor/tax-info"))), "tax");
  const account = useLoad(() => orNone(call(api.GET("/api/contributor/payout-account"))), "account");
  // The reload after a save remounts the form: the "saved" notice must outlive it.
  const [saved, setSaved] = useState(false);
  return (
    <div className="two-col">
      <section className="panel stack" aria-labelledby="tax-heading">
        <h2 id="tax-heading">Tax information</h2>
        {tax.status === "loading" && <LinesSkeleton lines={6} />}
        {tax.status === "error" && <ErrorState error={tax.error} retry={tax.reload} />}
        {tax.status === "ready" && (
          <TaxForm
            current={tax.data}
            saved={saved}
            onSaved={() => {
              setSaved(true);
              tax.reload();
            }}
          />
        )}
      </section>
      <section className="panel stack" aria-labelledby="account-heading">
        <h2 id="account-heading">Payout account</h2>
        {account.status === "loading" && <LinesSkeleton lines={3} />}
        {account.status === "error" && <ErrorState error={account.error} retry={account.reload} />}
        {account.status === "ready" && <AccountPanel current={account.data} />}
      </section>
    </div>
  );
}

function Field({
  label,
  error,
  children,
  id,
}: {
  label: string;
  error?: string;
  children: (props: { id: string; "aria-invalid"?: true; "aria-describedby"?: string }) => ReactNode;
  id: string;
}) {
  const errorId = `${id}-error`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(error ? { id, "aria-invalid": true, "aria-describedby": errorId } : { id })}
      {error && (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      )}
    </div>
  );
}

function TaxForm({
  current,
  saved,
  onSaved,
}: {
  current: Schemas["TaxInfoOut"] | null;
  saved: boolean;
  onSaved: () => void;
}) {
  const [form, setForm] = useState({
    form_type: (current?.form_type ?? "W-8BEN") as FormType,
    legal_name: current?.legal_name ?? "",
    line1: current?.address.line1 ?? "",
    city: current?.address.city ?? "",
    postal_code: current?.address.postal_code ?? "",
    address_country: current?.address.country ?? "",
    country: current?.country ?? "",
    tin: "",
    treaty_claim: current?.treaty_claim ?? false,
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(
    saved ? { tone: "success", text: "Tax form saved." } : null,
  );
  const [busy, setBusy] = useState(false);
  const base = useId();
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setNotice(null);
    try {
      const body: TaxIn = {
        form_type: form.form_type,
        legal_name: form.legal_name.trim(),
        address: optionalFields<TaxIn["address"]>({
          line1: form.line1.trim(),
          city: form.city.trim(),
          postal_code: form.postal_code.trim() || undefined,
          country: form.address_country.trim().toUpperCase(),
        }),
        country: form.country.trim().toUpperCase(),
        tin: form.tin.trim(),
        treaty_claim: form.treaty_claim,
      };
      await call(api.PUT("/api/contributor/tax-info", { body }));
      setNotice({ tone: "success", text: "Tax form saved." });
      onSaved();
    } catch (err) {
      if (err instanceof ApiProblem && err.errors.length) {
        // One message per field, next to it; the summary says how many.
        const byField: Record<string, string> = {};
        for (const e of err.errors) byField[String(e.name).replace(/^body\./, "")] = String(e.reason);
        setErrors(byField);
        setNotice({ tone: "error", text: `Check the ${err.errors.length === 1 ? "field" : "fields"} marked below.` });
      } else {
        setNotice({ tone: "error", text: messageOf(err) });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="stack" onSubmit={submit} noValidate>
      {current && (
        <p className="notice">
          On file: {current.form_type} for {current.legal_name}, tax id ending {current.tin_last4}; withholding{" "}
          {percent(current.withholding_rate_bp)} (updated {formatDate(current.updated_at)}). Submit again to replace it.
        </p>
      )}
      <Field label="Form" id={`${base}-form`} error={errors.form_type}>
        {(p) => (
          <select {...p} value={form.form_type} onChange={(e) => set({ form_type: e.target.value as FormType })}>
            {FORMS.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Legal name" id={`${base}-name`} error={errors.legal_name}>
        {(p) => <input {...p} type="text" value={form.legal_name} onChange={(e) => set({ legal_name: e.target.value })} />}
      </Field>
      <Field label="Street address" id={`${base}-line1`} error={errors["address.line1"]}>
        {(p) => <input {...p} type="text" value={form.line1} onChange={(e) => set({ line1: e.target.value })} />}
      </Field>
      <div className="row fields-row">
        <Field label="City" id={`${base}-city`} error={errors["address.city"]}>
          {(p) => <input {...p} type="text" value={form.city} onChange={(e) => set({ city: e.target.value })} />}
        </Field>
        <Field label="Postal code" id={`${base}-postal`} error={errors["address.postal_code"]}>
          {(p) => (
            <input {...p} type="text" value={form.postal_code} onChange={(e) => set({ postal_code: e.target.value })} />
          )}
        </Field>
        <Field label="Country of address (e.g. PT)" id={`${base}-acountry`} error={errors["address.country"]}>
          {(p) => (
            <input
              {...p}
              type="text"
              maxLength={2}
              value={form.address_country}
              onChange={(e) => set({ address_country: e.target.value })}
            />
          )}
        </Field>
      </div>
      <Field label="Country of tax residence (e.g. PT)" id={`${base}-country`} error={errors.country}>
        {(p) => (
          <input {...p} type="text" maxLength={2} value={form.country} onChange={(e) => set({ country: e.target.value })} />
        )}
      </Field>
      <Field label="Tax id (SSN, EIN or foreign TIN)" id={`${base}-tin`} error={errors.tin}>
        {(p) => (
          <input {...p} type="text" autoComplete="off" value={form.tin} onChange={(e) => set({ tin: e.target.value })} />
        )}
      </Field>
      <div className="field">
        <label className="check">
          <input
            type="checkbox"
            checked={form.treaty_claim}
            aria-describedby={errors.treaty_claim ? `${base}-treaty-error` : undefined}
            onChange={(e) => set({ treaty_claim: e.target.checked })}
          />{" "}
          Claim the tax treaty rate of my country (W-8 forms)
        </label>
        {errors.treaty_claim && (
          <p className="field-error" id={`${base}-treaty-error`}>
            {errors.treaty_claim}
          </p>
        )}
      </div>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>
          {busy ? "Saving…" : "Save tax form"}
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

function AccountPanel({ current }: { current: Schemas["PayoutAccountOut"] | null }) {
  const [country, setCountry] = useState(current?.country ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = useId();
  const start = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await call(
        api.POST("/api/contributor/payout-account", {
          body: optionalFields<Schemas["PayoutAccountIn"]>({ country: country.trim().toUpperCase() }),
        }),
      );
      if (out.onboarding_url) window.location.assign(out.onboarding_url);
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <form className="stack" onSubmit={start}>
      {current ? (
        <p className={`notice ${current.payouts_enabled ? "success" : ""}`}>
          {current.payouts_enabled
            ? `Payouts are on: Stripe account for ${current.country}.`
            : "Stripe still needs some details before it can pay you."}
        </p>
      ) : (
        <p>Payouts go through Stripe. Create your account and finish its short form on Stripe&apos;s page.</p>
      )}
      {!current && (
        <div className="field">
          <label htmlFor={id}>Country (e.g. PT)</label>
          <input id={id} type="text" maxLength={2} required value={country} onChange={(e) => setCountry(e.target.value)} />
        </div>
      )}
      {(!current || !current.payouts_enabled) && (
        <div className="row">
          <button type="submit" className="button" disabled={busy}>
            {current ? "Continue on Stripe" : "Set up payouts on Stripe"}
          </button>
        </div>
      )}
      {error && (
        <p className="notice error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
