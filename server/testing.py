"""A real server on a free localhost port in a background thread, for browser tests,
property tests, benchmarks and screenshots (not used by the server itself)."""
from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from neuedit.server.app import AccessLogger, create_app
from neuedit.server.config import ServerConfig

CHROMIUM = "/usr/bin/chromium"  # Debian's, driven through Playwright
# as root in a sandbox with no network beyond loopback: without the background-networking flags
# Chromium keeps trying (and failing) to reach its own services
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def mouse_stroke(page, points, steps: int = 6) -> None:
    """A mouse stroke over the page's canvas through `points`, (x, y) fractions of the canvas."""
    box = page.locator("#strokes").bounding_box()
    xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


class ServerThread:
    """`with ServerThread(cfg) as s: urlopen(s.url + "healthz")` — the app runs in its own
    event loop in a daemon thread; leaving the block shuts it down gracefully."""

    def __init__(self, cfg: ServerConfig, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 60.0):
        self.cfg, self.host, self.port, self.start_timeout = cfg, host, port, start_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="neuedit-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise TimeoutError(f"server did not start within {self.start_timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001  reported to the thread that waits in __enter__
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(create_app(self.cfg), access_log_class=AccessLogger)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


class StaticSite:
    """`with StaticSite(folder) as s: s.url` — a plain static file server (Python's http.server)
    over a folder, like any static host serving `neuedit export-web`'s site; `isolated` adds the
    cross-origin isolation headers (server.headers.ISOLATION) that let the page's WebAssembly use
    threads. `requests` lists the paths asked for."""

    def __init__(self, folder, isolated: bool = False, host: str = "127.0.0.1"):
        import functools
        import http.server

        from neuedit.server.headers import ISOLATION
        self.requests: list[str] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def end_headers(self):
                if isolated:
                    for k, v in ISOLATION.items():
                        self.send_header(k, v)
                super().end_headers()

            def log_message(self, *args):
                log.append(self.path)

        self._httpd = http.server.ThreadingHTTPServer((host, 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://{host}:{self._httpd.server_port}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="neuedit-static", daemon=True)

    def __enter__(self) -> "StaticSite":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
