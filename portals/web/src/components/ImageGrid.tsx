"use client";
import Link from "next/link";
import type { Schemas } from "@/lib/api";
import { formatMoney } from "@/lib/money";

type Item = Pick<Schemas["SearchItem"], "id" | "title" | "thumbnail_url" | "width" | "height" | "contributor_id"> & {
  price?: Schemas["SearchItem"]["price"];
};

const ROW_HEIGHT = 240; // the img's intrinsic size; the row height itself is --row-h in globals.css

/** Each tile grows with its aspect ratio from a basis of one row height, so rows fill the width. */
function tileStyle(ratio: number, compact: boolean) {
  const r = ratio.toFixed(4);
  return { flexGrow: ratio * 100, flexBasis: `calc(${r} * var(${compact ? "--row-h-compact" : "--row-h"}))` };
}

/** Thumbnails in a justified grid at their own aspect ratio; sizes are set, so nothing jumps as they load. */
export function ImageGrid({
  items,
  label,
  onQuickAdd,
  compact = false,
}: {
  items: Item[];
  label: string;
  onQuickAdd?: (item: Item) => void;
  compact?: boolean;
}) {
  const rowHeight = ROW_HEIGHT;
  return (
    <ul className="grid" aria-label={label}>
      {items.map((item, index) => {
        const ratio = item.width / Math.max(item.height, 1);
        return (
          <li
            key={item.id}
            className="tile"
            style={tileStyle(ratio, compact)}
          >
            <span className="ratio" style={{ paddingBottom: `${(100 / ratio).toFixed(3)}%` }} />
            <img
              src={item.thumbnail_url}
              alt={item.title}
              width={Math.round(ratio * rowHeight)}
              height={rowHeight}
              loading={index < 8 ? "eager" : "lazy"}
              decoding="async"
            />
            <Link href={`/image/?id=${item.id}`} aria-label={item.title} />
            <div className="caption" aria-hidden="true">
              <strong>{item.title}</strong>
              <span>
                by {item.contributor_id}
                {item.price ? ` · from ${formatMoney(item.price)}` : ""}
              </span>
            </div>
            {onQuickAdd && (
              <button
                type="button"
                className="button small quick-add"
                onClick={() => onQuickAdd(item)}
                aria-label={`Add “${item.title}” to cart`}
              >
                + Cart
              </button>
            )}
          </li>
        );
      })}
    </ul>
  );
}

const SKELETON_RATIOS = [1.5, 0.67, 1.33, 1, 1.78, 0.75, 1.5, 1.25, 0.8, 1.5, 1.33, 1];

/** The grid's shape while results load. */
export function GridSkeleton({ count = 12, compact = false }: { count?: number; compact?: boolean }) {
  return (
    <ul className="grid" aria-busy="true" aria-label="Loading images">
      {Array.from({ length: count }, (_, i) => {
        const ratio = SKELETON_RATIOS[i % SKELETON_RATIOS.length] ?? 1;
        return (
          <li
            key={i}
            className="tile skeleton"
            style={tileStyle(ratio, compact)}
          >
            <span className="ratio" style={{ paddingBottom: `${(100 / ratio).toFixed(3)}%` }} />
          </li>
        );
      })}
    </ul>
  );
}
