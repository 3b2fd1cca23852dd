"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";

/** The tabs of a section (studio, console); the current one is marked for screen readers too. */
export function SectionNav({
  label,
  links,
  fill = false,
}: {
  label: string;
  links: { href: string; text: string }[];
  /** On phones, share one row evenly (for a handful of short labels; a longer list wraps instead). */
  fill?: boolean;
}) {
  const pathname = usePathname();
  const normal = pathname.endsWith("/") ? pathname : `${pathname}/`;
  // The longest matching prefix is the current tab, so "/admin/" is not current on "/admin/audit/".
  const currentHref = links
    .map((l) => l.href)
    .filter((href) => normal.startsWith(href))
    .sort((a, b) => b.length - a.length)[0];
  return (
    <nav className={fill ? "section-nav fill" : "section-nav"} aria-label={label}>
      <ul>
        {links.map((link) => (
          <li key={link.href}>
            <Link href={link.href} aria-current={link.href === currentHref ? "page" : undefined}>
              {link.text}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
