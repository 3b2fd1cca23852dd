"use client";
import Link from "next/link";
import { useState } from "react";
import { api, ApiProblem, call, messageOf } from "@/lib/api";
import { signOut } from "@/lib/auth";
import { LICENSE_INFO } from "@/lib/licenses";
import { formatCount, formatDate, formatMoney } from "@/lib/money";
import { useLoad } from "@/lib/useLoad";
import { RoleGuard } from "./RoleGuard";
import { EmptyState, ErrorState, LinesSkeleton } from "./States";
import { LicenceTable } from "./Licences";

function Orders() {
  const orders = useLoad(() => call(api.GET("/api/orders")), "orders");
  if (orders.status === "loading") return <LinesSkeleton lines={3} />;
  if (orders.status === "error") return <ErrorState error={orders.error} retry={orders.reload} />;
  if (!orders.data.orders.length) {
    return (
      <EmptyState title="No orders yet" actions={<Link className="button secondary" href="/">Find images</Link>}>
        <p>Images you buy appear here with their receipts.</p>
      </EmptyState>
    );
  }
  return (
    <table className="table stackable">
      <caption className="visually-hidden">Your orders</caption>
      <thead>
        <tr>
          <th scope="col">Date</th>
          <th scope="col">Images</th>
          <th scope="col">Status</th>
          <th scope="col" className="num">
            Total
          </th>
        </tr>
      </thead>
      <tbody>
        {orders.data.orders.map((order) => (
          <tr key={order.id}>
            <td data-label="Date">{formatDate(order.created_at)}</td>
            <td data-label="Images">
              <ul style={{ listStyle: "none", margin: 0, padding: 0 }}>
                {order.lines.map((l) => (
                  <li key={l.image_id}>
                    {l.title} <span className="muted">({LICENSE_INFO[l.license_type].name})</span>
                  </li>
                ))}
              </ul>
            </td>
            <td data-label="Status">
              <span className={`status ${order.status}`}>{order.status}</span>
            </td>
            <td data-label="Total" className="num">
              {formatMoney(order.total)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Licences() {
  const licences = useLoad(() => call(api.GET("/api/licenses")), "licences");
  if (licences.status === "loading") return <LinesSkeleton lines={3} />;
  if (licences.status === "error") return <ErrorState error={licences.error} retry={licences.reload} />;
  if (!licences.data.licenses.length) {
    return (
      <EmptyState title="No licences yet">
        <p>When you buy an image or use a plan download, its licence and download button appear here.</p>
      </EmptyState>
    );
  }
  return <LicenceTable licences={licences.data.licenses} caption="Your licences" />;
}

function Plan({ notice }: { notice: string | null }) {
  const current = useLoad(
    () =>
      call(api.GET("/api/subscription")).catch((err: unknown) => {
        if (err instanceof ApiProblem && err.status === 404) return null; // no plan yet
        throw err;
      }),
    "subscription",
  );
  const plans = useLoad(() => call(api.GET("/api/subscriptions/plans")), "plans");
  const [error, setError] = useState<string | null>(null);

  async function subscribe(plan: string) {
    setError(null);
    try {
      const started = await call(api.POST("/api/subscriptions/checkout", { body: { plan } }));
      window.location.assign(started.checkout_url);
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <div className="stack">
      {notice && <p className="notice">{notice}</p>}
      {current.status === "loading" && <LinesSkeleton lines={2} />}
      {current.status === "error" && <ErrorState error={current.error} retry={current.reload} />}
      {current.status === "ready" && current.data && (
        <div className="panel">
          <h3>
            Your plan: {current.data.plan} <span className={`status ${current.data.status}`}>{current.data.status}</span>
          </h3>
          <p>
            <strong>{formatCount(current.data.remaining)}</strong> of {formatCount(current.data.allotment)} downloads left
            this period
            {current.data.current_period_end ? `, renews ${formatDate(current.data.current_period_end)}` : ""}.
          </p>
          <progress max={current.data.allotment} value={current.data.remaining} aria-label="Downloads left" style={{ width: "100%" }} />
        </div>
      )}
      {current.status === "ready" && !current.data && (
        <p className="muted">You have no plan. A plan licenses a number of images each month at a lower price each.</p>
      )}
      {plans.status === "ready" && plans.data.plans.length > 0 && (
        <ul className="plans" aria-label="Plans">
          {plans.data.plans.map((plan) => (
            <li key={plan.name} className="panel stack">
              <h3>{plan.name}</h3>
              <p>
                <strong style={{ fontSize: "1.4rem" }}>{formatMoney(plan.price)}</strong> <span className="muted">a month</span>
              </p>
              <p>{formatCount(plan.downloads_per_month)} downloads a month</p>
              {!(current.status === "ready" && current.data) && (
                <button type="button" className="button secondary wide" onClick={() => void subscribe(plan.name)}>
                  Subscribe
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {plans.status === "error" && <ErrorState error={plans.error} retry={plans.reload} />}
      {error && (
        <p className="notice error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function AccountPage({ subscription }: { subscription: string | null }) {
  const notice =
    subscription === "success"
      ? "Thank you! Your plan starts as soon as Stripe confirms the payment (a few seconds)."
      : subscription === "cancelled"
        ? "Subscription cancelled: nothing was charged."
        : null;
  return (
    <RoleGuard role="buyer">
      <div className="stack">
        <div className="row">
          <h1 style={{ margin: 0 }}>Your account</h1>
          <span className="spacer" />
          <button type="button" className="button quiet small" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
        <nav aria-label="Account sections" className="row">
          <a href="#licences">Licences</a>
          <a href="#orders">Orders</a>
          <a href="#plan">Plan</a>
        </nav>
        <section id="licences" aria-labelledby="licences-heading" className="stack">
          <h2 id="licences-heading">Licences and downloads</h2>
          <Licences />
        </section>
        <section id="orders" aria-labelledby="orders-heading" className="stack">
          <h2 id="orders-heading">Orders</h2>
          <Orders />
        </section>
        <section id="plan" aria-labelledby="plan-heading" className="stack">
          <h2 id="plan-heading">Subscription plan</h2>
          <Plan notice={notice} />
        </section>
      </div>
    </RoleGuard>
  );
}
