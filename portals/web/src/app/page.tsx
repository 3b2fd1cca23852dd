import { Suspense } from "react";
import { GridSkeleton } from "@/components/ImageGrid";
import { SearchPage } from "@/components/SearchPage";

export default function Page() {
  return (
    <Suspense fallback={<GridSkeleton />}>
      <SearchPage />
    </Suspense>
  );
}
