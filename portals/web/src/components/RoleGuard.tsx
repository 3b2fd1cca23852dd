"use client";
import type { ReactNode } from "react";
import { signIn } from "@/lib/auth";
import type { Role } from "@/lib/roles";
import { hasRole, useSession } from "@/lib/useSession";
import { EmptyState, LinesSkeleton } from "./States";

const NAMES: Record<Role, string> = { buyer: "buyer", contributor: "contributor", admin: "administrator" };

/** Shows `children` only to someone signed in with `role`; everyone else is told how to get in. */
export function RoleGuard({ role, children }: { role: Role; children: ReactNode }) {
  const session = useSession();
  if (session.status === "loading") return <LinesSkeleton lines={4} />;
  if (session.status === "guest") {
    return (
      <EmptyState
        title="Sign in to continue"
        actions={
          <button type="button" className="button" onClick={() => void signIn()}>
            Sign in
          </button>
        }
      >
        <p>This part of the marketplace is for signed-in {NAMES[role]}s.</p>
      </EmptyState>
    );
  }
  if (!hasRole(session, role)) {
    return (
      <EmptyState title={`This page is for ${NAMES[role]}s`}>
        <p>
          You are signed in as {session.name} ({session.roles.join(", ") || "no role"}). Sign out and sign in with a{" "}
          {NAMES[role]} account to use it.
        </p>
      </EmptyState>
    );
  }
  return <>{children}</>;
}
