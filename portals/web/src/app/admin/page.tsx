"use client";
import { RoleGuard } from "@/components/RoleGuard";

// The admin console's entry point (portals-studio builds the console's pages on this guard).
export default function AdminHome() {
  return (
    <RoleGuard role="admin">
      <h1>Admin console</h1>
      <p className="muted">Moderation, categories, pricing and the audit log.</p>
    </RoleGuard>
  );
}
