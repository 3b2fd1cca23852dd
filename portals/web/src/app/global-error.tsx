"use client";

// Shown only if the root layout itself fails; kept tiny because every page ships it.
export default function GlobalError({ reset }: { error: Error; reset: () => void }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", padding: 32 }}>
        <h1>This page failed to load</h1>
        <p>Reload the page, or come back in a minute.</p>
        <button type="button" onClick={reset}>
          Try again
        </button>
      </body>
    </html>
  );
}
