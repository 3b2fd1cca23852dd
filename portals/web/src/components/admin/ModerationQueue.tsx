"use client";
import { useCallback, useEffect, useId, useReducer, useRef, useState, type MouseEvent, type RefObject } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { optionalFields } from "@/lib/optionalFields";
import {
  commandForKey,
  current,
  EMPTY,
  reduceQueue,
  REJECT_REASONS,
  targets,
  type Command,
  type RejectCode,
} from "@/lib/moderationKeys";
import { useLoad } from "@/lib/useLoad";
import { EmptyState, ErrorState, LinesSkeleton } from "../States";

type Image = Schemas["ModerationImage"];

export const FLAG_WORDS: Record<string, string> = {
  nsfw_score: "Safety score at or above the limit",
  near_duplicate_of: "Near duplicate of another image",
  low_resolution: "Low resolution",
  missing_title: "No title",
  missing_keywords: "Too few keywords",
};

function inTextField(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}

/** The review queue: a big preview with its flags, j/k/x/a/r from the keyboard, bulk decisions. */
export function ModerationQueue() {
  const queue = useLoad(
    () => call(api.GET("/api/admin/moderation/queue", { params: { query: { per_page: 100 } } })),
    "queue",
  );
  const [state, dispatch] = useReducer(reduceQueue, EMPTY);
  const [images, setImages] = useState(new Map<string, Image>());
  const [announcement, setAnnouncement] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const [help, setHelp] = useState(false);
  const noteRef = useRef<HTMLTextAreaElement>(null);

  // Only a new answer from the API resets the list (useLoad hands out a new wrapper every render).
  const page = queue.status === "ready" ? queue.data : null;
  useEffect(() => {
    if (!page) return;
    setImages(new Map(page.items.map((i) => [i.image_id, i])));
    dispatch({ type: "load", ids: page.items.map((i) => i.image_id) });
  }, [page]);

  const decide = useCallback(
    async (action: "approve" | "reject", reason?: RejectCode, reasonNote?: string) => {
      const ids = targets(state);
      if (!ids.length || busy) return;
      setBusy(true);
      setError(null);
      try {
        let decided: string[];
        if (ids.length === 1) {
          const [id] = ids as [string];
          if (action === "approve") {
            await call(api.POST("/api/admin/images/{id}/approve", { params: { path: { id } } }));
          } else {
            await call(
              api.POST("/api/admin/images/{id}/reject", {
                params: { path: { id } },
                body: optionalFields<Schemas["RejectIn"]>({ reason_code: reason!, note: reasonNote || undefined }),
              }),
            );
          }
          decided = ids;
        } else {
          const body = optionalFields<Schemas["BulkModerateIn"]>(
            action === "approve"
              ? { action, image_ids: ids }
              : { action, image_ids: ids, reason_code: reason, note: reasonNote || undefined },
          );
          const out = await call(api.POST("/api/admin/images/moderate", { body }));
          decided = out.results.filter((r) => r.status === 200).map((r) => r.image_id);
          const failed = out.results.filter((r) => r.status !== 200);
          if (failed.length) setError(`${failed.length} could not be decided: ${failed[0]?.detail ?? failed[0]?.error}`);
        }
        const names = decided.map((id) => images.get(id)?.title || "untitled").slice(0, 3);
        const verb = action === "approve" ? "Approved" : "Rejected";
        setAnnouncement(
          `${verb} ${decided.length === 1 ? `“${names[0]}”` : `${decided.length} images`}.`,
        );
        setNote("");
        dispatch({ type: "decided", ids: decided });
      } catch (err) {
        setError(messageOf(err));
        dispatch({ type: "closeReject" });
      } finally {
        setBusy(false);
      }
    },
    [state, busy, images],
  );

  const run = useCallback(
    (command: Command) => {
      if (command.type === "approve") void decide("approve");
      else if (command.type === "reason") {
        if (command.code === "other") noteRef.current?.focus();
        else void decide("reject", command.code);
      } else if (command.type === "help") setHelp((h) => !h);
      else dispatch(command);
    },
    [decide],
  );

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const command = commandForKey(state, {
        key: event.key,
        shiftKey: event.shiftKey,
        ctrlKey: event.ctrlKey,
        metaKey: event.metaKey,
        altKey: event.altKey,
        inTextField: inTextField(event.target),
      });
      if (!command) return;
      event.preventDefault();
      run(command);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [state, run]);

  if (queue.status === "loading") return <LinesSkeleton lines={6} />;
  if (queue.status === "error") return <ErrorState error={queue.error} retry={queue.reload} />;

  const shownId = current(state);
  const shown = shownId ? images.get(shownId) : undefined;
  const selection = state.selected.length;

  return (
    <div className="stack">
      <p className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      <KeyLegend open={help} onToggle={() => setHelp((h) => !h)} />
      {error && (
        <p className="notice error" role="alert">
          {error}
        </p>
      )}
      {selection > 0 && (
        <div className="bulk-bar" role="region" aria-label="Selection">
          <strong>{selection} selected</strong>
          <button type="button" className="button small" onClick={() => run({ type: "approve" })} disabled={busy}>
            Approve {selection}
          </button>
          <button type="button" className="button small secondary" onClick={() => run({ type: "openReject" })}>
            Reject {selection}…
          </button>
          <button type="button" className="button small quiet" onClick={() => run({ type: "clearSelection" })}>
            Clear selection
          </button>
        </div>
      )}
      {state.ids.length === 0 ? (
        <EmptyState
          title="The queue is empty"
          actions={
            <button type="button" className="button secondary" onClick={queue.reload}>
              Check again
            </button>
          }
        >
          <p>Every image has a decision. New uploads that need a person appear here.</p>
        </EmptyState>
      ) : (
        <div className="moderation-layout">
          <ol className="queue-list" aria-label={`Queue, ${state.ids.length} images`}>
            {state.ids.map((id, index) => {
              const image = images.get(id);
              if (!image) return null;
              return (
                <QueueRow
                  key={id}
                  image={image}
                  current={index === state.cursor}
                  selected={state.selected.includes(id)}
                  onFocus={() => dispatch({ type: "focus", index })}
                  onSelect={(event) => dispatch({ type: "click", index, shift: event.shiftKey })}
                />
              );
            })}
          </ol>
          {shown && (
            <Preview
              image={shown}
              busy={busy}
              onApprove={() => run({ type: "approve" })}
              onReject={() => run({ type: "openReject" })}
            />
          )}
        </div>
      )}
      {state.rejecting && (
        <ReasonPicker
          count={targets(state).length}
          note={note}
          noteRef={noteRef}
          onNote={setNote}
          busy={busy}
          onPick={(code) => run({ type: "reason", code })}
          onSubmitOther={() => void decide("reject", "other", note.trim())}
          onClose={() => run({ type: "closeReject" })}
        />
      )}
    </div>
  );
}

