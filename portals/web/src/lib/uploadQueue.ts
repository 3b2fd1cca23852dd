// The contributor's upload queue as a pure state machine: what the browser is doing with each file
// (waiting, asking for a ticket, sending, failed, cancelled) and, once sent, what the platform says
// about it (validated, processed, in review, approved, not accepted), with the reason in words.
// The component only dispatches events and renders `stageOf`; this file holds every rule.
import { REJECT_REASONS } from "./moderationKeys";

export type ServerState =
  | "awaiting_upload"
  | "quarantined"
  | "processing"
  | "failed"
  | "processed"
  | "flagged"
  | "approved"
  | "rejected"
  | "removed";

export type Phase = "queued" | "requesting" | "uploading" | "sent" | "failed" | "cancelled";

export interface ServerView {
  state: ServerState;
  reasonCode: string | null;
  reason: string | null;
  moderationReasons: string[];
  title: string;
  thumbnailUrl: string | null;
}

export interface QueueItem {
  key: string;
  fileName: string;
  size: number;
  type: string;
  phase: Phase;
  loaded: number;
  imageId: string | null;
  error: string | null;
  attempts: number;
  server: ServerView | null;
}

export type QueueEvent =
  | { type: "add"; files: { key: string; name: string; size: number; type: string }[] }
  | { type: "requesting"; key: string }
  | { type: "ticket"; key: string; imageId: string }
  | { type: "progress"; key: string; loaded: number }
  | { type: "sent"; key: string }
  | { type: "failed"; key: string; message: string }
  | { type: "cancel"; key: string }
  | { type: "retry"; key: string }
  | { type: "remove"; key: string }
  | { type: "server"; images: ({ imageId: string } & ServerView)[] };

export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp", "image/tiff"] as const;
export const MAX_PARALLEL = 3;

const FINAL: ReadonlySet<ServerState> = new Set(["quarantined", "failed", "approved", "rejected", "removed"]);

function update(items: QueueItem[], key: string, change: (item: QueueItem) => QueueItem | null): QueueItem[] {
  return items.map((item) => (item.key === key ? (change(item) ?? item) : item));
}

export function reduce(items: QueueItem[], event: QueueEvent): QueueItem[] {
  switch (event.type) {
    case "add": {
      const known = new Set(items.map((i) => i.key));
      const added = event.files
        .filter((f) => !known.has(f.key))
        .map<QueueItem>((f) => {
          const refused = refusalOf(f);
          return {
            key: f.key,
            fileName: f.name,
            size: f.size,
            type: f.type,
            phase: refused ? "failed" : "queued",
            loaded: 0,
            imageId: null,
            error: refused,
            attempts: 0,
            server: null,
          };
        });
      return [...items, ...added];
    }
    case "requesting":
      return update(items, event.key, (i) =>
        i.phase === "queued" ? { ...i, phase: "requesting", attempts: i.attempts + 1, error: null } : null,
      );
    case "ticket":
      return update(items, event.key, (i) =>
        i.phase === "requesting" ? { ...i, phase: "uploading", imageId: event.imageId, loaded: 0 } : null,
      );
    case "progress":
      return update(items, event.key, (i) =>
        i.phase === "uploading" ? { ...i, loaded: Math.min(i.size, Math.max(i.loaded, event.loaded)) } : null,
      );
    case "sent":
      return update(items, event.key, (i) => (i.phase === "uploading" ? { ...i, phase: "sent", loaded: i.size } : null));
    case "failed":
      return update(items, event.key, (i) =>
        i.phase === "requesting" || i.phase === "uploading" ? { ...i, phase: "failed", error: event.message } : null,
      );
    case "cancel":
      return update(items, event.key, (i) =>
        isActive(i) || i.phase === "queued" ? { ...i, phase: "cancelled", loaded: 0, error: null } : null,
      );
    case "retry":
      // A new ticket each time: the old SAS may have expired, and its record never got the file.
      return update(items, event.key, (i) =>
        canRetry(i) ? { ...i, phase: "queued", loaded: 0, imageId: null, error: null, server: null } : null,
      );
    case "remove":
      return items.filter((i) => i.key !== event.key || isActive(i));
    case "server": {
      const byId = new Map(event.images.map((image) => [image.imageId, image]));
      return items.map((i) => {
        const seen = i.imageId && i.phase === "sent" ? byId.get(i.imageId) : undefined;
        if (!seen) return i;
        const { imageId: _, ...server } = seen;
        return { ...i, server };
      });
    }
  }
}

/** Refused before anything is sent: the same rules the server applies first, said the same way. */
export function refusalOf(file: { name: string; size: number; type: string }): string | null {
  if (file.size === 0) return "The file is empty (0 bytes); choose the photo again.";
  if (!(ACCEPTED_TYPES as readonly string[]).includes(file.type)) {
    return "Only JPEG, PNG, WebP and TIFF photos are accepted.";
  }
  return null;
}

/** Rejected and taken-down images lose their public renditions: show no thumbnail for them. */
export function withdrawn(state: ServerState): boolean {
  return state === "rejected" || state === "removed";
}

export function isActive(item: QueueItem): boolean {
  return item.phase === "requesting" || item.phase === "uploading";
}

export function canRetry(item: QueueItem): boolean {
  if (item.phase === "cancelled") return true;
  // A file refused before sending would be refused again; one that failed in transit may go through.
  return item.phase === "failed" && item.attempts > 0;
}

