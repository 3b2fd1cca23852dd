// Prices typed by a person ("19", "19.5", "1,299.00") to integer minor units, and back, without floats.
import { minorDigits } from "./money";

/** Minor units of a typed amount, or null when it is not a plain non-negative amount for the currency. */
export function toMinor(text: string, currency: string): number | null {
  const digits = minorDigits(currency);
  const cleaned = text.trim().replace(/[\s_]/g, "").replace(/,(?=\d{3}(\D|$))/g, "");
  const match = /^(\d+)(?:[.,](\d*))?$/.exec(cleaned);
  if (!match) return null;
  const whole = match[1] ?? "0";
  const fraction = match[2] ?? "";
  if (fraction.length > digits) return null; // 19.999 USD is a typo, not a price
  const minor = Number(whole + fraction.padEnd(digits, "0"));
  return Number.isSafeInteger(minor) ? minor : null;
}

/** "19.00" for 1900 USD, "1900" for 1900 JPY: what the price field shows to edit. */
export function fromMinor(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  if (digits === 0) return String(minor);
  const text = String(minor).padStart(digits + 1, "0");
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
}
