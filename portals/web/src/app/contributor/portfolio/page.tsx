import type { Metadata } from "next";
import { Suspense } from "react";
import { LinesSkeleton } from "@/components/States";
import { Portfolio } from "@/components/studio/Portfolio";

export const metadata: Metadata = { title: "Portfolio" };

export default function PortfolioPage() {
  return (
    <>
      <h1>Portfolio</h1>
      <Suspense fallback={<LinesSkeleton lines={6} />}>
        <Portfolio />
      </Suspense>
    </>
  );
}
