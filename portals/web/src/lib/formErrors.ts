// A problem+json's field errors, placed on a form's fields: each field gets its reasons in words next to
// it (aria-invalid, aria-describedby), the first one in the form's order takes the focus, and only what
// names no field of the form goes to the summary alone.

export interface FieldError {
  name: string;
  reason: string;
}

export interface Placed {
  /** Field name (as the form knows it) to what is wrong with it, in one sentence. */
  byField: Record<string, string>;
  /** The invalid fields in the form's order; the first takes the focus. */
  invalid: string[];
  /** Errors that name no field of the form ("name: reason"), for the summary. */
  elsewhere: string[];
}

const sentence = (reason: string) => {
  const text = reason.trim();
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
};

/** `fields` in the order they appear; an error's name may carry the request part ("body.country"). */
export function placeErrors(errors: readonly { name: unknown; reason: unknown }[], fields: readonly string[]): Placed {
  const known = new Set(fields);
  const reasons = new Map<string, string[]>();
  const elsewhere: string[] = [];
  for (const error of errors) {
    const name = String(error.name).replace(/^body\./, "");
    const reason = String(error.reason);
    if (!known.has(name)) {
      elsewhere.push(`${name}: ${reason}`);
      continue;
    }
    const list = reasons.get(name) ?? [];
    // A field can break two rules at once (a W-9 with a malformed country): say both, once each.
    if (!list.includes(reason)) list.push(reason);
    reasons.set(name, list);
  }
  const byField: Record<string, string> = {};
  for (const [name, list] of reasons) byField[name] = list.map(sentence).join(" ");
  return { byField, invalid: fields.filter((f) => f in byField), elsewhere };
}

/** The summary's opening words (a link to each field follows them), and what names no field. */
export function errorSummary(placed: Placed): string {
  const count = placed.invalid.length;
  const fields = count === 0 ? "" : count === 1 ? "Check this field:" : `Check these ${count} fields:`;
  return [...placed.elsewhere, fields].filter(Boolean).join(" ");
}
