// Sign-in with OIDC authorization code + PKCE (oidc-client-ts).
//
// Tokens live in sessionStorage, never localStorage: they survive the full-page trips this site makes
// (to the sign-in page and to Stripe's hosted checkout and back) but stay in this tab and go when it
// closes; other tabs and later visits do not inherit them. Memory alone would lose the session at
// every one of those trips. The library itself is loaded only when someone has a session or signs
// in, so a guest's first page does not pay for it.
import type { User, UserManager } from "oidc-client-ts";
import { portalConfig } from "./config";
import { rolesFromToken, type Role } from "./roles";

export type Session =
  | { status: "loading" }
  | { status: "guest" }
  | { status: "signed-in"; sub: string; name: string; roles: Role[] };

type Listener = () => void;
let session: Session = { status: "loading" };
const listeners = new Set<Listener>();
let managerPromise: Promise<UserManager> | null = null;
let started = false;

function publish(next: Session): void {
  session = next;
  listeners.forEach((listener) => listener());
}

export function getSession(): Session {
  return session;
}

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  startSession();
  return () => listeners.delete(listener);
}

export const SERVER_SESSION: Session = { status: "loading" };

function fromUser(user: User | null): Session {
  if (!user || user.expired) return { status: "guest" };
  const profile = user.profile;
  const name = (profile.name ?? profile.preferred_username ?? profile.email ?? profile.sub) as string;
  return { status: "signed-in", sub: profile.sub, name, roles: rolesFromToken(user.access_token) };
}

function hasStoredUser(): boolean {
  for (let i = 0; i < sessionStorage.length; i++) {
    if (sessionStorage.key(i)?.startsWith("oidc.user:")) return true;
  }
  return false;
}

async function manager(): Promise<UserManager> {
  managerPromise ??= Promise.all([import("oidc-client-ts"), portalConfig()]).then(([oidc, config]) => {
    const store = new oidc.WebStorageStateStore({ store: window.sessionStorage });
    const um = new oidc.UserManager({
      authority: config.oidc.authority,
      client_id: config.oidc.client_id,
      scope: config.oidc.scope,
      redirect_uri: `${location.origin}/callback/`,
      post_logout_redirect_uri: `${location.origin}/`,
      response_type: "code",
      userStore: store,
      stateStore: store,
      automaticSilentRenew: true, // with a refresh token: renews before the access token expires
      loadUserInfo: false,
      monitorSession: false,
    });
    um.events.addUserLoaded((user) => publish(fromUser(user)));
    um.events.addUserUnloaded(() => publish({ status: "guest" }));
    um.events.addSilentRenewError(() => publish({ status: "guest" }));
    return um;
  });
  return managerPromise;
}

function startSession(): void {
  if (started || typeof window === "undefined") return;
  started = true;
  if (!hasStoredUser()) {
    publish({ status: "guest" });
    return;
  }
  manager()
    .then((um) => um.getUser())
    .then((user) => publish(fromUser(user)))
    .catch(() => publish({ status: "guest" }));
}

/** The bearer token for API calls, or null for a guest. */
export async function accessToken(): Promise<string | null> {
  if (typeof window === "undefined" || !hasStoredUser()) return null;
  const user = await (await manager()).getUser();
  return user && !user.expired ? user.access_token : null;
}

/** Sends the person to the sign-in page; they come back to `returnTo` (a path on this site). */
export async function signIn(returnTo: string = location.pathname + location.search): Promise<void> {
  await (await manager()).signinRedirect({ state: { returnTo } });
}

/** Finishes a sign-in on /callback/ and says where to go next. */
export async function completeSignIn(): Promise<string> {
  const user = await (await manager()).signinRedirectCallback();
  publish(fromUser(user));
  const state = user.state as { returnTo?: unknown } | undefined;
  const returnTo = typeof state?.returnTo === "string" ? state.returnTo : "/";
  return returnTo.startsWith("/") && !returnTo.startsWith("//") ? returnTo : "/";
}

export async function signOut(): Promise<void> {
  const um = await manager();
  try {
    await um.signoutRedirect();
  } catch {
    // A provider without an end-session endpoint: forgetting the tokens here is all we can do.
    await um.removeUser();
    location.assign("/");
  }
}
