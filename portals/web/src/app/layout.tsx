import type { Metadata, Viewport } from "next";
import { Suspense, type ReactNode } from "react";
import { Header } from "@/components/Header";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Aperture Stock: photos to license", template: "%s · Aperture Stock" },
  description: "Search, license and download stock photos from independent contributors.",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <a href="#main" className="skip-link">
          Skip to content
        </a>
        <Suspense fallback={<header className="site-header" />}>
          <Header />
        </Suspense>
        <main id="main">{children}</main>
        <footer className="site-footer">
          Aperture Stock · Licences are granted per image; originals download through short-lived links.
        </footer>
      </body>
    </html>
  );
}
