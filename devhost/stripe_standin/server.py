"""Runs the stand-in on its own thread and event loop.

Its own loop on purpose: the app may call the (synchronous) Stripe SDK from an async handler, which
blocks that handler's loop; a stand-in sharing that loop could then never answer. The thread is a
daemon, so the stand-in never outlives the process that started it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn

from devhost.stripe_standin.app import create_app
from devhost.stripe_standin.webhooks import DEFAULT_RETRY_DELAYS

log = structlog.get_logger("stripe_standin")


class StripeStandin:
    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        webhook_urls: Sequence[str] = (),
        connect_webhook_secret: str | None = None,
        connect_webhook_urls: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        state_path: Path | None = None,
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.webhook_urls = list(webhook_urls)
        self.connect_webhook_secret = connect_webhook_secret
        self.connect_webhook_urls = list(connect_webhook_urls)
        self.host = host
        self.port = port
        self.retry_delays = retry_delays
        self.state_path = state_path
        self.app = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings, *, webhook_url: str, connect_webhook_url: str | None = None, host: str = "127.0.0.1"
    ) -> StripeStandin:
        return cls(
            secret_key=settings.STRIPE_SECRET_KEY,
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
            webhook_urls=[webhook_url],
            connect_webhook_secret=settings.STRIPE_CONNECT_WEBHOOK_SECRET,
            connect_webhook_urls=[connect_webhook_url] if connect_webhook_url else [],
            host=host,
            port=settings.STRIPE_STANDIN_PORT,
            state_path=settings.VAR_DIR / "stripe_standin" / "state.json",
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0, *, any_port_if_taken: bool = False) -> str:
        """Bind (port 0 = any free port), serve, and return the API base URL once it answers.

        `any_port_if_taken`: a busy port is not fatal (several devhosts side by side, as in the e2e tests);
        the app learns the actual URL from the return value either way.
        """
        try:
            sock = self._bind(self.port)
        except RuntimeError:
            if not any_port_if_taken or self.port == 0:
                raise
            log.warning("stripe stand-in port taken; using a free one", port=self.port)
            sock = self._bind(0)
        self.port = sock.getsockname()[1]
        self.app = create_app(
            secret_key=self.secret_key,
            webhook_secret=self.webhook_secret,
            webhook_urls=self.webhook_urls,
            connect_webhook_secret=self.connect_webhook_secret,
            connect_webhook_urls=self.connect_webhook_urls,
            public_url=self.base_url,
            retry_delays=self.retry_delays,
            state_path=self.state_path,
        )
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        self._server = server
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported by start(), which waits for this thread
                failure.append(exc)
                raise

        self._thread = threading.Thread(target=serve, name="stripe-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                if failure:
                    why = f": {failure[0]!r}"
                elif not self._thread.is_alive():
                    why = ": it exited during start-up (its error is logged above)"
                else:
                    why = f" within {timeout:.0f} s"
                raise RuntimeError(f"the Stripe stand-in did not start{why}")
            time.sleep(0.02)
        return self.base_url

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
            # Listen now: with SO_REUSEADDR two processes can both bind a port, and only listen()
            # tells which one got it, so a taken port is found here, where a free one can be chosen.
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            raise RuntimeError(
                f"the Stripe stand-in cannot listen on {self.host}:{port} ({exc.strerror}); "
                "set STRIPE_STANDIN_PORT to a free port, or 0 for any"
            ) from None
        return sock

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None

    def __enter__(self) -> StripeStandin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
