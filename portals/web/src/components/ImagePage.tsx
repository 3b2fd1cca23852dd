"use client";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useState } from "react";
import { api, call, messageOf, type Schemas } from "@/lib/api";
import { addToCart, type LicenseType } from "@/lib/cart";
import { swatch } from "@/lib/colours";
import { LICENSE_INFO, LICENSE_TYPES } from "@/lib/licenses";
import { formatDate, formatMoney } from "@/lib/money";
import { capitalize, searchHref } from "@/lib/searchState";
import { useLoad } from "@/lib/useLoad";
import { hasRole, useSession } from "@/lib/useSession";
import { GridSkeleton, ImageGrid } from "./ImageGrid";
import { EmptyState, ErrorState, LinesSkeleton } from "./States";

type Image = Schemas["ImageDetail"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function Buy({ image }: { image: Image }) {
  const session = useSession();
  const [choice, setChoice] = useState<LicenseType>("standard");
  const [state, setState] = useState<{ busy: boolean; ok?: string; error?: string }>({ busy: false });
  const plan = useLoad(
    hasRole(session, "buyer") ? () => call(api.GET("/api/subscription")).catch(() => null) : null,
    `plan:${session.status}`,
  );
  const offered = LICENSE_TYPES.filter((t) => image.prices[t]);

  async function add() {
    setState({ busy: true });
    try {
      await addToCart({ image_id: image.id, license_type: choice, title: image.title });
      setState({ busy: false, ok: `${LICENSE_INFO[choice].name} added to your cart.` });
    } catch (err) {
      setState({ busy: false, error: messageOf(err) });
    }
  }

  async function useAllotment() {
    setState({ busy: true });
    try {
      await call(api.POST("/api/images/{id}/license", { params: { path: { id: image.id } }, body: { license_type: choice } }));
      setState({ busy: false, ok: "Licensed with your plan. Download it from your account." });
    } catch (err) {
      setState({ busy: false, error: messageOf(err) });
    }
  }

  return (
    <form
      className="panel stack"
      aria-labelledby="licence-heading"
      onSubmit={(e) => {
        e.preventDefault();
        void add();
      }}
    >
      <h2 id="licence-heading">Choose a licence</h2>
      {offered.length === 0 ? (
        <p className="muted">This image has no price yet. Check back soon.</p>
      ) : (
        <fieldset style={{ border: 0, padding: 0, margin: 0 }} className="stack">
          <legend className="visually-hidden">Licence</legend>
          {offered.map((type) => (
            <label key={type} className="row" style={{ alignItems: "flex-start", fontWeight: 400, flexWrap: "nowrap" }}>
              <input
                type="radio"
                name="licence"
                value={type}
                checked={choice === type}
                onChange={() => setChoice(type)}
                style={{ marginTop: 5 }}
              />
              <span style={{ flex: 1 }}>
                <strong>{LICENSE_INFO[type].name}</strong>
                <br />
                <span className="muted">{LICENSE_INFO[type].allows}</span>
              </span>
              <strong>{formatMoney(image.prices[type]!)}</strong>
            </label>
          ))}
        </fieldset>
      )}
      <button type="submit" className="button wide" disabled={state.busy || offered.length === 0}>
        Add to cart
      </button>
      {plan.status === "ready" && plan.data && plan.data.remaining > 0 && (
        <button type="button" className="button secondary wide" onClick={() => void useAllotment()} disabled={state.busy}>
          Use 1 of {plan.data.remaining} plan downloads
        </button>
      )}
      <div aria-live="polite">
        {state.ok && (
          <p className="notice success">
            {state.ok} <Link href="/cart/">Go to cart</Link>
          </p>
        )}
        {state.error && (
          <p className="notice error" role="alert">
            {state.error}
          </p>
        )}
      </div>
      {session.status !== "signed-in" && <p className="muted">You can add images now and sign in when you check out.</p>}
    </form>
  );
}

function Related({ title, load, keyName, empty }: { title: string; load: () => Promise<Schemas["SearchOut"]>; keyName: string; empty: string }) {
  const result = useLoad(load, keyName);
  const headingId = `${keyName.split(":")[0]}-heading`;
  return (
    <section aria-labelledby={headingId} className="stack">
      <h2 id={headingId}>{title}</h2>
      {result.status === "loading" && <GridSkeleton count={6} compact />}
      {result.status === "error" && <ErrorState error={result.error} retry={result.reload} />}
      {result.status === "ready" &&
        (result.data.items.length ? (
          <ImageGrid items={result.data.items} label={title} compact />
        ) : (
          <p className="muted">{empty}</p>
        ))}
    </section>
  );
}

function Detail({ image }: { image: Image }) {
  const ratio = image.width / Math.max(image.height, 1);
  return (
    <article className="stack">
      <div className="two-col">
        <div className="stack">
          <figure style={{ margin: 0, background: "var(--surface)", borderRadius: "var(--radius)", overflow: "hidden" }}>
            <img
              src={image.preview_url}
              alt={image.title}
              width={Math.round(ratio * 800)}
              height={800}
              style={{ width: "100%", height: "auto", maxHeight: "75vh", objectFit: "contain", display: "block" }}
            />
          </figure>
        </div>
        <div className="stack">
          <div>
            <h1>{image.title}</h1>
            <p className="muted">
              by{" "}
              <Link href={searchHref({ q: "", contributor: image.contributor_id, sort: "relevance", page: 1 })}>
                {image.contributor_id}
              </Link>
            </p>
            {image.description && <p>{image.description}</p>}
          </div>
          <Buy image={image} />
          <dl className="facts">
            <dt>Size</dt>
            <dd>
              {image.width} × {image.height} px ({capitalize(image.orientation)})
            </dd>
            <dt>Use</dt>
            <dd>{image.license === "editorial" ? "Editorial use only" : "Commercial and editorial use"}</dd>
            {image.category && (
              <>
                <dt>Category</dt>
                <dd>
                  <Link href={searchHref({ q: "", category: image.category, sort: "relevance", page: 1 })}>
                    {capitalize(image.category)}
                  </Link>
                </dd>
              </>
            )}
            <dt>Added</dt>
            <dd>{formatDate(image.added_at)}</dd>
            {image.colors.length > 0 && (
              <>
                <dt>Colours</dt>
                <dd>
                  {image.colors.map((name) => (
                    <Link
                      key={name}
                      href={searchHref({ q: "", color: name, sort: "relevance", page: 1 })}
                      aria-label={`More ${name} images`}
                      title={name}
                    >
                      <span className="swatch" style={{ background: swatch(name) }} />
                    </Link>
                  ))}
                </dd>
              </>
            )}
          </dl>
          {image.keywords.length > 0 && (
            <nav aria-label="Keywords">
              <ul className="chips">
                {image.keywords.map((k) => (
                  <li key={k}>
                    <Link className="chip" href={searchHref({ q: k, sort: "relevance", page: 1 })}>
                      {k}
                    </Link>
                  </li>
                ))}
              </ul>
            </nav>
          )}
        </div>
      </div>
      <Related
        title="Similar images"
        keyName={`similar:${image.id}`}
        load={() =>
          call(api.GET("/api/images/{id}/similar", { params: { path: { id: image.id }, query: { per_page: 12 } } }))
        }
        empty="No similar images yet."
      />
      <Related
        title={`More from ${image.contributor_id}`}
        keyName={`more:${image.id}`}
        load={() =>
          call(api.GET("/api/search", { params: { query: { contributor: image.contributor_id, per_page: 13, facets: false, sort: "newest" } } })).then(
            (r) => ({ ...r, items: r.items.filter((i) => i.id !== image.id).slice(0, 12) }),
          )
        }
        empty="This is their only image so far."
      />
    </article>
  );
}

export function ImagePage() {
  const id = useSearchParams().get("id") ?? "";
  const valid = UUID.test(id);
  const image = useLoad(valid ? () => call(api.GET("/api/images/{id}", { params: { path: { id } } })) : null, id);
  if (!valid) {
    return (
      <EmptyState title="This link does not name an image" actions={<Link className="button" href="/">Search images</Link>}>
        <p>Check the address, or search for the image by its words.</p>
      </EmptyState>
    );
  }
  if (image.status === "loading") {
    return (
      <div className="two-col">
        <div className="skeleton" style={{ aspectRatio: "3 / 2" }} />
        <LinesSkeleton lines={6} />
      </div>
    );
  }
  if (image.status === "error") return <ErrorState error={image.error} retry={image.reload} page />;
  return <Detail image={image.data} />;
}
