"use client";
import Link from "next/link";
import { useState } from "react";
import { messageOf, type Schemas } from "@/lib/api";
import { downloadLicensed } from "@/lib/download";
import { LICENSE_INFO } from "@/lib/licenses";
import { formatDate } from "@/lib/money";

type Licence = Schemas["LicenseOut"];

function DownloadButton({ licence }: { licence: Licence }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!licence.usable) return <span className="status refunded">Revoked</span>;
  return (
    <span className="stack" style={{ display: "inline-block" }}>
      <button
        type="button"
        className="button small"
        disabled={busy}
        aria-label={`Download ${licence.title}`}
        onClick={() => {
          setBusy(true);
          setError(null);
          downloadLicensed(licence.download_url)
            .catch((err: unknown) => setError(messageOf(err)))
            .finally(() => setBusy(false));
        }}
      >
        {busy ? "Preparing…" : "Download"}
      </button>
      {error && (
        <span className="notice error" role="alert" style={{ display: "block" }}>
          {error}
        </span>
      )}
    </span>
  );
}

/** Licences with their download buttons (the original, through a short-lived link). */
export function LicenceTable({ licences, caption }: { licences: Licence[]; caption: string }) {
  return (
    <table className="table stackable">
      <caption className="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Image</th>
          <th scope="col">Licence</th>
          <th scope="col">Issued</th>
          <th scope="col">Downloads</th>
          <th scope="col">
            <span className="visually-hidden">Download</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {licences.map((licence) => (
          <tr key={licence.id}>
            <td data-label="Image">
              <Link href={`/image/?id=${licence.image_id}`}>{licence.title}</Link>
            </td>
            <td data-label="Licence">{LICENSE_INFO[licence.license_type].name}</td>
            <td data-label="Issued">{formatDate(licence.issued_at)}</td>
            <td data-label="Downloads">{licence.download_count}</td>
            <td data-label="" className="num">
              <DownloadButton licence={licence} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