function KeyLegend({ open, onToggle }: { open: boolean; onToggle: () => void }) {
  return (
    <div className="key-legend">
      <p className="muted">
        <kbd>j</kbd>/<kbd>k</kbd> next/previous · <kbd>a</kbd> approve · <kbd>r</kbd> reject · <kbd>x</kbd> select ·
        shift-click a range ·{" "}
        <button type="button" className="link-button" onClick={onToggle} aria-expanded={open}>
          {open ? "Hide" : "All"} shortcuts
        </button>
      </p>
      {open && (
        <dl className="key-table">
          <dt>j / k</dt>
          <dd>Next / previous image</dd>
          <dt>x</dt>
          <dd>Select or unselect the image shown</dd>
          <dt>a</dt>
          <dd>Approve the selection, or the image shown</dd>
          <dt>r, then 1–8</dt>
          <dd>Reject with the reason of that number</dd>
          <dt>Esc</dt>
          <dd>Close the reasons, or clear the selection</dd>
          <dt>?</dt>
          <dd>Show or hide this list</dd>
        </dl>
      )}
    </div>
  );
}

function QueueRow({
  image,
  current: isCurrent,
  selected,
  onFocus,
  onSelect,
}: {
  image: Image;
  current: boolean;
  selected: boolean;
  onFocus: () => void;
  onSelect: (event: MouseEvent) => void;
}) {
  const ref = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (isCurrent) ref.current?.scrollIntoView?.({ block: "nearest" });
  }, [isCurrent]);
  const title = image.title || "Untitled";
  return (
    <li
      ref={ref}
      className={`queue-row${isCurrent ? " current" : ""}${selected ? " selected" : ""}`}
      aria-current={isCurrent ? "true" : undefined}
      data-image-id={image.image_id}
    >
      <input
        type="checkbox"
        checked={selected}
        aria-label={`Select ${title}`}
        onChange={() => undefined}
        onClick={onSelect}
      />
      <button type="button" className="queue-row-main" onClick={onFocus}>
        <img src={image.thumbnail_url} alt={title} width={56} height={56} loading="lazy" />
        <span>
          <strong>{title}</strong>
          <span className="muted small">{image.reasons.map((r) => FLAG_WORDS[r] ?? r).join(" · ") || "No flags"}</span>
        </span>
      </button>
    </li>
  );
}

