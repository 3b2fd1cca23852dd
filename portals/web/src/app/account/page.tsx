"use client";
import { useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { AccountPage } from "@/components/AccountPage";

function WithParams() {
  return <AccountPage subscription={useSearchParams().get("subscription")} />;
}

export default function Page() {
  return (
    <Suspense>
      <WithParams />
    </Suspense>
  );
}
