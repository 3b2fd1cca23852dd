"use client";
import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { ErrorState, LinesSkeleton } from "@/components/States";
import { completeSignIn } from "@/lib/auth";
import { moveGuestCart } from "@/lib/cart";

export default function SignInCallback() {
  const router = useRouter();
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    completeSignIn()
      .then(async (returnTo) => {
        await moveGuestCart().catch(() => undefined); // a pick that can no longer be bought is simply dropped
        router.replace(returnTo);
      })
      .catch(setError);
  }, [router]);
  if (error) return <ErrorState error={error} title="Sign-in did not finish" page />;
  return (
    <section aria-label="Signing you in">
      <h1>Signing you in…</h1>
      <LinesSkeleton lines={2} />
    </section>
  );
}
