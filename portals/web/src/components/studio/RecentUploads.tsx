"use client";
import Link from "next/link";
import { imageStage, recentView, serverView, type Image, type PollState } from "@/lib/imagesPoll";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";

/** What the platform decided about one's latest uploads, from the same poll and in the same words as the queue. */
export function RecentUploads({ poll, onTheWay }: { poll: PollState & { refresh: () => void }; onTheWay: number }) {
  // Refreshed in place: the list stays on screen while it refreshes (no skeleton flashing every few seconds).
  const view = recentView(poll, onTheWay);
  return (
    <section aria-labelledby="recent-heading" className="stack">
      <div className="row">
        <h2 id="recent-heading">Latest uploads</h2>
        <span className="spacer" />
        <Link href="/contributor/portfolio/">Whole portfolio</Link>
      </div>
      {view.kind === "loading" && <LinesSkeleton lines={4} />}
      {/* Before anything loaded, the poll's one failure report is here; after, it is the queue's notice. */}
      {view.kind === "error" && <ErrorState error={poll.problem} retry={poll.refresh} />}
      {view.kind === "empty" && (
        <EmptyState title="Upload your first photos">
          <p>
            Drag them onto the box above or press <strong>Choose files</strong>. Each one shows its progress, then
            what review decided; once approved, buyers can find and license it.
          </p>
        </EmptyState>
      )}
      {view.kind === "arriving" && (
        <p className="muted" role="status">
          Your photos appear here as soon as they reach storage.
        </p>
      )}
      {view.kind === "list" && (
        <ul className="upload-list" aria-label="Latest uploads">
          {view.images.map((image) => (
            <RecentRow key={image.image_id} image={image} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RecentRow({ image }: { image: Image }) {
  const stage = imageStage(image);
  const server = serverView(image);
  const title = server.title || image.file_name;
  const thumb = server.thumbnailUrl;
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
