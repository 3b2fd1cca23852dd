import Link from "next/link";

export default function NotFound() {
  return (
    <div className="state">
      <h1>Page not found</h1>
      <p>The address may be mistyped, or the page has moved.</p>
      <div className="row">
        <Link className="button" href="/">
          Search images
        </Link>
      </div>
    </div>
  );
}
