"use client";
import { useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { CartPage } from "@/components/CartPage";

function WithParams() {
  return <CartPage cancelled={useSearchParams().get("checkout") === "cancelled"} />;
}

export default function Page() {
  return (
    <Suspense>
      <WithParams />
    </Suspense>
  );
}
