"""Runs the whole marketplace on one machine: Azurite, embedded Postgres, the bus, and every function.

Start order: settings -> Azurite -> runtime (Postgres, migrations, pool, bus, storage) -> triggers ->
HTTP. Stop order is the reverse, on Ctrl-C or SIGTERM, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import signal
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
import uvicorn

from devhost.app_loader import LoadedApp, load_app
from devhost.http_server import FunctionsAsgiApp
from devhost.local_oidc import LocalOidcApp
from devhost.portals import PortalBuild, PortalSite
from devhost.settings_file import load_into_environment
from devhost.stripe_standin import StripeStandin
from devhost.triggers import BlobWatcher, TimerDriver, resolve_schedule, topic_consumer
from shared.auth.local_oidc import LocalOidcProvider
from shared.config import PROJECT_ROOT, Settings, get_settings
from shared.runtime import Runtime, build_runtime, set_runtime
from shared.storage.azurite import AzuriteServer
from shared.storage.port import THUMBNAILS
from shared.telemetry import configure_telemetry

log = structlog.get_logger()

_DEV_STORAGE = "usedevelopmentstorage=true"
SHUTDOWN_GRACE_SECONDS = 20.0


def _needs_stripe_standin(settings: Settings) -> bool:
    """Locally with no Stripe API base: devhost provides the stand-in (set STRIPE_API_BASE to use Stripe)."""
    return settings.APP_ENV == "local" and not settings.STRIPE_API_BASE


def uses_local_issuer(settings: Settings) -> bool:
    """Tokens come from the local issuer (no AUTH_JWKS_URL): devhost serves its OIDC endpoints at /auth."""
    return settings.APP_ENV != "azure" and not settings.AUTH_JWKS_URL


def browser_origins(settings: Settings, port: int | None) -> list[str]:
    """Origins the portals are opened from locally: the public base URL and devhost's own address."""
    port = port or settings.DEVHOST_PORT
    return [settings.PUBLIC_BASE_URL.rstrip("/"), f"http://localhost:{port}", f"http://127.0.0.1:{port}"]


def _needs_azurite(settings: Settings) -> bool:
    """No storage configured, or the emulator shorthand: devhost provides Azurite."""
    value = (settings.STORAGE_CONNECTION_STRING or "").replace(" ", "").lower()
    return value == _DEV_STORAGE or (value == "" and not settings.STORAGE_ACCOUNT_URL)


