"use client";
import { useSyncExternalStore } from "react";
import { getSession, SERVER_SESSION, subscribe, type Session } from "./auth";
import type { Role } from "./roles";

export function useSession(): Session {
  return useSyncExternalStore(subscribe, getSession, () => SERVER_SESSION);
}

export function hasRole(session: Session, role: Role): boolean {
  return session.status === "signed-in" && session.roles.includes(role);
}
