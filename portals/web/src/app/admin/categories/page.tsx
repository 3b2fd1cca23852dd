import type { Metadata } from "next";
import { Suspense } from "react";
import { Categories } from "@/components/admin/Categories";
import { LinesSkeleton } from "@/components/States";

export const metadata: Metadata = { title: "Categories" };

export default function Page() {
  return (
    <>
      <h1>Categories</h1>
      <Suspense fallback={<LinesSkeleton lines={6} />}>
        <Categories />
      </Suspense>
    </>
  );
}
