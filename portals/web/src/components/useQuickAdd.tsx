"use client";
import Link from "next/link";
import { useState } from "react";
import { addToCart } from "@/lib/cart";

/** "+ Cart" on a thumbnail: a standard licence into the cart, and a line saying so. */
export function useQuickAdd() {
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const add = (item: { id: string; title: string }) =>
    addToCart({ image_id: item.id, license_type: "standard", title: item.title }).then(
      () => setMessage({ ok: true, text: `Added “${item.title}” (standard licence) to your cart.` }),
      (err: unknown) => setMessage({ ok: false, text: err instanceof Error ? err.message : String(err) }),
    );
  const notice = message && (
    <p className={`notice ${message.ok ? "success" : "error"}`} role="status">
      {message.text} {message.ok && <Link href="/cart/">View cart</Link>}
    </p>
  );
  return { add, notice };
}

