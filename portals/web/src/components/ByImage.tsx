"use client";
import { useRef, useState, type DragEvent } from "react";

const TYPES = ["image/jpeg", "image/png", "image/webp", "image/tiff"];

/** Drop (or choose) a picture to find similar images; the picture is sent once and never stored. */
export function ByImage({ onPicture, busy }: { onPicture: (file: File) => void; busy?: boolean }) {
  const [over, setOver] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  function take(file: File | undefined) {
    if (!file) return;
    if (!TYPES.includes(file.type)) {
      setProblem(`“${file.name}” is not a JPEG, PNG, WebP or TIFF picture.`);
      return;
    }
    setProblem(null);
    onPicture(file);
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setOver(false);
    take(event.dataTransfer.files[0]);
  }

  return (
    <div
      className={`dropzone${over ? " over" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
      data-testid="by-image"
    >
      <span>Search by image: drop a picture here, or </span>
      <button type="button" className="link-button" onClick={() => input.current?.click()} disabled={busy}>
        choose a file
      </button>
      <input
        ref={input}
        type="file"
        accept={TYPES.join(",")}
        className="visually-hidden"
        aria-label="Choose a picture to search by"
        tabIndex={-1}
        onChange={(e) => take(e.target.files?.[0])}
      />
      {problem && (
        <p className="notice error" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}
