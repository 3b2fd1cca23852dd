import type { Metadata } from "next";
import { Suspense } from "react";
import { LinesSkeleton } from "@/components/States";
import { EditImage } from "@/components/studio/EditImage";

export const metadata: Metadata = { title: "Photo details" };

export default function ImageDetailsPage() {
  return (
    <>
      <h1>Photo details</h1>
      <Suspense fallback={<LinesSkeleton lines={8} />}>
        <EditImage />
      </Suspense>
    </>
  );
}
