import { describe, expect, it } from "vitest";
import {
  awaitingServer,
  formatBytes,
  nextToStart,
  reduce,
  stageOf,
  type QueueEvent,
  type QueueItem,
  type ServerView,
} from "./uploadQueue";

const jpeg = (key: string, size = 1000) => ({ key, name: `${key}.jpg`, size, type: "image/jpeg" });

function run(events: QueueEvent[], start: QueueItem[] = []): QueueItem[] {
  return events.reduce(reduce, start);
}

function only(items: QueueItem[], key = "a"): QueueItem {
  const item = items.find((i) => i.key === key);
  if (!item) throw new Error(`no item ${key}`);
  return item;
}

const server = (state: ServerView["state"], extra: Partial<ServerView> = {}): ServerView => ({
  state,
  reasonCode: null,
  reason: null,
  moderationReasons: [],
  title: "",
  thumbnailUrl: null,
  ...extra,
});

describe("the upload queue", () => {
  it("takes a file from waiting through its ticket and progress to sent", () => {
    let items = run([{ type: "add", files: [jpeg("a")] }]);
    expect(stageOf(only(items)).label).toBe("Waiting");
    items = run(
      [
        { type: "requesting", key: "a" },
        { type: "ticket", key: "a", imageId: "img-1" },
        { type: "progress", key: "a", loaded: 250 },
      ],
      items,
    );
    expect(stageOf(only(items))).toMatchObject({ label: "Uploading", progress: 0.25 });
    items = run([{ type: "progress", key: "a", loaded: 100 }], items);
    expect(only(items).loaded).toBe(250); // progress never goes backwards
    items = run([{ type: "sent", key: "a" }], items);
    expect(stageOf(only(items)).label).toBe("Checking the file");
    expect(awaitingServer(items)).toBe(true);
  });

  it("refuses what the platform would refuse before sending anything, and does not offer a retry", () => {
    const items = run([
      { type: "add", files: [{ key: "a", name: "notes.pdf", size: 10, type: "application/pdf" }, jpeg("b", 0)] },
    ]);
    expect(only(items).phase).toBe("failed");
    expect(stageOf(only(items)).detail).toMatch(/JPEG, PNG, WebP and TIFF/);
    expect(stageOf(only(items, "b")).detail).toMatch(/empty/);
    expect(run([{ type: "retry", key: "a" }], items)).toEqual(items);
    expect(nextToStart(items)).toEqual([]);
  });

  it("starts at most three transfers at once, oldest first", () => {
    let items = run([{ type: "add", files: ["a", "b", "c", "d", "e"].map((k) => jpeg(k)) }]);
    expect(nextToStart(items)).toEqual(["a", "b", "c"]);
    items = run([{ type: "requesting", key: "a" }, { type: "requesting", key: "b" }], items);
    expect(nextToStart(items)).toEqual(["c"]);
    items = run([{ type: "ticket", key: "a", imageId: "1" }, { type: "sent", key: "a" }], items);
    expect(nextToStart(items)).toEqual(["c", "d"]);
  });

  it("cancels a running transfer and retries it with a fresh ticket", () => {
    let items = run([
      { type: "add", files: [jpeg("a")] },
      { type: "requesting", key: "a" },
      { type: "ticket", key: "a", imageId: "old" },
      { type: "progress", key: "a", loaded: 600 },
      { type: "cancel", key: "a" },
    ]);
    expect(only(items)).toMatchObject({ phase: "cancelled", loaded: 0 });
    // A late progress or completion from the aborted request changes nothing.
    expect(run([{ type: "progress", key: "a", loaded: 900 }, { type: "sent", key: "a" }], items)).toEqual(items);
    items = run([{ type: "retry", key: "a" }], items);
    expect(only(items)).toMatchObject({ phase: "queued", imageId: null });
    items = run([{ type: "requesting", key: "a" }], items);
    expect(only(items).attempts).toBe(2);
  });

  it("offers a retry after a network failure, keeping the message to show", () => {
    const items = run([
      { type: "add", files: [jpeg("a")] },
      { type: "requesting", key: "a" },
      { type: "failed", key: "a", message: "The connection dropped." },
    ]);
    expect(stageOf(only(items))).toMatchObject({ label: "Upload failed", detail: "The connection dropped." });
    expect(only(run([{ type: "retry", key: "a" }], items)).phase).toBe("queued");
  });

  it("follows the platform's states and says why a file was not accepted, in words, with what to do", () => {
    const sent = run([
      { type: "add", files: [jpeg("a"), jpeg("b"), jpeg("c")] },
      ...(["a", "b", "c"] as const).flatMap<QueueEvent>((k) => [
        { type: "requesting", key: k },
        { type: "ticket", key: k, imageId: `id-${k}` },
        { type: "sent", key: k },
      ]),
    ]);
    const items = reduce(sent, {
      type: "server",
      images: [
        { imageId: "id-a", ...server("processing") },
        {
          imageId: "id-b",
          ...server("quarantined", {
            reasonCode: "duplicate",
            reason: "This file is identical to your image 7b03d793-2d4b-4f50-aefe-64b1f9783fc3, already on the platform.",
          }),
        },
        { imageId: "id-c", ...server("quarantined", { reasonCode: "too-small", reason: "The image is 0.3 MP." }) },
      ],
    });
    expect(stageOf(only(items, "a")).label).toBe("Validated · processing");
    expect(stageOf(only(items, "b"))).toMatchObject({ label: "Not accepted", tone: "danger" });
    expect(stageOf(only(items, "b")).detail).toBe(
      "This file is identical to a photo already in your portfolio. Nothing to do.",
    );
    expect(stageOf(only(items, "c")).detail).toBe("The image is 0.3 MP. Upload the full-size export of the photo.");
    expect(awaitingServer(items)).toBe(true); // a is still processing

    const done = reduce(items, {
      type: "server",
      images: [{ imageId: "id-a", ...server("flagged", { moderationReasons: ["missing_keywords"] }) }],
    });
    expect(stageOf(only(done, "a"))).toMatchObject({ label: "In review", detail: expect.stringMatching(/more keywords/) });
    const decided = reduce(done, {
      type: "server",
      images: [{ imageId: "id-a", ...server("rejected", { reasonCode: "poor_quality", reason: "poor_quality" }) }],
    });
    expect(stageOf(only(decided, "a")).detail).toBe("Reviewer's reason: Poor quality (blur, noise, exposure).");
    const withNote = reduce(done, {
      type: "server",
      images: [{ imageId: "id-a", ...server("rejected", { reasonCode: "other", reason: "Watermark in the corner" }) }],
    });
    expect(stageOf(only(withNote, "a")).detail).toBe("Reviewer's reason: Other (say why). “Watermark in the corner”");
    expect(awaitingServer(decided)).toBe(false);
  });

  it("removes finished rows but never one that is still sending", () => {
    let items = run([{ type: "add", files: [jpeg("a"), jpeg("b")] }, { type: "requesting", key: "a" }]);
    items = run([{ type: "remove", key: "a" }, { type: "remove", key: "b" }], items);
    expect(items.map((i) => i.key)).toEqual(["a"]);
  });

  it("formats sizes for the reader", () => {
    expect(formatBytes(1_234_000, "en-US")).toBe("1.2 MB");
    expect(formatBytes(999, "en-US")).toBe("999 byte");
  });
});
