import type { Metadata } from "next";
import { GettingPaid } from "@/components/studio/GettingPaid";

export const metadata: Metadata = { title: "Getting paid" };

export default function GettingPaidPage() {
  return (
    <>
      <h1>Getting paid</h1>
      <GettingPaid />
    </>
  );
}
