import type { ReactNode } from "react";
import { RoleGuard } from "@/components/RoleGuard";
import { SectionNav, type SectionLink } from "@/components/SectionNav";
import "@/styles/console.css";

// Seven tabs outgrow a phone even with short labels: the row slides (SectionNav's "scroll"), and the
// short labels let about half of it show at once at 375 px.
const LINKS: SectionLink[] = [
  { href: "/admin/", text: "Review queue", short: "Queue" },
  { href: "/admin/search/", text: "Search & takedown", short: "Search" },
  { href: "/admin/categories/", text: "Categories" },
  { href: "/admin/pricing/", text: "Pricing" },
  { href: "/admin/payouts/", text: "Payouts" },
  { href: "/admin/royalties/", text: "Royalty levels", short: "Royalties" },
  { href: "/admin/audit/", text: "Audit log" },
];

export default function AdminLayout({ children }: { children: ReactNode }) {
  return (
    <RoleGuard role="admin">
      <div className="section-head">
        <p className="section-title">Admin console</p>
        <SectionNav label="Console" links={LINKS} layout="scroll" />
      </div>
      {children}
    </RoleGuard>
  );
}
