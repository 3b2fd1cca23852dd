// The cart: the buyer's cart lives in the API; a guest's picks wait in this tab's sessionStorage
// until they sign in at checkout, then move into the API cart.
import { api, call, type Schemas } from "./api";
import { getSession } from "./auth";

export type LicenseType = Schemas["CartItemIn"]["license_type"] & string;
export type GuestItem = { image_id: string; license_type: LicenseType; title: string };
const KEY = "marketplace.guest-cart";

type Listener = () => void;
const listeners = new Set<Listener>();
let count: number | null = null;

export function subscribeCount(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
export function getCount(): number | null {
  return count;
}
function setCount(next: number): void {
  count = next;
  listeners.forEach((l) => l());
}

export function guestItems(): GuestItem[] {
  if (typeof window === "undefined") return [];
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(KEY) ?? "[]");
    return Array.isArray(parsed) ? (parsed as GuestItem[]) : [];
  } catch {
    return [];
  }
}

function saveGuestItems(items: GuestItem[]): void {
  sessionStorage.setItem(KEY, JSON.stringify(items));
  setCount(items.length);
}

/** Pure: the guest cart after adding (or changing the licence of) one image. */
export function withItem(items: GuestItem[], item: GuestItem): GuestItem[] {
  return [...items.filter((i) => i.image_id !== item.image_id), item];
}

export function removeGuestItem(imageId: string): void {
  saveGuestItems(guestItems().filter((i) => i.image_id !== imageId));
}

function signedIn(): boolean {
  return getSession().status === "signed-in";
}

export async function addToCart(item: GuestItem): Promise<void> {
  if (!signedIn()) {
    saveGuestItems(withItem(guestItems(), item));
    return;
  }
  const cart = await call(api.POST("/api/cart/items", { body: { image_id: item.image_id, license_type: item.license_type } }));
  setCount(cart.items.length);
}

/** After sign-in: move the guest's picks into the API cart, then forget them here. */
export async function moveGuestCart(): Promise<void> {
  const items = guestItems();
  for (const item of items) {
    await call(api.POST("/api/cart/items", { body: { image_id: item.image_id, license_type: item.license_type } }));
  }
  if (items.length) sessionStorage.removeItem(KEY);
}

export async function loadCart(): Promise<Schemas["CartOut"]> {
  const cart = await call(api.GET("/api/cart"));
  setCount(cart.items.length);
  return cart;
}

export async function removeFromCart(imageId: string): Promise<Schemas["CartOut"]> {
  const cart = await call(api.DELETE("/api/cart/items/{image_id}", { params: { path: { image_id: imageId } } }));
  setCount(cart.items.length);
  return cart;
}

export function refreshCount(): void {
  if (!signedIn()) {
    setCount(guestItems().length);
    return;
  }
  api.GET("/api/cart").then(({ data }) => data && setCount(data.items.length), () => undefined);
}
