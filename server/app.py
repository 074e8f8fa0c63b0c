"""The application factory: `create_app(cfg)` builds the aiohttp app; engines and thread
pools open in a cleanup context, so nothing happens at import and tests build the same app
around a tiny bundle."""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from neuedit.runtime.editor import Editor

from neuedit.server import api, site
from neuedit.server.batching import Batcher, Gate
from neuedit.server.config import ServerConfig
from neuedit.server.errors import error_middleware
from neuedit.server.headers import CSP, ISOLATION
from neuedit.server.keys import BATCHER, CONFIG, DECODE_POOL, ENGINES, GATE, INFER_POOL, INFO, RUNTIME, STATIC, Runtime
from neuedit.errors import UsageError

log = logging.getLogger("neuedit.server")

STATIC_DIR = site.STATIC_DIR


def create_app(cfg: ServerConfig) -> web.Application:
    app = web.Application(client_max_size=cfg.max_body_bytes, middlewares=[error_middleware])
    app[CONFIG] = cfg
    app[RUNTIME] = Runtime()
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_begin_draining)
    app.on_response_prepare.append(_headers)
    static = Path(cfg.static_dir).resolve() if cfg.static_dir else STATIC_DIR
    app[STATIC] = static

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static / "index.html")

    async def service_worker(request: web.Request) -> web.FileResponse:
        # at the root: its scope is the whole page
        return web.FileResponse(static / "sw.js", headers={"Content-Type": "text/javascript"})

    app.router.add_get("/", index)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_get("/api/models", api.models)
    app.router.add_post("/api/generate", api.generate)
    app.router.add_post("/api/edit", api.edit)
    app.router.add_post("/api/project", api.project)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/openapi.json", api.openapi)
    app.router.add_get("/web.json", site.web_manifest)
    app.router.add_get("/models/{model}/{file}", site.graph)
    app.router.add_static("/static/", static, follow_symlinks=False, show_index=False)
    return app


async def _resources(app: web.Application):
    """Load every engine (warmed up with one call), open the thread pools and the batcher;
    on the way out let queued work finish, then close the pools."""
    cfg = app[CONFIG]
    loop = asyncio.get_running_loop()
    infer = ThreadPoolExecutor(cfg.inference_threads, thread_name_prefix="neuedit-infer")
    decode = ThreadPoolExecutor(cfg.decode_threads, thread_name_prefix="neuedit-decode")
    try:
        engines: dict[str, Editor] = {}
        for path in cfg.bundles:
            eng = await loop.run_in_executor(infer, partial(_load, path, cfg))
            if eng.name in engines:
                raise UsageError(f"two bundles are named {eng.name!r} ({engines[eng.name].bundle.path} and {path}); "
                                 "give each a different name in bundle.json")
            engines[eng.name] = eng
            log.info("model %s: %dx%d, z %d, c %d, methods %s, provider %s (%s)", eng.name, eng.resolution,
                     eng.resolution, eng.z_dim, eng.c_dim, "/".join(eng.methods), eng.provider, path)
        app[ENGINES] = engines
        app[INFER_POOL] = infer
        app[DECODE_POOL] = decode
        app[GATE] = Gate(cfg.queue_size, cfg.retry_after_s)
        app[BATCHER] = Batcher(infer, cfg.inference_threads, cfg.batch_window_ms, cfg.max_batch, cfg.batching)
        yield
        await app[BATCHER].close()
    finally:
        infer.shutdown(wait=True)
        decode.shutdown(wait=True)


def _load(path: str, cfg: ServerConfig) -> Editor:
    eng = Editor.load(path, providers=cfg.providers, threads=cfg.threads)
    eng.generate(np.zeros((1, eng.z_dim), np.float32), np.zeros((1, eng.c_dim), np.float32))  # warm-up
    return eng


async def _begin_draining(app: web.Application) -> None:
    # aiohttp has stopped accepting connections and now waits for requests in flight.
    app[RUNTIME].draining = True
    log.info("shutting down: finishing %d request(s) in flight", app[GATE].inflight if GATE in app else 0)


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if not request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        for k, v in ISOLATION.items():
            response.headers.setdefault(k, v)


class AccessLogger(AbstractAccessLogger):
    """One line per request: client, request line, status, bytes, latency, and for inference
    the model, operation and the batch it ran in."""

    def log(self, request, response, time: float) -> None:
        info = request.get(INFO, "")
        self.logger.info('%s "%s %s" %d %d %.1fms%s', request.remote, request.method, request.path_qs,
                         response.status, response.body_length, time * 1000.0, f" {info}" if info else "")
