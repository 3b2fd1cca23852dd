import type { ReactNode } from "react";
import { RoleGuard } from "@/components/RoleGuard";
import { SectionNav } from "@/components/SectionNav";
import "@/styles/console.css";

const LINKS = [
  { href: "/contributor/", text: "Upload" },
  { href: "/contributor/portfolio/", text: "Portfolio" },
  { href: "/contributor/earnings/", text: "Earnings" },
  { href: "/contributor/payouts/", text: "Getting paid" },
];

export default function StudioLayout({ children }: { children: ReactNode }) {
  return (
    <RoleGuard role="contributor">
      <div className="section-head">
        <p className="section-title">Contributor studio</p>
        <SectionNav label="Studio" links={LINKS} layout="fill" />
      </div>
      {children}
    </RoleGuard>
  );
}
