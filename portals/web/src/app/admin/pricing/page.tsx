import type { Metadata } from "next";
import { Suspense } from "react";
import { Pricing } from "@/components/admin/Pricing";
import { LinesSkeleton } from "@/components/States";

export const metadata: Metadata = { title: "Pricing" };

export default function Page() {
  return (
    <>
      <h1>Pricing</h1>
      <Suspense fallback={<LinesSkeleton lines={6} />}>
        <Pricing />
      </Suspense>
    </>
  );
}
