import type { ReactNode } from "react";
import { RoleGuard } from "@/components/RoleGuard";
import { SectionNav } from "@/components/SectionNav";
import "@/styles/console.css";

const LINKS = [
  { href: "/admin/", text: "Review queue" },
  { href: "/admin/search/", text: "Search & takedown" },
  { href: "/admin/categories/", text: "Categories" },
  { href: "/admin/pricing/", text: "Pricing" },
  { href: "/admin/payouts/", text: "Payouts" },
  { href: "/admin/royalties/", text: "Royalty levels" },
  { href: "/admin/audit/", text: "Audit log" },
];

export default function AdminLayout({ children }: { children: ReactNode }) {
  return (
    <RoleGuard role="admin">
      <div className="section-head">
        <p className="section-title">Admin console</p>
        <SectionNav label="Console" links={LINKS} />
      </div>
      {children}
    </RoleGuard>
  );
}
