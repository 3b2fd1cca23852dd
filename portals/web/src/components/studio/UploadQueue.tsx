"use client";
import Link from "next/link";
import { useCallback, useEffect, useReducer, useRef, useState, type DragEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { failureShown, serverView, type PollState } from "@/lib/imagesPoll";
import { putToSas, UploadAborted, type Transfer } from "@/lib/sasUpload";
import {
  ACCEPTED_TYPES,
  canRetry,
  formatBytes,
  isActive,
  nextToStart,
  queueNeeds,
  reduce,
  stageOf,
  type QueueItem,
} from "@/lib/uploadQueue";

export type QueueNeeds = ReturnType<typeof queueNeeds>;
type UploadType = Schemas["UploadRequest"]["content_type"];

/** Drop many photos; each goes straight to storage with its own progress, then follows review. */
export function UploadQueue({
  poll,
  onNeeds,
}: {
  poll: PollState & { refresh: () => void };
  onNeeds: (needs: QueueNeeds) => void;
}) {
  const [items, dispatch] = useReducer(reduce, []);
  const files = useRef(new Map<string, File>());
  const previews = useRef(new Map<string, string>());
  const transfers = useRef(new Map<string, Transfer>());
  const started = useRef(new Set<string>());
  const counter = useRef(0);
  const [over, setOver] = useState(false);

  const add = useCallback((list: FileList | File[]) => {
    const added = Array.from(list).map((file) => {
      counter.current += 1;
      const key = `${counter.current}-${file.name}`;
      files.current.set(key, file);
      if (file.type.startsWith("image/")) previews.current.set(key, URL.createObjectURL(file));
      return { key, name: file.name, size: file.size, type: file.type };
    });
    dispatch({ type: "add", files: added });
  }, []);

  const send = useCallback(async (item: QueueItem) => {
    const file = files.current.get(item.key);
    if (!file) return;
    dispatch({ type: "requesting", key: item.key });
    try {
      const ticket = await call(
        api.POST("/api/contributor/uploads", {
          body: { file_name: file.name, size_bytes: file.size, content_type: file.type as UploadType },
        }),
      );
      dispatch({ type: "ticket", key: item.key, imageId: ticket.image_id });
      const transfer = putToSas(file, ticket.upload_url, ticket.headers ?? {}, (loaded) =>
        dispatch({ type: "progress", key: item.key, loaded }),
      );
      transfers.current.set(item.key, transfer);
      await transfer.done;
      dispatch({ type: "sent", key: item.key });
    } catch (err) {
      if (!(err instanceof UploadAborted)) dispatch({ type: "failed", key: item.key, message: messageOf(err) });
    } finally {
      transfers.current.delete(item.key);
    }
  }, []);

  // Start queued files as slots free up; `started` keeps React's double effects from sending twice.
  useEffect(() => {
    for (const key of nextToStart(items)) {
      const item = items.find((i) => i.key === key);
      const attempt = `${key}#${(item?.attempts ?? 0) + 1}`;
      if (!item || started.current.has(attempt)) continue;
      started.current.add(attempt);
      void send(item);
    }
  }, [items, send]);

  // Sent files follow validation, processing and review through the studio's one poll (StudioHome).
  const { fast, follow, onTheWay } = queueNeeds(items);
  useEffect(() => onNeeds({ fast, follow, onTheWay }), [fast, follow, onTheWay, onNeeds]);
  useEffect(() => {
    if (poll.images) dispatch({ type: "server", images: poll.images.map(serverView) });
  }, [poll.images]);

  useEffect(() => {
    const urls = previews.current;
    const running = transfers.current;
    return () => {
      urls.forEach((url) => URL.revokeObjectURL(url));
      running.forEach((t) => t.abort());
    };
  }, []);

  const cancel = (key: string) => {
    transfers.current.get(key)?.abort();
    dispatch({ type: "cancel", key });
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    if (event.dataTransfer.files.length) add(event.dataTransfer.files);
  };

  const counts = summary(items);

  return (
    <section aria-labelledby="upload-heading" className="stack">
      <h2 id="upload-heading" className="visually-hidden">
        Add photos
      </h2>
      <div
        className={`dropzone big-drop${over ? " over" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p className="drop-title">Drag photos here</p>
        <p>JPEG, PNG, WebP or TIFF, at least 4 megapixels. Many at once is fine.</p>
        <label className="button">
          Choose files
          <input
            type="file"
            multiple
            accept={ACCEPTED_TYPES.join(",")}
            className="visually-hidden"
            onChange={(e) => {
              if (e.target.files?.length) add(e.target.files);
              e.target.value = "";
            }}
          />
        </label>
      </div>

      <p role="status" aria-live="polite" className="muted queue-summary">
        {counts}
      </p>
      {failureShown(poll) === "notice" && (
        // One notice however many refreshes fail; it goes when one works (see imagesPoll.ts).
        <div className="notice error row" role="alert">
          <span>Could not refresh the status: {poll.error} Trying again in a few seconds.</span>
          <button type="button" className="button small secondary" onClick={poll.refresh}>
            Try now
          </button>
        </div>
      )}

      {items.length === 0 ? (
        <p className="queue-empty">
          Your queue is empty. Drop photos on the box above or press <strong>Choose files</strong>: each one shows
          its progress here, then what review decided.
        </p>
      ) : (
        <ul className="upload-list" aria-label="Uploads">
          {items.map((item) => (
            <UploadRow
              key={item.key}
              item={item}
              preview={item.server?.thumbnailUrl ?? previews.current.get(item.key) ?? null}
              onCancel={() => cancel(item.key)}
              onRetry={() => dispatch({ type: "retry", key: item.key })}
              onRemove={() => {
                const url = previews.current.get(item.key);
                if (url) URL.revokeObjectURL(url);
                previews.current.delete(item.key);
                files.current.delete(item.key);
                dispatch({ type: "remove", key: item.key });
              }}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function summary(items: QueueItem[]): string {
  if (!items.length) return "";
  const tally = new Map<string, number>();
  for (const item of items) {
    const label = stageOf(item).label;
    tally.set(label, (tally.get(label) ?? 0) + 1);
  }
  const parts = [...tally].map(([label, n]) => `${n} ${label.toLowerCase()}`);
  return `${items.length} ${items.length === 1 ? "file" : "files"}: ${parts.join(", ")}.`;
}

function UploadRow({
  item,
  preview,
  onCancel,
  onRetry,
  onRemove,
}: {
  item: QueueItem;
  preview: string | null;
  onCancel: () => void;
  onRetry: () => void;
  onRemove: () => void;
}) {
  const stage = stageOf(item);
  const editable = item.imageId && item.server && ["processed", "flagged", "approved"].includes(item.server.state);
  const percent = stage.progress === null ? null : Math.round(stage.progress * 100);
  return (
    <li className={`upload-row tone-${stage.tone}`} data-file={item.fileName}>
      <div className="upload-thumb">
        {preview ? <img src={preview} alt="" width={64} height={64} loading="lazy" /> : <span aria-hidden="true" />}
      </div>
      <div className="upload-main">
        <div className="upload-name">
          <strong>{item.server?.title || item.fileName}</strong>
          <span className="muted">{formatBytes(item.size)}</span>
        </div>
        {percent !== null && (
          <progress max={100} value={percent} aria-label={`${item.fileName} upload progress`}>
            {percent}%
          </progress>
        )}
        <p className="upload-stage">
          <span className={`pill ${stage.tone}`} data-testid="stage">
            {stage.label}
            {percent !== null ? ` ${percent}%` : ""}
          </span>
          {stage.detail && (
            <span className="upload-detail" data-testid="reason">
              {stage.detail}
            </span>
          )}
        </p>
      </div>
      <div className="upload-actions">
        {(isActive(item) || item.phase === "queued") && (
          <button type="button" className="button small quiet" onClick={onCancel}>
            Cancel<span className="visually-hidden"> {item.fileName}</span>
          </button>
        )}
        {canRetry(item) && (
          <button type="button" className="button small secondary" onClick={onRetry}>
            Retry<span className="visually-hidden"> {item.fileName}</span>
          </button>
        )}
        {editable && (
          <Link className="button small secondary" href={`/contributor/image/?id=${item.imageId}`}>
            Edit details<span className="visually-hidden"> of {item.fileName}</span>
          </Link>
        )}
        {!isActive(item) && item.phase !== "queued" && (
          <button type="button" className="button small quiet" onClick={onRemove}>
            Clear<span className="visually-hidden"> {item.fileName} from the list</span>
          </button>
        )}
      </div>
    </li>
  );
}
