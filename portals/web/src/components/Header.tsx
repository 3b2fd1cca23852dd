"use client";
import Link from "next/link";
import { usePathname, useSearchParams } from "next/navigation";
import { useEffect, useSyncExternalStore } from "react";
import { signIn, signOut } from "@/lib/auth";
import { getCount, refreshCount, subscribeCount } from "@/lib/cart";
import { isSearching, parseSearch } from "@/lib/searchState";
import { hasRole, useSession } from "@/lib/useSession";
import { SearchBox } from "./SearchBox";

export function Header() {
  const pathname = usePathname();
  const params = useSearchParams();
  const session = useSession();
  const count = useSyncExternalStore(subscribeCount, getCount, () => null);
  useEffect(() => {
    if (session.status !== "loading") refreshCount();
  }, [session.status]);

  const state = parseSearch(new URLSearchParams(params.toString()));
  // The home page's own big search box is the page; elsewhere the header carries it, words kept.
  const showSearch = pathname !== "/" || isSearching(state);
  const current = (href: string) => (pathname.startsWith(href) ? "page" : undefined);

  return (
    <header className="site-header">
      <div className="site-header-inner">
        <Link href="/" className="brand">
          Aperture <span>Stock</span>
        </Link>
        {showSearch && (
          <div className="header-search">
            <SearchBox initial={state.q} />
          </div>
        )}
        <nav className="site-nav" aria-label="Main">
          {hasRole(session, "contributor") && (
            <Link href="/contributor/" aria-current={current("/contributor")}>
              Studio
            </Link>
          )}
          {hasRole(session, "admin") && (
            <Link href="/admin/" aria-current={current("/admin")}>
              Admin
            </Link>
          )}
          <Link href="/cart/" aria-current={current("/cart")}>
            Cart{" "}
            {count ? (
              <span className="badge" aria-label={`${count} in cart`}>
                {count}
              </span>
            ) : null}
          </Link>
          {session.status === "signed-in" ? (
            <>
              <Link href="/account/" aria-current={current("/account")}>
                Account
              </Link>
              <button type="button" className="link-button wide-only" onClick={() => void signOut()}>
                Sign out
              </button>
            </>
          ) : (
            <button
              type="button"
              className="link-button"
              onClick={() => void signIn()}
              disabled={session.status === "loading"}
            >
              Sign in
            </button>
          )}
        </nav>
      </div>
    </header>
  );
}
