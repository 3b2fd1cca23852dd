"use client";
import Link from "next/link";
import { useId, useState, type FormEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { optionalFields } from "@/lib/optionalFields";
import { changedFields, suggestionsFrom, type Details } from "@/lib/keywords";
import { stageOf } from "@/lib/uploadQueue";
import { useLoad } from "@/lib/useLoad";
import { ErrorState, LinesSkeleton } from "../States";
import { KeywordChips } from "./KeywordChips";

type Image = Schemas["ContributorImage"];

function detailsOf(image: Image): Details {
  const listing = image.listing;
  return {
    title: listing?.title ?? image.sidecar.title ?? "",
    description: listing?.description ?? image.sidecar.description ?? "",
    keywords: listing?.keywords ?? image.sidecar.keywords ?? [],
    category: listing?.category ?? image.sidecar.category ?? null,
  };
}

export function DetailsEditor({ id }: { id: string }) {
  const image = useLoad(() => call(api.GET("/api/contributor/images/{id}", { params: { path: { id } } })), id);
  const categories = useLoad(() => call(api.GET("/api/categories")), "categories");
  if (image.status === "loading") return <LinesSkeleton lines={8} />;
  if (image.status === "error") return <ErrorState error={image.error} retry={image.reload} />;
  const cats = categories.status === "ready" ? categories.data.items : [];
  return <EditorForm key={image.data.image_id} image={image.data} categories={cats} />;
}

function EditorForm({ image, categories }: { image: Image; categories: Schemas["Category"][] }) {
  // What the API holds now. After a save it is the saved draft: the catalogue we loaded from catches
  // up through the bus a moment later, so reloading at once could show the old details.
  const [original, setOriginal] = useState<Details>(() => detailsOf(image));
  const [draft, setDraft] = useState<Details>(original);
  const [reasons, setReasons] = useState<string[]>(image.moderation_reasons ?? []);
  const [saving, setSaving] = useState(false);
  const [message, setMessage] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const edit = (next: Details) => {
    setDraft(next);
    setMessage(null);
  };
  const titleId = useId();
  const descriptionId = useId();
  const categoryId = useId();
  const listing = image.listing;
  const suggestions = suggestionsFrom(listing?.tags ?? []);
  const editable = ["processed", "flagged", "approved"].includes(image.state);
  const stage = stageOf({
    key: image.image_id,
    fileName: image.file_name,
    size: image.size_bytes ?? 0,
    type: "",
    phase: "sent",
    loaded: 0,
    imageId: image.image_id,
    error: null,
    attempts: 1,
    server: {
      state: image.state,
      reasonCode: image.reason_code ?? null,
      reason: image.reason ?? null,
      moderationReasons: reasons,
      title: original.title,
      thumbnailUrl: null,
    },
  });

  const save = async (event: FormEvent) => {
    event.preventDefault();
    const patch = changedFields(original, draft);
    if (!patch) {
      setMessage({ tone: "success", text: "Nothing changed." });
      return;
    }
    setSaving(true);
    try {
      const view = await call(
        api.PATCH("/api/contributor/images/{id}", {
          params: { path: { id: image.image_id } },
          body: optionalFields<Schemas["ImagePatch"]>(patch),
        }),
      );
      const saved: Details = { ...original, ...patch };
      setOriginal(saved);
      setReasons(view.reasons);
      setDraft(saved);
      setMessage({ tone: "success", text: "Saved. Buyers see the new details once the image is live." });
    } catch (err) {
      setMessage({ tone: "error", text: messageOf(err) });
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="editor-layout">
      <figure className="editor-preview">
        {listing ? (
          <img
            src={listing.renditions.preview_url}
            alt={original.title || image.file_name}
            width={listing.width}
            height={listing.height}
          />
        ) : (
          <div className="skeleton editor-placeholder" aria-hidden="true" />
        )}
        <figcaption>
          <span className={`pill ${stage.tone}`}>{stage.label}</span> {stage.detail}
          {listing && (
            <span className="muted">
              {" "}
              · {listing.width} × {listing.height} px · {image.file_name}
            </span>
          )}
        </figcaption>
      </figure>
      <form className="panel stack" onSubmit={save} aria-labelledby="details-heading">
        <h2 id="details-heading">Details</h2>
        {!editable && (
          <p className="notice">Details can be edited once the photo has been processed and while it is in review or live.</p>
        )}
        <div className="field">
          <label htmlFor={titleId}>Title</label>
          <input
            id={titleId}
            type="text"
            value={draft.title}
            maxLength={200}
            required
            onChange={(e) => edit({ ...draft, title: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor={descriptionId}>Description</label>
          <textarea
            id={descriptionId}
            rows={3}
            maxLength={2000}
            value={draft.description}
            onChange={(e) => edit({ ...draft, description: e.target.value })}
          />
        </div>
        <KeywordChips
          value={draft.keywords}
          onChange={(keywords) => edit({ ...draft, keywords })}
          suggestions={suggestions}
        />
        <div className="field">
          <label htmlFor={categoryId}>Category</label>
          <select
            id={categoryId}
            value={draft.category ?? ""}
            onChange={(e) => edit({ ...draft, category: e.target.value || null })}
          >
            <option value="">No category</option>
            {categories.map((c) => (
              <option key={c.slug} value={c.slug}>
                {c.name}
              </option>
            ))}
          </select>
        </div>
        <div className="row">
          <button type="submit" className="button" disabled={saving || !editable}>
            {saving ? "Saving…" : "Save details"}
          </button>
          <Link href="/contributor/portfolio/">Back to portfolio</Link>
        </div>
        {message && (
          <p className={`notice ${message.tone}`} role={message.tone === "error" ? "alert" : "status"}>
            {message.text}
          </p>
        )}
      </form>
    </div>
  );
}
