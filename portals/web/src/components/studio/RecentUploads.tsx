"use client";
import Link from "next/link";
import { useEffect, useState } from "react";
import { api, call, type Schemas } from "@/lib/api";
import { stageOf, withdrawn, type QueueItem } from "@/lib/uploadQueue";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";

const REFRESH_MS = 5000;

/** What the platform decided about one's latest uploads, in the same words as the queue. */
export function RecentUploads() {
  // Polled in place: the list stays on screen while it refreshes (no skeleton flashing every few seconds).
  const [page, setPage] = useState<Schemas["ImagesPage"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let stop = false;
    const tick = async () => {
      try {
        const next = await call(api.GET("/api/contributor/images", { params: { query: { per_page: 12 } } }));
        if (!stop) {
          setPage(next);
          setError(null);
        }
      } catch (err) {
        if (!stop) setError(err);
      }
    };
    void tick();
    const timer = window.setInterval(() => void tick(), REFRESH_MS);
    return () => {
      stop = true;
      window.clearInterval(timer);
    };
  }, [attempt]);
  const reload = () => setAttempt((n) => n + 1);
  const load =
    error && !page
      ? { status: "error" as const, error }
      : page
        ? { status: "ready" as const, data: page }
        : { status: "loading" as const };

  return (
    <section aria-labelledby="recent-heading" className="stack">
      <div className="row">
        <h2 id="recent-heading">Latest uploads</h2>
        <span className="spacer" />
        <Link href="/contributor/portfolio/">Whole portfolio</Link>
      </div>
      {load.status === "loading" && <LinesSkeleton lines={4} />}
      {load.status === "error" && <ErrorState error={load.error} retry={reload} />}
      {load.status === "ready" &&
        (load.data.items.length === 0 ? (
          <EmptyState title="Nothing uploaded yet">
            <p>Drop photos above: each one shows its progress, then what review decided.</p>
          </EmptyState>
        ) : (
          <ul className="upload-list" aria-label="Latest uploads">
            {load.data.items.map((image) => (
              <RecentRow key={image.image_id} image={image} />
            ))}
          </ul>
        ))}
    </section>
  );
}

function RecentRow({ image }: { image: Schemas["ContributorImage"] }) {
  const item: QueueItem = {
    key: image.image_id,
    fileName: image.file_name,
    size: image.size_bytes ?? 0,
    type: image.content_type ?? "",
    phase: "sent",
    loaded: 0,
    imageId: image.image_id,
    error: null,
    attempts: 1,
    server: {
      state: image.state,
      reasonCode: image.reason_code ?? null,
      reason: image.reason ?? null,
      moderationReasons: image.moderation_reasons ?? [],
      title: image.listing?.title || image.sidecar.title || "",
      thumbnailUrl: withdrawn(image.state) ? null : (image.listing?.renditions.thumbnail_small_url ?? null),
    },
  };
  const stage = stageOf(item);
  const title = item.server?.title || image.file_name;
  const thumb = item.server?.thumbnailUrl;
  const editable = ["processed", "flagged", "approved"].includes(image.state);
  return (
    <li className={`upload-row tone-${stage.tone}`} data-file={image.file_name}>
      <div className="upload-thumb">
        {thumb ? (
          <img src={thumb} alt={title} width={64} height={64} loading="lazy" />
        ) : (
          <span className="upload-thumb-note">{stage.tone === "danger" ? "No preview" : "Preview soon"}</span>
        )}
      </div>
      <div className="upload-main">
        <div className="upload-name">
          <strong>{title}</strong>
          {title !== image.file_name && <span className="muted">{image.file_name}</span>}
        </div>
        <p className="upload-stage">
          <span className={`pill ${stage.tone}`} data-testid="stage">
            {stage.label}
          </span>
          {stage.detail && (
            <span className="upload-detail" data-testid="reason">
              {stage.detail}
            </span>
          )}
        </p>
      </div>
      <div className="upload-actions">
        {editable && (
          <Link className="button small secondary" href={`/contributor/image/?id=${image.image_id}`}>
            Edit details<span className="visually-hidden"> of {title}</span>
          </Link>
        )}
      </div>
    </li>
  );
}
