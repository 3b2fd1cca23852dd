"use client";
import { useEffect, useId, useState, type FormEvent, type ReactNode } from "react";
import { ApiProblem, api, call, messageOf, type Schemas } from "@/lib/api";
import { errorSummary, placeErrors } from "@/lib/formErrors";
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

// The form's fields as the API names them, in the order they appear, with their labels.
const TAX_FIELDS = {
  form_type: "Form",
  legal_name: "Legal name",
  "address.line1": "Street address",
  "address.city": "City",
  "address.postal_code": "Postal code",
  "address.country": "Country of address (e.g. PT)",
  country: "Country of tax residence (e.g. PT)",
  tin: "Tax id (SSN, EIN or foreign TIN)",
  treaty_claim: "Claim the tax treaty rate",
} as const;
type TaxField = keyof typeof TAX_FIELDS;
const FIELD_ORDER = Object.keys(TAX_FIELDS) as TaxField[];

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
  const [invalid, setInvalid] = useState<TaxField[]>([]);
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(
    saved ? { tone: "success", text: "Tax form saved." } : null,
  );
  const [busy, setBusy] = useState(false);
  const [refusals, setRefusals] = useState(0); // each refused submit moves the focus again
  const base = useId();
  const idOf = (field: TaxField) => `${base}-${field.replace(".", "-")}`;
  const focusField = (field: TaxField) => document.getElementById(idOf(field))?.focus();
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  // After a refused submit, the first field to fix takes the focus: its label and reason are read out.
  useEffect(() => {
    if (refusals > 0 && invalid[0]) focusField(invalid[0]);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [refusals]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setInvalid([]);
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
        // Each reason next to its field; the summary links to each, and the first takes the focus.
        const placed = placeErrors(err.errors, FIELD_ORDER);
        setErrors(placed.byField);
        setInvalid(placed.invalid as TaxField[]);
        setNotice({ tone: "error", text: errorSummary(placed) });
        setRefusals((n) => n + 1);
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
      <Field label={TAX_FIELDS.form_type} id={idOf("form_type")} error={errors.form_type}>
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
      <Field label={TAX_FIELDS.legal_name} id={idOf("legal_name")} error={errors.legal_name}>
        {(p) => <input {...p} type="text" value={form.legal_name} onChange={(e) => set({ legal_name: e.target.value })} />}
      </Field>
      <Field label={TAX_FIELDS["address.line1"]} id={idOf("address.line1")} error={errors["address.line1"]}>
        {(p) => <input {...p} type="text" value={form.line1} onChange={(e) => set({ line1: e.target.value })} />}
      </Field>
      <div className="row fields-row">
        <Field label={TAX_FIELDS["address.city"]} id={idOf("address.city")} error={errors["address.city"]}>
          {(p) => <input {...p} type="text" value={form.city} onChange={(e) => set({ city: e.target.value })} />}
        </Field>
        <Field label={TAX_FIELDS["address.postal_code"]} id={idOf("address.postal_code")} error={errors["address.postal_code"]}>
          {(p) => (
            <input {...p} type="text" value={form.postal_code} onChange={(e) => set({ postal_code: e.target.value })} />
          )}
        </Field>
        <Field label={TAX_FIELDS["address.country"]} id={idOf("address.country")} error={errors["address.country"]}>
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
      <Field label={TAX_FIELDS.country} id={idOf("country")} error={errors.country}>
        {(p) => (
          <input {...p} type="text" maxLength={2} value={form.country} onChange={(e) => set({ country: e.target.value })} />
        )}
      </Field>
      <Field label={TAX_FIELDS.tin} id={idOf("tin")} error={errors.tin}>
        {(p) => (
          <input {...p} type="text" autoComplete="off" value={form.tin} onChange={(e) => set({ tin: e.target.value })} />
        )}
      </Field>
      <div className="field">
        <label className="check">
          <input
            id={idOf("treaty_claim")}
            type="checkbox"
            checked={form.treaty_claim}
            aria-invalid={errors.treaty_claim ? true : undefined}
            aria-describedby={errors.treaty_claim ? `${idOf("treaty_claim")}-error` : undefined}
            onChange={(e) => set({ treaty_claim: e.target.checked })}
          />{" "}
          Claim the tax treaty rate of my country (W-8 forms)
        </label>
        {errors.treaty_claim && (
          <p className="field-error" id={`${idOf("treaty_claim")}-error`}>
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
        <div className={`notice ${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
          <p className="notice-text">{notice.text}</p>
          {notice.tone === "error" && invalid.length > 0 && (
            <ul className="error-links">
              {invalid.map((field) => (
                <li key={field}>
                  <a
                    href={`#${idOf(field)}`}
                    onClick={(event) => {
                      event.preventDefault();
                      focusField(field);
                    }}
                  >
                    {TAX_FIELDS[field]}
                  </a>
                </li>
              ))}
            </ul>
          )}
        </div>
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
