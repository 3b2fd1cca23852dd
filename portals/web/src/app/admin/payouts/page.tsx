import type { Metadata } from "next";
import { PayoutBatches } from "@/components/admin/PayoutBatches";

export const metadata: Metadata = { title: "Payout batches" };

export default function Page() {
  return (
    <>
      <h1>Payout batches</h1>
      <PayoutBatches />
    </>
  );
}
