"""Typed keys of the application and request state (aiohttp `AppKey` / `RequestKey`)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from neuedit.runtime.editor import Editor

from neuedit.server.batching import Batcher, Gate
from neuedit.server.config import ServerConfig


@dataclass
class Runtime:
    """The little mutable state of a running app."""
    draining: bool = False  # set when shutdown begins; /healthz then answers 503
    web: str | None = None  # /web.json's body, built at its first request (neuedit.server.site)


CONFIG = web.AppKey("config", ServerConfig)
RUNTIME = web.AppKey("runtime", Runtime)
ENGINES = web.AppKey("engines", dict[str, Editor])
GATE = web.AppKey("gate", Gate)
BATCHER = web.AppKey("batcher", Batcher)
INFER_POOL = web.AppKey("infer_pool", ThreadPoolExecutor)
DECODE_POOL = web.AppKey("decode_pool", ThreadPoolExecutor)
STATIC = web.AppKey("static", Path)  # the web client's folder
INFO = web.RequestKey("info", str)  # what the access log adds to a line: model, operation, batch size
