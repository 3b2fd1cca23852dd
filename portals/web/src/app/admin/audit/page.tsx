import type { Metadata } from "next";
import { Suspense } from "react";
import { AuditLog } from "@/components/admin/AuditLog";
import { LinesSkeleton } from "@/components/States";

export const metadata: Metadata = { title: "Audit log" };

export default function Page() {
  return (
    <>
      <h1>Audit log</h1>
      <Suspense fallback={<LinesSkeleton lines={6} />}>
        <AuditLog />
      </Suspense>
    </>
  );
}
