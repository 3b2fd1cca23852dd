"use client";
import { RoleGuard } from "@/components/RoleGuard";

// The contributor studio's entry point (portals-studio builds the studio's pages on this guard).
export default function ContributorHome() {
  return (
    <RoleGuard role="contributor">
      <h1>Contributor studio</h1>
      <p className="muted">Upload photos, follow them through review and see what they earn.</p>
    </RoleGuard>
  );
}
