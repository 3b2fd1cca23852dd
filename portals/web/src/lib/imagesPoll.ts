// The studio home's one poll of the contributor's images, as pure rules: the upload queue and the
// "Latest uploads" list both read the same answer, so they never disagree about a photo, and a failing
// refresh is reported once (not once per tick, not once per list) and goes away when a refresh works.
import type { Schemas } from "./api";
import { stageOf, withdrawn, type ServerView, type Stage } from "./uploadQueue";

export type Image = Schemas["ContributorImage"];

export interface PollState {
  /** The newest answer; kept on screen while a later refresh fails. */
  images: Image[] | null;
  /** What went wrong with the latest refresh, in words; null once one succeeds. */
  error: string | null;
  /** The failure itself, for <ErrorState> when nothing was ever loaded. */
  problem: unknown;
}

export type PollEvent = { type: "loaded"; images: Image[] } | { type: "failed"; error: unknown; message: string };

export const INITIAL_POLL: PollState = { images: null, error: null, problem: null };

export function pollReduce(state: PollState, event: PollEvent): PollState {
  switch (event.type) {
    case "loaded":
      return { images: event.images, error: null, problem: null };
    case "failed":
      // The same failure again changes nothing: React keeps the one notice as it is, and a screen
      // reader does not hear it again every tick.
      if (state.error === event.message) return state;
      return { ...state, error: event.message, problem: event.error };
  }
}

/** How the one failure is shown: in place of the list before anything loaded, else as one notice. */
export function failureShown(state: PollState): "none" | "in-list" | "notice" {
  if (state.error === null) return "none";
  return state.images === null ? "in-list" : "notice";
}

export const FAST_MS = 1500; // while a sent file still waits for its outcome
export const SLOW_MS = 5000; // otherwise: review decisions made elsewhere still show up
export const RECENT = 12;
export const FOLLOWED = 100; // the API's largest page: this session's files are the newest ones

/** What the queue needs from the poll (see `queueNeeds`). */
export interface Needs {
  /** A file is on its way or in an automatic step (checks, processing): its outcome comes in seconds. */
  fast: boolean;
  /** A sent file has no final outcome yet (a person may review it later): keep it in the page. */
  follow: boolean;
}

/** The next refresh: soon while a file moves through the automatic steps, slower otherwise. */
export function pollPlan(needs: Needs): { delayMs: number; perPage: number } {
  return {
    delayMs: needs.fast ? FAST_MS : SLOW_MS,
    perPage: needs.fast || needs.follow ? FOLLOWED : RECENT,
  };
}

export type RecentView =
  | { kind: "loading" }
  | { kind: "error" }
  | { kind: "empty" } // nothing uploaded, ever: say how to start
  | { kind: "arriving" } // the queue has files the platform does not list yet
  | { kind: "list"; images: Image[] };

/** What "Latest uploads" shows, given the poll and how many files the queue holds. */
export function recentView(state: PollState, queued: number): RecentView {
  if (state.images === null) return state.error === null ? { kind: "loading" } : { kind: "error" };
  if (state.images.length > 0) return { kind: "list", images: state.images.slice(0, RECENT) };
  return queued > 0 ? { kind: "arriving" } : { kind: "empty" };
}

/** The platform's view of one image, as the queue keeps it for a sent file. */
export function serverView(image: Image): { imageId: string } & ServerView {
  return {
    imageId: image.image_id,
    state: image.state,
    reasonCode: image.reason_code ?? null,
    reason: image.reason ?? null,
    moderationReasons: image.moderation_reasons ?? [],
    title: image.listing?.title || image.sidecar.title || "",
    thumbnailUrl: withdrawn(image.state) ? null : (image.listing?.renditions.thumbnail_small_url ?? null),
  };
}

/** An image of the list in the queue's words: the same answer gives the same stage in both. */
export function imageStage(image: Image): Stage {
  const { imageId, ...server } = serverView(image);
  return stageOf({
    key: imageId,
    fileName: image.file_name,
    size: image.size_bytes ?? 0,
    type: image.content_type ?? "",
    phase: "sent",
    loaded: 0,
    imageId,
    error: null,
    attempts: 1,
    server,
  });
}