function Preview({
  image,
  busy,
  onApprove,
  onReject,
}: {
  image: Image;
  busy: boolean;
  onApprove: () => void;
  onReject: () => void;
}) {
  const twin = useLoad(
    image.near_duplicate_of
      ? () => call(api.GET("/api/admin/images/{id}", { params: { path: { id: image.near_duplicate_of! } } }))
      : null,
    image.near_duplicate_of ?? "none",
  );
  const megapixels = (image.width * image.height) / 1e6;
  const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const title = image.title || "Untitled";
  return (
    <section className="preview-panel" aria-label={`Preview: ${title}`} data-testid="preview">
      <div className={`preview-images${image.near_duplicate_of ? " twins" : ""}`}>
        <figure>
          <img src={image.preview_url} alt={title} width={image.width} height={image.height} />
          {image.near_duplicate_of && <figcaption>This upload</figcaption>}
        </figure>
        {image.near_duplicate_of && (
          <figure>
            {twin.status === "ready" ? (
              <img
                src={twin.data.preview_url}
                alt={twin.data.title || "Its near duplicate"}
                width={twin.data.width}
                height={twin.data.height}
              />
            ) : (
              <div className="skeleton preview-placeholder" aria-hidden="true" />
            )}
            <figcaption>Its near duplicate{twin.status === "ready" ? `: ${twin.data.title}` : ""}</figcaption>
          </figure>
        )}
      </div>
      <div className="preview-facts">
        <h2>{title}</h2>
        <ul className="flags" aria-label="Flags">
          {image.reasons.length === 0 && <li className="pill neutral">No flags</li>}
          {image.reasons.map((r) => (
            <li key={r} className="pill warning">
              {FLAG_WORDS[r] ?? r}
            </li>
          ))}
        </ul>
        <dl className="facts">
          <dt>Safety score</dt>
          <dd>{fmt.format(image.safety_score * 100)} / 100</dd>
          <dt>Resolution</dt>
          <dd>
            {image.width} × {image.height} px ({fmt.format(megapixels)} MP)
          </dd>
          <dt>Contributor</dt>
          <dd>{image.contributor_id}</dd>
          <dt>Keywords</dt>
          <dd>{image.keywords.length ? image.keywords.join(", ") : <em>none</em>}</dd>
          <dt>Description</dt>
          <dd>{image.description || <em>none</em>}</dd>
          <dt>Category</dt>
          <dd>{image.category ?? <em>none</em>}</dd>
          <dt>Waiting since</dt>
          <dd>{new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(image.queued_at))}</dd>
        </dl>
        <div className="row">
          <button type="button" className="button" onClick={onApprove} disabled={busy}>
            Approve <kbd>a</kbd>
          </button>
          <button type="button" className="button secondary" onClick={onReject} disabled={busy}>
            Reject… <kbd>r</kbd>
          </button>
        </div>
      </div>
    </section>
  );
}

function ReasonPicker({
  count,
  note,
  noteRef,
  onNote,
  busy,
  onPick,
  onSubmitOther,
  onClose,
}: {
  count: number;
  note: string;
  noteRef: RefObject<HTMLTextAreaElement | null>;
  onNote: (value: string) => void;
  busy: boolean;
  onPick: (code: RejectCode) => void;
  onSubmitOther: () => void;
  onClose: () => void;
}) {
  const headingId = useId();
  const noteId = useId();
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => first.current?.focus(), []);
  return (
    <div className="dialog-backdrop">
      <div className="dialog" role="dialog" aria-modal="true" aria-labelledby={headingId}>
        <h2 id={headingId}>Reject {count === 1 ? "this image" : `${count} images`}: pick a reason</h2>
        <ol className="reasons">
          {REJECT_REASONS.filter((r) => r.code !== "other").map((reason, i) => (
            <li key={reason.code}>
              <button
                ref={i === 0 ? first : undefined}
                type="button"
                className="reason"
                onClick={() => onPick(reason.code)}
                disabled={busy}
              >
                <kbd>{i + 1}</kbd> {reason.label}
              </button>
            </li>
          ))}
        </ol>
        <div className="field">
          <label htmlFor={noteId}>
            <kbd>8</kbd> Other: say why (the contributor reads this)
          </label>
          <textarea
            id={noteId}
            ref={noteRef}
            rows={2}
            value={note}
            maxLength={2000}
            onChange={(e) => onNote(e.target.value)}
          />
        </div>
        <div className="row">
          <button type="button" className="button" disabled={!note.trim() || busy} onClick={onSubmitOther}>
            Reject with this note
          </button>
          <button type="button" className="button quiet" onClick={onClose}>
            Cancel <kbd>Esc</kbd>
          </button>
        </div>
      </div>
    </div>
  );
}
