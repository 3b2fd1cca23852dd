"use client";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { EmptyState } from "../States";
import { DetailsEditor } from "./DetailsEditor";

/** The editor for the photo named by ?id= (static pages take their ids from the query string). */
export function EditImage() {
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <EmptyState
        title="No photo chosen"
        actions={
          <Link className="button" href="/contributor/portfolio/">
            Open your portfolio
          </Link>
        }
      >
        <p>Pick a photo in your portfolio, or its Edit details button in the upload list, to edit its details.</p>
      </EmptyState>
    );
  }
  return <DetailsEditor id={id} />;
}
