"use client";
import Link from "next/link";
import { useEffect, useState } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { signIn } from "@/lib/auth";
import { guestItems, loadCart, removeFromCart, removeGuestItem, type GuestItem } from "@/lib/cart";
import { LICENSE_INFO } from "@/lib/licenses";
import { formatMoney } from "@/lib/money";
import { useLoad } from "@/lib/useLoad";
import { hasRole, useSession } from "@/lib/useSession";
import { EmptyState, ErrorState, LinesSkeleton } from "./States";

type Cart = Schemas["CartOut"];

function Thumb({ id, title }: { id: string; title: string }) {
  const image = useLoad(() => call(api.GET("/api/images/{id}", { params: { path: { id } } })), id);
  if (image.status !== "ready") return <div className="skeleton" style={{ width: 96, height: 72 }} />;
  const ratio = image.data.width / Math.max(image.data.height, 1);
  return (
    <img
      src={image.data.thumbnail_small_url}
      alt={title}
      width={96}
      height={Math.round(96 / ratio)}
      style={{ borderRadius: 6, objectFit: "cover", maxHeight: 96, display: "block" }}
    />
  );
}

function GuestCart() {
  const [items, setItems] = useState<GuestItem[]>([]);
  useEffect(() => setItems(guestItems()), []);
  if (!items.length) return <EmptyCart />;
  return (
    <div className="two-col">
      <ul className="stack" style={{ listStyle: "none", padding: 0, margin: 0 }} aria-label="Images in your cart">
        {items.map((item) => (
          <li key={item.image_id} className="panel cart-item">
            <Thumb id={item.image_id} title={item.title} />
            <div>
              <Link href={`/image/?id=${item.image_id}`}>{item.title}</Link>
              <div className="muted">{LICENSE_INFO[item.license_type].name}</div>
            </div>
            <button
              type="button"
              className="button quiet small"
              onClick={() => {
                removeGuestItem(item.image_id);
                setItems(guestItems());
              }}
              aria-label={`Remove ${item.title}`}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <aside className="panel stack" aria-label="Check out">
        <h2>Ready to check out?</h2>
        <p>Sign in as a buyer to see the prices in your currency and pay. Your picks come with you.</p>
        <button type="button" className="button wide" onClick={() => void signIn("/cart/")}>
          Sign in to check out
        </button>
      </aside>
    </div>
  );
}

function EmptyCart() {
  return (
    <EmptyState title="Your cart is empty" actions={<Link className="button" href="/">Search images</Link>}>
      <p>Open an image, choose a licence and add it here.</p>
    </EmptyState>
  );
}

function BuyerCart() {
  const [cart, setCart] = useState<Cart | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

  const load = () => {
    setError(null);
    loadCart().then(setCart, setError);
  };
  useEffect(load, []);

  async function remove(imageId: string) {
    setActionError(null);
    try {
      setCart(await removeFromCart(imageId));
    } catch (err) {
      setActionError(messageOf(err));
    }
  }

  async function checkout() {
    setBusy(true);
    setActionError(null);
    try {
      const started = await call(api.POST("/api/checkout"));
      window.location.assign(started.checkout_url); // Stripe's hosted page (the stand-in locally)
    } catch (err) {
      setActionError(messageOf(err));
      setBusy(false);
    }
  }

  if (error) return <ErrorState error={error} retry={load} />;
  if (!cart) return <LinesSkeleton lines={4} />;
  if (!cart.items.length) return <EmptyCart />;
  return (
    <div className="two-col">
      <ul className="stack" style={{ listStyle: "none", padding: 0, margin: 0 }} aria-label="Images in your cart">
        {cart.items.map((item) => (
          <li key={item.image_id} className="panel cart-item">
            <Thumb id={item.image_id} title={item.title} />
            <div>
              <Link href={`/image/?id=${item.image_id}`}>{item.title}</Link>
              <div className="muted">{LICENSE_INFO[item.license_type].name}</div>
              <div className="price">{formatMoney(item.price)}</div>
            </div>
            <button
              type="button"
              className="button quiet small"
              onClick={() => void remove(item.image_id)}
              aria-label={`Remove ${item.title}`}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <aside className="panel stack" aria-label="Order summary">
        <h2>Order summary</h2>
        {(cart.notices ?? []).map((n) => (
          <p key={`${n.code}:${n.image_id}`} className="notice">
            {n.message}
          </p>
        ))}
        <p className="row">
          <span>
            {cart.items.length} {cart.items.length === 1 ? "licence" : "licences"}
          </span>
          <span className="spacer" />
          <strong style={{ fontSize: "1.25rem" }}>{cart.total ? formatMoney(cart.total) : "—"}</strong>
        </p>
        <button type="button" className="button wide" onClick={() => void checkout()} disabled={busy}>
          {busy ? "Opening the payment page…" : "Check out"}
        </button>
        <p className="muted" style={{ fontSize: "0.9rem" }}>
          You pay on Stripe&apos;s secure page, then come back here to download.
        </p>
        {actionError && (
          <p className="notice error" role="alert">
            {actionError}
          </p>
        )}
      </aside>
    </div>
  );
}

export function CartPage({ cancelled }: { cancelled: boolean }) {
  const session = useSession();
  return (
    <div className="stack">
      <h1>Your cart</h1>
      {cancelled && <p className="notice">Payment cancelled: nothing was charged. Your cart is as you left it.</p>}
      {session.status === "loading" && <LinesSkeleton lines={4} />}
      {session.status === "guest" && <GuestCart />}
      {session.status === "signed-in" &&
        (hasRole(session, "buyer") ? (
          <BuyerCart />
        ) : (
          <EmptyState title="Buying needs a buyer account">
            <p>
              You are signed in as {session.name} ({session.roles.join(", ")}). Sign out and sign in as a buyer to
              license images.
            </p>
          </EmptyState>
        ))}
    </div>
  );
}
