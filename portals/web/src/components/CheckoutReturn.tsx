"use client";
import Link from "next/link";
import { useEffect, useState } from "react";
import { api, ApiProblem, call, type Schemas } from "@/lib/api";
import { refreshCount } from "@/lib/cart";
import { LICENSE_INFO } from "@/lib/licenses";
import { formatMoney } from "@/lib/money";
import { MAX_ATTEMPTS, nextDelay } from "@/lib/polling";
import { useSession } from "@/lib/useSession";
import { LicenceTable } from "./Licences";
import { EmptyState, ErrorState, LinesSkeleton } from "./States";

type Order = Schemas["OrderOut"];
type View =
  | { step: "waiting"; order: Order | null }
  | { step: "paid"; order: Order; licences: Schemas["LicenseOut"][] }
  | { step: "failed"; order: Order }
  | { step: "slow" }
  | { step: "error"; error: unknown };

/** After Stripe's page: says what happens next, polls the order, and becomes the download list when paid. */
export function CheckoutReturn({ orderId }: { orderId: string }) {
  const session = useSession();
  const [view, setView] = useState<View>({ step: "waiting", order: null });

  useEffect(() => {
    if (session.status !== "signed-in" || !orderId) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (attempt: number) => {
      try {
        const { orders } = await call(api.GET("/api/orders"));
        const order = orders.find((o) => o.id === orderId) ?? null;
        if (stopped) return;
        if (order?.status === "paid") {
          const { licenses } = await call(api.GET("/api/licenses"));
          if (!stopped) setView({ step: "paid", order, licences: licenses.filter((l) => l.order_id === orderId) });
          refreshCount();
          return;
        }
        if (order && ["failed", "expired", "cancelled"].includes(order.status)) {
          setView({ step: "failed", order });
          return;
        }
        if (attempt >= MAX_ATTEMPTS) {
          setView({ step: "slow" });
          return;
        }
        setView({ step: "waiting", order });
        timer = setTimeout(() => void poll(attempt + 1), nextDelay(attempt));
      } catch (error) {
        if (!stopped) setView({ step: "error", error });
      }
    };
    void poll(0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [orderId, session.status]);

  if (!orderId) {
    return (
      <EmptyState title="No order to show" actions={<Link className="button" href="/account/">Your orders</Link>}>
        <p>This page shows an order after payment. Your orders and downloads are in your account.</p>
      </EmptyState>
    );
  }
  if (session.status === "loading") return <LinesSkeleton lines={3} />;
  if (session.status === "guest") {
    return (
      <ErrorState error={new ApiProblem(401, "Sign in again to see this order and download your images.", "Sign in")} page />
    );
  }

  return (
    <div className="stack" aria-live="polite">
      {view.step === "waiting" && (
        <>
          <h1>Thank you! Confirming your payment…</h1>
          <p className="notice">
            Stripe has your payment; we are waiting for its confirmation, which usually takes a few seconds. This page
            turns into your downloads by itself: no need to reload.
          </p>
          {view.order ? (
            <ul className="stack" style={{ listStyle: "none", padding: 0 }}>
              {view.order.lines.map((line) => (
                <li key={line.image_id} className="panel row">
                  <span style={{ flex: 1 }}>{line.title}</span>
                  <span className="muted">{LICENSE_INFO[line.license_type].name}</span>
                  <strong>{formatMoney(line.price)}</strong>
                </li>
              ))}
            </ul>
          ) : (
            <LinesSkeleton lines={2} />
          )}
        </>
      )}
      {view.step === "paid" && (
        <>
          <h1>Payment received: your images are ready</h1>
          <p className="notice success">
            Order paid, {formatMoney(view.order.total)}. Download the originals below; they stay in{" "}
            <Link href="/account/">your account</Link> for later.
          </p>
          <LicenceTable licences={view.licences} caption="Licences from this order" />
        </>
      )}
      {view.step === "failed" && (
        <EmptyState title="The payment did not go through" actions={<Link className="button" href="/cart/">Back to your cart</Link>}>
          <p>Nothing was charged. You can try again from your cart.</p>
        </EmptyState>
      )}
      {view.step === "slow" && (
        <EmptyState title="Still waiting for the payment confirmation" actions={<Link className="button" href="/account/">Your orders</Link>}>
          <p>It is taking longer than usual. Your order will show as paid in your account as soon as it arrives.</p>
        </EmptyState>
      )}
      {view.step === "error" && <ErrorState error={view.error} retry={() => location.reload()} page />}
    </div>
  );
}
