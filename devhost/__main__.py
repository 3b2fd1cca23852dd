"""`python -m devhost start | token | settings-sample`."""

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
) -> None:
    """Start Azurite, embedded Postgres, the bus and every function of function_app.py. Ctrl-C stops all."""
    from devhost.host import serve

    try:
        serve(port=port, host=host)
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


@cli.command("settings-sample")
def settings_sample() -> None:
    """Print local.settings.sample.json generated from the settings model."""
    from devhost.settings_file import render_sample

    sys.stdout.write(render_sample())


if __name__ == "__main__":
    cli()
