"use client";
import { useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { CheckoutReturn } from "@/components/CheckoutReturn";

function WithParams() {
  return <CheckoutReturn orderId={useSearchParams().get("order_id") ?? ""} />;
}

export default function Page() {
  return (
    <Suspense>
      <WithParams />
    </Suspense>
  );
}