class DevHost:
    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1", without: Sequence[str] = ()) -> None:
        self.port = port
        self.host = host
        self.without = tuple(without)
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def run(self) -> None:
        started = time.perf_counter()
        source = load_into_environment()
        get_settings.cache_clear()
        settings = get_settings()  # validates every setting before anything starts
        configure_telemetry(settings, service="devhost", own_log_handler=True)
        log.info("settings loaded", source=str(source))
        # The portal build (when their sources changed) overlaps the rest of the start-up.
        portal_build = PortalBuild().start() if settings.DEVHOST_PORTALS else None
        azurite = None
        stripe_standin = None
        runtime = None
        tasks = self._tasks
        try:
            if _needs_azurite(settings):
                azurite = AzuriteServer(
                    settings.VAR_DIR / "azurite", blob_port=settings.AZURITE_BLOB_PORT, persist=True
                )
                # Started from the main thread on purpose: the child's parent-death signal is tied to the
                # thread that spawned it, so Azurite dies with devhost even on kill -9.
                azurite.start()
                os.environ["STORAGE_CONNECTION_STRING"] = azurite.connection_string
                get_settings.cache_clear()
                settings = get_settings()
            if _needs_stripe_standin(settings):
                webhook_host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
                webhook_url = f"http://{webhook_host}:{self.port or settings.DEVHOST_PORT}/api/webhooks/stripe"
                # Connected accounts' events (account.updated) go to their own endpoint, as Stripe's Connect
                # endpoints do, signed with STRIPE_CONNECT_WEBHOOK_SECRET.
                stripe_standin = StripeStandin.from_settings(
                    settings, webhook_url=webhook_url, connect_webhook_url=f"{webhook_url}-connect"
                )
                os.environ["STRIPE_API_BASE"] = stripe_standin.start(any_port_if_taken=True)
                get_settings.cache_clear()
                settings = get_settings()
                log.info("stripe stand-in ready", api_base=settings.STRIPE_API_BASE, webhooks_to=webhook_url)
            runtime = await build_runtime(settings)
            set_runtime(runtime)
            runtime.start_outbox_relay()
            await runtime.storage.ensure_containers()
            if azurite is not None:
                # The portals PUT uploads straight to Azurite from the devhost origin (infra/ does it in Azure).
                await runtime.storage.allow_browser_uploads(browser_origins(settings, self.port))
            loaded = load_app()
            if self.without:
                loaded = without_functions(loaded, self.without)
                log.info("devhost leaves functions out", patterns=list(self.without))

            concurrency = host_concurrency()
            for fn in loaded.topics:
                consumer = topic_consumer(fn, runtime.bus, concurrency.max_concurrent_calls)
                tasks.append(asyncio.create_task(consumer.run(self.stop_event)))
            for fn in loaded.blobs:
                watcher = BlobWatcher(fn, runtime.storage, max_parallel=concurrency.blob_parallelism)
                tasks.append(asyncio.create_task(watcher.run(self.stop_event)))
            for fn in loaded.timers:
                driver = TimerDriver(fn, resolve_schedule(fn.schedule))
                tasks.append(asyncio.create_task(driver.run(self.stop_event)))

            port = self.port or settings.DEVHOST_PORT
            app = FunctionsAsgiApp(loaded.http, site=_portal_site(settings, runtime, portal_build))
            if uses_local_issuer(settings):
                app = LocalOidcApp(LocalOidcProvider.from_settings(settings), fallback=app)
            config = uvicorn.Config(
                app,
                host=self.host,
                port=port,
                log_level="warning",  # http "auto": httptools (requirements.txt) when installed, else h11
                lifespan="off",
                proxy_headers=False,  # the peer address is the client: devhost plays the front end itself
                timeout_graceful_shutdown=10,
            )
            server = uvicorn.Server(config)
            server.install_signal_handlers = lambda: None  # we own the signals, see below
            serve = asyncio.create_task(server.serve())
            while not server.started:
                if serve.done():
                    await serve  # raises the bind error
                    raise RuntimeError("HTTP server stopped during start-up")
                await asyncio.sleep(0.05)
            if portal_build is not None:
                await asyncio.to_thread(portal_build.wait)
            log.info(
                "devhost ready",
                url=f"http://{'localhost' if self.host == '127.0.0.1' else self.host}:{port}/",
                api=f"http://{self.host}:{port}/api/health",
                http_functions=len(loaded.http),
                topic_functions=len(loaded.topics),
                blob_functions=len(loaded.blobs),
                timer_functions=len(loaded.timers),
                start_seconds=round(time.perf_counter() - started, 2),
            )
            await self.stop_event.wait()
            log.info("devhost stopping")
            server.should_exit = True
            await serve
        finally:
            self.stop_event.set()
            if tasks:
                # In-flight handlers get time to finish; a second Ctrl-C (or the deadline) cancels them.
                _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if runtime is not None:
                set_runtime(None)
                await runtime.close()
            if stripe_standin is not None:
                await asyncio.to_thread(stripe_standin.stop)
            if azurite is not None:
                await asyncio.to_thread(azurite.stop)
            log.info("devhost stopped")

    def request_stop(self) -> None:
        if self.stop_event.is_set():  # second Ctrl-C: stop waiting for in-flight work
            log.warning("devhost stopping now; cancelling in-flight work")
            for task in self._tasks:
                task.cancel()
        self.stop_event.set()


def _portal_site(settings: Settings, runtime: Runtime, build: PortalBuild | None) -> PortalSite | None:
    """The portals (built in the background when their sources changed); public renditions come from Azurite here."""
    if not settings.DEVHOST_PORTALS:
        return None
    parts = urlsplit(runtime.storage.public_url(THUMBNAILS, "x"))
    return PortalSite(settings, build, blob_origin=f"{parts.scheme}://{parts.netloc}")


def without_functions(loaded: LoadedApp, patterns: Sequence[str]) -> LoadedApp:
    """The app less the functions whose names match any of `patterns` (fnmatch), e.g. to measure one stage."""

    def keep(fns: list) -> list:
        return [fn for fn in fns if not any(fnmatch.fnmatchcase(fn.name, p) for p in patterns)]

    return LoadedApp(loaded.app, keep(loaded.http), keep(loaded.topics), keep(loaded.blobs), keep(loaded.timers))


def serve(port: int | None = None, host: str = "127.0.0.1", without: Sequence[str] = ()) -> None:
    async def main() -> None:
        devhost = DevHost(port=port, host=host, without=without)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, devhost.request_stop)
        await devhost.run()

    run_event_loop(main())


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (requirements.txt): its loop and socket transports are C, so every request costs
    the HTTP path less CPU (bench/search.py); asyncio's own loop otherwise, which behaves the same."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


@dataclass(frozen=True)
class HostConcurrency:
    max_concurrent_calls: int = 16
    blob_parallelism: int = 8


def host_concurrency(path: Path = PROJECT_ROOT / "host.json") -> HostConcurrency:
    """The concurrency host.json gives the Functions host, so devhost runs triggers as Azure would."""
    extensions = json.loads(path.read_text()).get("extensions", {})
    defaults = HostConcurrency()
    return HostConcurrency(
        max_concurrent_calls=int(
            extensions.get("serviceBus", {}).get("maxConcurrentCalls", defaults.max_concurrent_calls)
        ),
        blob_parallelism=int(extensions.get("blobs", {}).get("maxDegreeOfParallelism", defaults.blob_parallelism)),
    )
