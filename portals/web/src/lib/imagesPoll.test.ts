import { describe, expect, it } from "vitest";
import {
  failureShown,
  FAST_MS,
  FOLLOWED,
  imageStage,
  INITIAL_POLL,
  pollPlan,
  pollReduce,
  RECENT,
  recentView,
  type Image,
  type PollEvent,
  type PollState,
  serverView,
} from "./imagesPoll";
import { queueNeeds, reduce, stageOf, type QueueEvent, type QueueItem } from "./uploadQueue";

const image = (id: string, state: Image["state"], extra: Partial<Image> = {}): Image =>
  ({
    image_id: id,
    state,
    file_name: `${id}.jpg`,
    created_at: "2026-12-07T12:00:00Z",
    sidecar: {},
    listing: null,
    ...extra,
  }) as unknown as Image;

const run = (events: PollEvent[], start: PollState = INITIAL_POLL) => events.reduce(pollReduce, start);
const offline: PollEvent = { type: "failed", error: new Error("offline"), message: "The marketplace could not be reached." };

describe("the studio's one poll of the contributor's images", () => {
  it("shows the list in place of the skeleton once the first answer comes", () => {
    expect(recentView(INITIAL_POLL, 0)).toEqual({ kind: "loading" });
    const state = run([{ type: "loaded", images: [image("a", "approved")] }]);
    expect(recentView(state, 0)).toMatchObject({ kind: "list", images: [{ image_id: "a" }] });
  });

  it("lists no more than the latest twelve, even when the queue asked for a longer page", () => {
    const many = Array.from({ length: 30 }, (_, i) => image(`i${i}`, "approved"));
    const view = recentView(run([{ type: "loaded", images: many }]), 0);
    expect(view.kind === "list" && view.images.length).toBe(RECENT);
  });

  it("says how to start when nothing was ever uploaded, and that files are coming while the queue sends them", () => {
    const none = run([{ type: "loaded", images: [] }]);
    expect(recentView(none, 0)).toEqual({ kind: "empty" });
    expect(recentView(none, 3)).toEqual({ kind: "arriving" });
  });

  it("reports a failing refresh once, however many ticks fail", () => {
    const once = run([{ type: "loaded", images: [image("a", "processing")] }, offline]);
    const again = run([offline, offline, offline], once);
    expect(again).toBe(once); // the same state: React renders nothing new, a screen reader hears nothing new
    expect(failureShown(again)).toBe("notice");
  });

  it("keeps the last answer on screen while refreshes fail, and drops the notice when one works", () => {
    const failing = run([{ type: "loaded", images: [image("a", "processing")] }, offline, offline]);
    expect(recentView(failing, 0)).toMatchObject({ kind: "list" });
    const back = run([{ type: "loaded", images: [image("a", "approved")] }], failing);
    expect(failureShown(back)).toBe("none");
    expect(back.error).toBeNull();
  });

  it("puts a failure before any answer in place of the list, not in a notice as well", () => {
    const state = run([offline, offline]);
    expect(failureShown(state)).toBe("in-list");
    expect(recentView(state, 0)).toEqual({ kind: "error" });
  });

  it("says a new failure when the reason changes", () => {
    const state = run([offline, { type: "failed", error: new Error("503"), message: "Try again in a minute." }]);
    expect(state.error).toBe("Try again in a minute.");
  });
});

describe("how often the studio asks", () => {
  const items = (events: QueueEvent[]): QueueItem[] => events.reduce(reduce, [] as QueueItem[]);
  const sent: QueueEvent[] = [
    { type: "add", files: [{ key: "a", name: "a.jpg", size: 10, type: "image/jpeg" }] },
    { type: "requesting", key: "a" },
    { type: "ticket", key: "a", imageId: "img-a" },
    { type: "sent", key: "a" },
  ];
  const server = (state: Image["state"]): QueueEvent => ({ type: "server", images: [serverView(image("img-a", state))] });

  it("asks every few seconds with a short page while the queue has nothing to follow", () => {
    expect(pollPlan(queueNeeds([]))).toEqual({ delayMs: 5000, perPage: RECENT });
  });

  it("asks soon, for a long page, while a file is on its way or in the automatic steps", () => {
    expect(pollPlan(queueNeeds(items(sent.slice(0, 2))))).toEqual({ delayMs: FAST_MS, perPage: FOLLOWED });
    expect(pollPlan(queueNeeds(items([...sent, server("processing")])))).toEqual({ delayMs: FAST_MS, perPage: FOLLOWED });
  });

  it("slows down while a person reviews a photo, but keeps following it", () => {
    expect(pollPlan(queueNeeds(items([...sent, server("flagged")])))).toEqual({ delayMs: 5000, perPage: FOLLOWED });
    expect(pollPlan(queueNeeds(items([...sent, server("approved")])))).toEqual({ delayMs: 5000, perPage: RECENT });
  });

  it("counts files refused in the browser as never arriving", () => {
    const refused = items([{ type: "add", files: [{ key: "b", name: "b.gif", size: 10, type: "image/gif" }] }]);
    expect(queueNeeds(refused).onTheWay).toBe(0);
    expect(queueNeeds(items(sent)).onTheWay).toBe(1);
  });
});

describe("the queue and the latest uploads agree", () => {
  it("say the same stage and reason for the same answer", () => {
    const rejected = image("img-a", "rejected", { reason_code: "quality", reason: "quality" } as Partial<Image>);
    const events: QueueEvent[] = [
      { type: "add", files: [{ key: "a", name: "a.jpg", size: 10, type: "image/jpeg" }] },
      { type: "requesting", key: "a" },
      { type: "ticket", key: "a", imageId: "img-a" },
      { type: "sent", key: "a" },
      { type: "server", images: [serverView(rejected)] },
    ];
    const queued = events.reduce(reduce, [] as QueueItem[]);
    expect(stageOf(queued[0]!)).toEqual(imageStage(rejected));
  });
});
