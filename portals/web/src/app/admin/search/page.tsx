import type { Metadata } from "next";
import { Suspense } from "react";
import { AdminSearch } from "@/components/admin/AdminSearch";
import { LinesSkeleton } from "@/components/States";

export const metadata: Metadata = { title: "Search and takedown" };

export default function Page() {
  return (
    <>
      <h1>Search & takedown</h1>
      <Suspense fallback={<LinesSkeleton lines={6} />}>
        <AdminSearch />
      </Suspense>
    </>
  );
}
