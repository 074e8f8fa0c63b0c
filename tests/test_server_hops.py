"""Where the server's work runs: per generate/edit request one decode-pool job parses,
validates and decodes the body, and one inference-pool job runs the engine and encodes the
reply (PNG, base64, JSON). The event loop neither decodes nor serialises."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from neuedit.server import codec
from neuedit.server.app import create_app
from neuedit.server.batching import Batcher
from neuedit.server.config import ServerConfig
from neuedit.server.keys import DECODE_POOL, INFER_POOL

DECODERS = ("parse_json", "parse_state", "b64_bytes", "decode_sketch", "decode_photo")
ENCODERS = ("encode_png", "state_json")


def b64_png(arr: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


SKETCH = b64_png(np.pad(np.full((6, 6, 4), 255, np.uint8), ((5, 5), (5, 5), (0, 0))))
PHOTO = b64_png(np.random.default_rng(0).integers(0, 255, (20, 28, 3), dtype=np.uint8), "JPEG")
STATE = {"z": [0.1] * 16, "c": [0.0] * 25}
REQUESTS = [  # (path, body, the decoders it must use)
    ("/api/generate", {"model": "tiny", "seed": 3}, {"parse_json"}),
    ("/api/edit", {"model": "tiny", "state": STATE, "sketch": SKETCH, "method": "two-stage"},
     {"parse_json", "parse_state", "b64_bytes", "decode_sketch"}),
    ("/api/edit", {"model": "tiny", "image": PHOTO, "sketch": SKETCH},
     {"parse_json", "b64_bytes", "decode_sketch", "decode_photo"}),
    ("/api/edit", {"model": "tiny", "state": STATE, "sketch": SKETCH, "method": "latent", "steps": 2,
                   "optimizer": "adam"}, {"parse_json", "parse_state", "b64_bytes", "decode_sketch"}),
]


@pytest_asyncio.fixture
async def client(aiohttp_client, tiny_exported, tiny_exported_empty):
    cfg = ServerConfig(bundles=(str(tiny_exported.path), str(tiny_exported_empty.path)), inference_threads=1,
                       decode_threads=1, threads=1, batch_window_ms=0.0)
    return await aiohttp_client(create_app(cfg))


class Recorder:
    """Which thread called what: codec functions, JSON serialisation of a reply, pool jobs."""

    def __init__(self, monkeypatch, app: web.Application):
        self.calls: list[tuple[str, str]] = []
        for name in DECODERS + ENCODERS:
            monkeypatch.setattr(codec, name, self._wrap(name, getattr(codec, name)))
        dumps, json_response = json.dumps, web.json_response

        def dumps_spy(obj, *a, **k):
            if isinstance(obj, dict) and "image" in obj:  # a reply, not an error or the test's own body
                self._note("serialise")
            return dumps(obj, *a, **k)

        def json_response_spy(data=None, *a, **k):
            if isinstance(data, dict) and "image" in data:
                self._note("serialise")
            return json_response(data, *a, **k)
        monkeypatch.setattr(json, "dumps", dumps_spy)
        monkeypatch.setattr(web, "json_response", json_response_spy)
        for key, label in ((DECODE_POOL, "decode job"), (INFER_POOL, "infer job")):
            pool = app[key]
            monkeypatch.setattr(pool, "submit", self._wrap(label, pool.submit))

    def _note(self, what: str) -> None:
        self.calls.append((what, threading.current_thread().name))

    def _wrap(self, what: str, fn):
        def spy(*a, **k):
            self._note(what)
            return fn(*a, **k)
        return spy

    def threads(self, what: str) -> set[str]:
        return {t.rsplit("_", 1)[0] for w, t in self.calls if w == what}

    def count(self, what: str) -> int:
        return sum(w == what for w, _ in self.calls)


@pytest.mark.asyncio
@pytest.mark.parametrize("path,body,decoders", REQUESTS, ids=["generate", "two-stage", "photo", "latent"])
async def test_one_decode_job_and_one_inference_job_per_request(client, monkeypatch, path, body, decoders):
    data = json.dumps(body)
    rec = Recorder(monkeypatch, client.app)
    r = await client.post(path, data=data)
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    out = json.loads(await r.read())
    assert out["model"] == "tiny" and out["image"]
    assert (rec.count("decode job"), rec.count("infer job")) == (1, 1)
    for name in decoders:
        assert rec.threads(name) == {"neuedit-decode"}, (name, rec.calls)
    for name in ("encode_png", "serialise") + (("state_json",) if "state" in out else ()):
        assert rec.threads(name) == {"neuedit-infer"}, (name, rec.calls)
    assert rec.count("serialise") == 1


@pytest.mark.asyncio
async def test_bad_input_is_refused_from_the_decode_job(client, monkeypatch):
    rec = Recorder(monkeypatch, client.app)
    r = await client.post("/api/edit", data=json.dumps({"model": "tiny", "state": STATE, "sketch": "not base64!"}))
    assert r.status == 400 and (await r.json())["error"]["code"] == "bad_base64"
    assert rec.threads("b64_bytes") == {"neuedit-decode"}
    assert (rec.count("decode job"), rec.count("infer job")) == (1, 0)


@pytest.mark.asyncio
async def test_batcher_finishes_each_row_in_the_batched_job():
    """`finish` runs after the batched call in the same executor job; one failing `finish`
    fails only its own request."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="hops-infer")
    jobs, where = [], []
    submit = pool.submit
    pool.submit = lambda *a, **k: jobs.append(1) or submit(*a, **k)

    def rows(payloads):
        where.append(threading.current_thread().name)
        return [p * 2 for p in payloads]

    def finish(result):
        where.append(threading.current_thread().name)
        if result == 4:
            raise ValueError("cannot encode")
        return str(result)
    try:
        batcher = Batcher(pool, concurrency=1, window_ms=500.0, max_batch=3)
        outs = await asyncio.gather(*[batcher.submit("k", rows, p, finish) for p in (1, 2, 3)])
    finally:
        pool.shutdown(wait=True)
    assert outs[0] == ("2", 3) and outs[2] == ("6", 3)
    assert isinstance(outs[1][0], ValueError) and outs[1][1] == 3
    assert len(jobs) == 1 and len(where) == 4 and all(t.startswith("hops-infer") for t in where)
    assert (batcher.stats.calls, batcher.stats.rows) == (1, 3)
