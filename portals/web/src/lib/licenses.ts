// What each licence allows, in one line, as buyers expect to read it beside the price.
import type { LicenseType } from "./cart";

export const LICENSE_TYPES: readonly LicenseType[] = ["standard", "enhanced"];

export const LICENSE_INFO: Record<LicenseType, { name: string; allows: string }> = {
  standard: { name: "Standard licence", allows: "Web, social and print up to 500,000 copies." },
  enhanced: { name: "Enhanced licence", allows: "Unlimited print runs, merchandise and products for resale." },
};
