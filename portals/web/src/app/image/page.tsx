import type { Metadata } from "next";
import { Suspense } from "react";
import { ImagePage } from "@/components/ImagePage";
import { LinesSkeleton } from "@/components/States";

export const metadata: Metadata = { title: "Image" };

export default function Page() {
  return (
    <Suspense fallback={<LinesSkeleton lines={6} />}>
      <ImagePage />
    </Suspense>
  );
}
