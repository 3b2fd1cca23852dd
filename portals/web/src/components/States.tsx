"use client";
import type { ReactNode } from "react";
import { ApiProblem, messageOf } from "@/lib/api";
import { signIn } from "@/lib/auth";

export function ErrorState({
  error,
  retry,
  title,
  page = false,
}: {
  error: unknown;
  retry?: () => void;
  title?: string;
  page?: boolean; // the whole page failed: its heading is the page's h1
}) {
  const status = error instanceof ApiProblem ? error.status : 0;
  const heading =
    title ??
    (status === 401
      ? "Please sign in"
      : status === 403
        ? "Not available to you"
        : status === 404
          ? "Not found"
          : status === 0
            ? "You seem to be offline"
            : "That did not work");
  return (
    <div className="state error" role="alert">
      {page ? <h1 style={{ fontSize: "1.4rem" }}>{heading}</h1> : <h2>{heading}</h2>}
      <p>{messageOf(error)}</p>
      <div className="row">
        {status === 401 && (
          <button type="button" className="button" onClick={() => void signIn()}>
            Sign in
          </button>
        )}
        {retry && status !== 401 && status !== 403 && (
          <button type="button" className="button secondary" onClick={retry}>
            Try again
          </button>
        )}
      </div>
    </div>
  );
}

export function EmptyState({ title, children, actions }: { title: string; children?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="state">
      <h2>{title}</h2>
      {children}
      {actions && <div className="row">{actions}</div>}
    </div>
  );
}

export function LinesSkeleton({ lines = 3 }: { lines?: number }) {
  return (
    <div aria-busy="true" aria-label="Loading">
      {Array.from({ length: lines }, (_, i) => (
        <div key={i} className="skeleton skeleton-line" style={{ width: `${90 - i * 15}%` }} />
      ))}
    </div>
  );
}
