"""`python -m devhost start | token | settings-sample | stripe-standin`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shared.config import ConfigError

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Local Azure Functions host for the marketplace.")

ROLES = ("buyer", "contributor", "admin")


@cli.command()
def start(
    port: Annotated[int | None, typer.Option(help="HTTP port (default: DEVHOST_PORT, 7071)")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    without: Annotated[
        list[str] | None,
        typer.Option(
            "--without",
            help="Leave out the functions whose names match (fnmatch; repeat for several), e.g. "
            "--without process_uploaded_image to measure ingestion alone; their messages wait on the bus",
        ),
    ] = None,
) -> None:
    """Start Azurite, embedded Postgres, the bus and every function of function_app.py. Ctrl-C stops all."""
    from shared.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before the imports below start threads (numpy's, ONNX Runtime's)
    from devhost.host import serve

    try:
        serve(port=port, host=host, without=without or ())
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@cli.command()
def token(
    role: Annotated[list[str], typer.Option("--role", help="buyer, contributor or admin; repeat for several")],
    sub: Annotated[str, typer.Option(help="Subject (user id)")] = "dev-user",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 8 * 3600,
) -> None:
    """Print a bearer token from the local issuer that the local API accepts."""
    unknown = [r for r in role if r not in ROLES]
    if unknown:
        typer.echo(f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    from devhost.settings_file import load_into_environment
    from shared.auth.local_issuer import LocalIssuer
    from shared.config import get_settings

    load_into_environment()
    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    issuer = LocalIssuer.from_settings(settings)
    typer.echo(issuer.issue(sub=sub, roles=role, ttl=ttl))


@cli.command("stripe-standin")
def stripe_standin(
    port: Annotated[int | None, typer.Option(help="Port (default: STRIPE_STANDIN_PORT, 12111; 0 = any)")] = None,
    webhook_url: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook-url",
            help="Where to deliver webhooks; repeat for several "
            "(default: http://127.0.0.1:<DEVHOST_PORT>/api/webhooks/stripe)",
        ),
    ] = None,
    connect_webhook_url: Annotated[
        list[str] | None,
        typer.Option(
            "--connect-webhook-url",
            help="Where to deliver connected accounts' events (account.updated); repeat for several "
            "(default: http://127.0.0.1:<DEVHOST_PORT>/api/webhooks/stripe-connect)",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Run only the local Stripe stand-in (devhost start runs it too), e.g. to try the app's Stripe calls."""
    import signal
    import threading

    from devhost.settings_file import load_into_environment
    from devhost.stripe_standin import StripeStandin
    from shared.config import get_settings

    load_into_environment()
    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    standin = StripeStandin(
        secret_key=settings.STRIPE_SECRET_KEY,
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        webhook_urls=webhook_url or [f"http://127.0.0.1:{settings.DEVHOST_PORT}/api/webhooks/stripe"],
        connect_webhook_secret=settings.STRIPE_CONNECT_WEBHOOK_SECRET,
        connect_webhook_urls=connect_webhook_url
        or [f"http://127.0.0.1:{settings.DEVHOST_PORT}/api/webhooks/stripe-connect"],
        host=host,
        port=settings.STRIPE_STANDIN_PORT if port is None else port,
    )
    try:
        base = standin.start()
    except RuntimeError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Stripe stand-in on {base} (STRIPE_API_BASE); webhooks to {', '.join(standin.webhook_urls)}; "
        f"Connect webhooks to {', '.join(standin.connect_webhook_urls)}"
    )
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    standin.stop()


@cli.command()
def openapi() -> None:
    """Print the API's OpenAPI document, built in-process from function_app.py (no server needed)."""
    import json

    import function_app  # noqa: F401  (registers every route)
    from shared.http import build_openapi

    sys.stdout.write(json.dumps(build_openapi(title="Stock marketplace API", version="1"), indent=2) + "\n")


@cli.command("portal-size")
def portal_size(
    pages: Annotated[list[str] | None, typer.Argument(help="Exported pages (default: the search page)")] = None,
) -> None:
    """Print the first-load JavaScript (gzipped) of exported portal pages; build them first (devhost start)."""
    from devhost.portals import first_load_js

    for page in pages or ["index.html"]:
        sizes = first_load_js(page)
        raw, gz = sum(r for r, _ in sizes.values()), sum(g for _, g in sizes.values())
        typer.echo(f"{page}: {len(sizes)} scripts, {raw / 1000:.1f} kB, {gz / 1000:.1f} kB gzipped")


@cli.command("settings-sample")
def settings_sample() -> None:
    """Print local.settings.sample.json generated from the settings model."""
    from devhost.settings_file import render_sample

    sys.stdout.write(render_sample())


if __name__ == "__main__":
    cli()
