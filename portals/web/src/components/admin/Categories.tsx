"use client";
import { useId, useState, type FormEvent } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { optionalFields } from "@/lib/optionalFields";
import { useLoad } from "@/lib/useLoad";
import { ErrorState, LinesSkeleton } from "../States";

export function slugFor(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/&/g, " and ")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
}

/** Create, rename, retire and bring back the categories contributors and buyers choose from. */
export function Categories() {
  const list = useLoad(() => call(api.GET("/api/admin/categories", { params: { query: { include_retired: true } } })), "categories");
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [slugTouched, setSlugTouched] = useState(false);
  const [notice, setNotice] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const nameId = useId();
  const slugId = useId();

  const create = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await call(api.POST("/api/admin/categories", { body: { name: name.trim(), slug } }));
      setNotice({ tone: "success", text: `Created “${name.trim()}”.` });
      setName("");
      setSlug("");
      setSlugTouched(false);
      list.reload();
    } catch (err) {
      setNotice({ tone: "error", text: messageOf(err) });
    }
  };

  const change = async (category: Schemas["Category"], body: Partial<Schemas["CategoryPatch"]>, done: string) => {
    try {
      await call(
        api.PATCH("/api/admin/categories/{slug}", {
          params: { path: { slug: category.slug } },
          body: optionalFields<Schemas["CategoryPatch"]>(body),
        }),
      );
      setNotice({ tone: "success", text: done });
      list.reload();
    } catch (err) {
      setNotice({ tone: "error", text: messageOf(err) });
    }
  };

  return (
    <div className="stack">
      <form className="panel filters" onSubmit={create} aria-label="New category">
        <div className="field">
          <label htmlFor={nameId}>New category</label>
          <input
            id={nameId}
            type="text"
            required
            value={name}
            onChange={(e) => {
              setName(e.target.value);
              if (!slugTouched) setSlug(slugFor(e.target.value));
            }}
          />
        </div>
        <div className="field">
          <label htmlFor={slugId}>Slug (in URLs)</label>
          <input
            id={slugId}
            type="text"
            required
            pattern="[a-z0-9]+(-[a-z0-9]+)*"
            value={slug}
            onChange={(e) => {
              setSlug(e.target.value);
              setSlugTouched(true);
            }}
          />
        </div>
        <button type="submit" className="button">
          Create
        </button>
      </form>
      {notice && (
        <p className={`notice ${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
          {notice.text}
        </p>
      )}
      {list.status === "loading" && <LinesSkeleton lines={5} />}
      {list.status === "error" && <ErrorState error={list.error} retry={list.reload} />}
      {list.status === "ready" && (
        <table className="table stackable">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Slug</th>
              <th scope="col">State</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((category) => (
              <CategoryRow key={category.slug} category={category} onChange={change} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function CategoryRow({
  category,
  onChange,
}: {
  category: Schemas["Category"];
  onChange: (category: Schemas["Category"], body: Partial<Schemas["CategoryPatch"]>, done: string) => Promise<void>;
}) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(category.name);
  const inputId = useId();
  return (
    <tr>
      <td data-label="Name">
        {editing ? (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              void onChange(category, { name: name.trim() }, `Renamed to “${name.trim()}”.`).then(() => setEditing(false));
            }}
          >
            <label htmlFor={inputId} className="visually-hidden">
              New name for {category.name}
            </label>
            <input id={inputId} type="text" required value={name} onChange={(e) => setName(e.target.value)} />
            <button type="submit" className="button small">
              Save
            </button>
          </form>
        ) : (
          category.name
        )}
      </td>
      <td data-label="Slug">
        <code>{category.slug}</code>
      </td>
      <td data-label="State">
        <span className={`pill ${category.retired ? "neutral" : "success"}`}>{category.retired ? "Retired" : "In use"}</span>
      </td>
      <td data-label="Actions">
        <div className="row">
          {!editing && (
            <button type="button" className="button small quiet" onClick={() => setEditing(true)}>
              Rename<span className="visually-hidden"> {category.name}</span>
            </button>
          )}
          <button
            type="button"
            className="button small secondary"
            onClick={() =>
              void onChange(
                category,
                { retired: !category.retired },
                category.retired ? `“${category.name}” is back in use.` : `“${category.name}” is retired.`,
              )
            }
          >
            {category.retired ? "Bring back" : "Retire"}
            <span className="visually-hidden"> {category.name}</span>
          </button>
        </div>
      </td>
    </tr>
  );
}
