import type { Metadata } from "next";
import { Earnings } from "@/components/studio/Earnings";

export const metadata: Metadata = { title: "Earnings" };

export default function EarningsPage() {
  return (
    <>
      <h1>Earnings</h1>
      <Earnings />
    </>
  );
}