/** Keys of queued files to start now, oldest first, keeping at most `limit` transfers running. */
export function nextToStart(items: QueueItem[], limit: number = MAX_PARALLEL): string[] {
  const running = items.filter(isActive).length;
  return items
    .filter((i) => i.phase === "queued")
    .slice(0, Math.max(0, limit - running))
    .map((i) => i.key);
}

/** Whether the platform still has something to tell us about any sent file (keep polling). */
export function awaitingServer(items: QueueItem[]): boolean {
  return items.some((i) => i.phase === "sent" && (i.server === null || !FINAL.has(i.server.state)));
}

export type Tone = "neutral" | "progress" | "success" | "warning" | "danger";

export interface Stage {
  label: string;
  tone: Tone;
  /** 0..1 while a transfer runs, else null. */
  progress: number | null;
  /** The reason in plain words, and what to do about it. */
  detail: string | null;
}

const MODERATION_WORDS: Record<string, string> = {
  nsfw_score: "it may show adult content",
  near_duplicate_of: "it looks very like another photo",
  low_resolution: "its resolution is low",
  missing_title: "it has no title",
  missing_keywords: "it needs more keywords",
};

const ADVICE: Record<string, string> = {
  duplicate: "Nothing to do.",
  "too-small": "Upload the full-size export of the photo.",
  "too-large": "Export it smaller (under the size limit) and upload it again.",
  "unsupported-type": "Export it as JPEG, PNG, WebP or TIFF and upload it again.",
  corrupt: "Export the photo again and upload the new file.",
  animated: "Upload a single still frame.",
};

export function moderationWords(reasons: string[]): string {
  const words = reasons.map((r) => MODERATION_WORDS[r] ?? r.replace(/_/g, " "));
  return words.length ? `A reviewer will look at it: ${words.join("; ")}.` : "A reviewer will look at it shortly.";
}

/** The reviewer's reason code in words, with their note when they wrote one. */
export function rejectionWords(code: string | null, reason: string | null): string {
  const label = REJECT_REASONS.find((r) => r.code === code)?.label;
  const note = reason && reason !== code ? reason : null;
  if (label && note) return `Reviewer's reason: ${label}. “${note}”`;
  if (label || note) return `Reviewer's reason: ${label ?? note}.`;
  return "A reviewer declined it.";
}

export function stageOf(item: QueueItem): Stage {
  switch (item.phase) {
    case "queued":
      return { label: "Waiting", tone: "neutral", progress: null, detail: null };
    case "requesting":
      return { label: "Starting upload", tone: "progress", progress: 0, detail: null };
    case "uploading":
      return {
        label: "Uploading",
        tone: "progress",
        progress: item.size ? item.loaded / item.size : 0,
        detail: null,
      };
    case "failed":
      return { label: "Upload failed", tone: "danger", progress: null, detail: item.error };
    case "cancelled":
      return { label: "Cancelled", tone: "neutral", progress: null, detail: "Retry to send it again." };
    case "sent":
      return serverStage(item.server);
  }
}

function serverStage(server: ServerView | null): Stage {
  const base = { progress: null } as const;
  if (!server || server.state === "awaiting_upload") {
    return { ...base, label: "Checking the file", tone: "progress", detail: null };
  }
  const reason = server.reason ?? null;
  switch (server.state) {
    case "quarantined": {
      const advice = server.reasonCode ? ADVICE[server.reasonCode] : undefined;
      // The twin's id means nothing to a person; where it is theirs, say so.
      const words = reason?.replace(/your image [0-9a-f-]{36}, already on the platform/i, "a photo already in your portfolio");
      return { ...base, label: "Not accepted", tone: "danger", detail: [words, advice].filter(Boolean).join(" ") };
    }
    case "processing":
      return { ...base, label: "Validated · processing", tone: "progress", detail: "Making previews and keywords." };
    case "processed":
      return { ...base, label: "Processed", tone: "progress", detail: "Waiting for the review decision." };
    case "flagged":
      return { ...base, label: "In review", tone: "warning", detail: moderationWords(server.moderationReasons) };
    case "approved":
      return { ...base, label: "Approved · live", tone: "success", detail: "Buyers can find and license it." };
    case "rejected":
      return { ...base, label: "Rejected", tone: "danger", detail: rejectionWords(server.reasonCode, reason) };
    case "failed":
      return { ...base, label: "Processing failed", tone: "danger", detail: reason ?? "Upload it again." };
    case "removed":
      return { ...base, label: "Taken down", tone: "danger", detail: reason };
  }
}

/** "1.2 MB" in the reader's locale. */
export function formatBytes(bytes: number, locale?: string): string {
  const units = ["byte", "kilobyte", "megabyte", "gigabyte"] as const;
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return new Intl.NumberFormat(locale, {
    style: "unit",
    unit: units[unit],
    unitDisplay: "short",
    maximumFractionDigits: unit === 0 ? 0 : 1,
  }).format(value);
}

const AUTOMATIC: ReadonlySet<ServerState> = new Set(["awaiting_upload", "processing", "processed"]);

/** What the queue asks of the shared poll, and how many of its files the platform will list. */
export function queueNeeds(items: QueueItem[]): { fast: boolean; follow: boolean; onTheWay: number } {
  const fast = items.some(
    (i) =>
      i.phase === "queued" ||
      isActive(i) ||
      (i.phase === "sent" && (i.server === null || AUTOMATIC.has(i.server.state))),
  );
  // A file refused in the browser never reaches the platform; one that got a ticket has a record.
  const onTheWay = items.filter((i) => i.phase === "queued" || isActive(i) || i.imageId !== null).length;
  return { fast, follow: awaitingServer(items), onTheWay };
}
