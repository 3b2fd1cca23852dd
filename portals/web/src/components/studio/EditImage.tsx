"use client";
import { useSearchParams } from "next/navigation";
import { EmptyState } from "../States";
import { DetailsEditor } from "./DetailsEditor";

/** The editor for the photo named by ?id= (static pages take their ids from the query string). */
export function EditImage() {
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <EmptyState title="No photo chosen">
        <p>Open a photo from your portfolio to edit its details.</p>
      </EmptyState>
    );
  }
  return <DetailsEditor id={id} />;
}
