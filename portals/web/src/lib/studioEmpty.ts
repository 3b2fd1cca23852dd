// What the studio's empty pages say: why there is nothing, and the one thing to do next.
import type { Schemas } from "./api";

export type PortfolioStatus = NonNullable<Schemas["PortfolioParams"]["status"]>;

export interface EmptyCopy {
  title: string;
  text: string;
  /** Where the one button goes: the upload page, the same search in every status, no search, page 1. */
  action: { label: string; to: "upload" | "all-statuses" | "no-search" | "first-page" };
}

const NONE_IN: Record<PortfolioStatus, { title: string; text: string }> = {
  pending: { title: "Nothing processing", text: "New uploads are checked and processed within a minute or two." },
  flagged: { title: "Nothing in review", text: "Photos a reviewer needs to look at wait here for their decision." },
  approved: {
    title: "No live photos yet",
    text: "Photos appear here once they are approved; give each a title and keywords so review goes quickly.",
  },
  rejected: { title: "No rejected photos", text: "None of your photos was declined in review." },
  removed: { title: "Nothing taken down", text: "None of your photos has been withdrawn from sale." },
};

export function portfolioEmpty({
  q,
  status,
  page,
  total,
}: {
  q: string;
  status: PortfolioStatus | "";
  page: number;
  total: number;
}): EmptyCopy {
  if (total > 0 && page > 1) {
    return {
      title: `There is no page ${page}`,
      text: "The list is shorter than that now.",
      action: { label: "Go to the first page", to: "first-page" },
    };
  }
  if (q) {
    return {
      title: `No photos match “${q}”`,
      text: status
        ? "Try fewer words, or look in every status."
        : "Try fewer words, or a keyword you gave the photo; titles and keywords are searched.",
      action: status ? { label: "Search every status", to: "all-statuses" } : { label: "Clear the search", to: "no-search" },
    };
  }
  if (status) return { ...NONE_IN[status], action: { label: "Show all photos", to: "all-statuses" } };
  return {
    title: "Upload your first photos",
    text: "Your portfolio lists every photo you upload, with where it stands: processing, in review, live or not accepted.",
    action: { label: "Upload photos", to: "upload" },
  };
}
