"""The aiohttp editing server: every endpoint on a tiny exported bundle, every kind
of bad input answered with a 4xx (and the server still fine afterwards), micro-batching,
back-pressure, static files, the CLI's workers and graceful shutdown."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from neuedit.runtime.bundle import write_meta
from neuedit.data.datasets import to_uint8
from neuedit.data.datasets import image_to_model as resize_image
from neuedit.runtime.editor import Editor
from neuedit.server.app import create_app
from neuedit.server.config import ServerConfig
from neuedit.runtime.sketch import decode_png
from neuedit.runtime.state import EditConfig, EditState

R = 16  # the tiny bundles' resolution


# ---- helpers ---------------------------------------------------------------------------------------------
def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")  # the mode follows the array: L, RGB, RGBA, I;16
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def stroke_rgba(size: int = 64, seed: int = 0) -> np.ndarray:
    """A transparent canvas with a red bar and a black dot, [size, size, 4] uint8."""
    a = np.zeros((size, size, 4), np.uint8)
    s = size // 16
    a[4 * s:7 * s, 2 * s:13 * s] = (230, 40, 40, 255)
    a[10 * s:12 * s, 9 * s:11 * s] = (0, 0, 0, 255)
    return a


SKETCH = b64(png_bytes(stroke_rgba()))


def bomb_png(w: int, h: int) -> bytes:
    """A valid PNG signature and IHDR claiming w x h RGBA pixels, with a tiny IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def photo(size=(40, 24), fmt="JPEG", mode="RGB") -> bytes:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def decode_image(s: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(s))).convert("RGB"))


def config(tiny_exported, tiny_exported_empty, **kw) -> ServerConfig:
    base = dict(bundles=(str(tiny_exported.path), str(tiny_exported_empty.path)), max_body_bytes=256 * 1024,
                max_steps=20, max_sketch_pixels=512 * 512, max_photo_pixels=1024 * 1024, batch_window_ms=1.0,
                inference_threads=1, decode_threads=1, threads=1)
    return ServerConfig(**{**base, **kw})


@pytest.fixture
def cfg(tiny_exported, tiny_exported_empty):
    return config(tiny_exported, tiny_exported_empty)


@pytest_asyncio.fixture
async def client(aiohttp_client, cfg):
    return await aiohttp_client(create_app(cfg))


@pytest.fixture(scope="module")
def engines(tiny_exported, tiny_exported_empty):
    return {"tiny": Editor.load(tiny_exported.path, threads=1), "tiny_empty": Editor.load(tiny_exported_empty.path, threads=1)}


async def post(client, path, body):
    r = await client.post(path, data=body if isinstance(body, bytes) else json.dumps(body))
    return r.status, await r.json()


async def assert_still_serves(client):
    status, out = await post(client, "/api/generate", {"model": "tiny", "seed": 1})
    assert status == 200, out
    return out


# ---- endpoints -------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_models(client, tiny_exported, tiny_exported_empty):
    r = await client.get("/api/models")
    assert r.status == 200
    models = {m["name"]: m for m in (await r.json())["models"]}
    assert set(models) == {"tiny", "tiny_empty"}
    t = models["tiny"]
    assert (t["resolution"], t["z_dim"], t["c_dim"]) == (16, tiny_exported.z_dim, 25)
    assert t["schema"] == tiny_exported.schema.to_dict()
    assert t["methods"] == ["two-stage", "latent"] and t["domain"] == "tiny"
    assert models["tiny_empty"]["c_dim"] == 0 and models["tiny_empty"]["schema"]["groups"] == []


@pytest.mark.asyncio
async def test_healthz_openapi_and_page(client):
    r = await client.get("/healthz")
    h = await r.json()
    assert r.status == 200 and h["status"] == "ok" and h["models"] == ["tiny", "tiny_empty"]
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for route in client.app.router.routes():  # every route except static files is documented
        info = route.resource.get_info()
        if "path" in info:
            assert info["path"] in spec["paths"], info["path"]
            assert route.method.lower() in spec["paths"][info["path"]] or route.method == "HEAD"
    r = await client.get("/")
    page = await r.text()
    assert r.status == 200 and "<canvas" in page and "static/app.js" in page
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    for name, kind in (("app.js", "javascript"), ("style.css", "css")):
        r = await client.get(f"/static/{name}")
        assert r.status == 200 and kind in r.headers["Content-Type"]


@pytest.mark.asyncio
async def test_generate_matches_engine(client, engines):
    status, out = await post(client, "/api/generate", {"model": "tiny", "seed": 7})
    assert status == 200 and out["seed"] == 7 and out["resolution"] == R
    st = EditState.from_dict(out["state"]).validate(engines["tiny"].z_dim, 25)
    img = decode_image(out["image"])
    assert img.shape == (R, R, 3)
    ref = to_uint8(engines["tiny"].generate(st.z, st.c)[0])
    assert np.abs(img.astype(int) - ref).max() <= 1
    # the same seed: the same state; with another c: the same z, that c
    _, again = await post(client, "/api/generate", {"model": "tiny", "seed": 7})
    assert again["state"] == out["state"] and again["image"] == out["image"]
    c = [0.0] * 25
    c[3] = 1.0
    _, other = await post(client, "/api/generate", {"model": "tiny", "seed": 7, "c": c})
    assert other["state"]["z"] == out["state"]["z"] and other["state"]["c"] == c
    # no seed: a fresh random one, reported
    _, r1 = await post(client, "/api/generate", {"model": "tiny"})
    _, r2 = await post(client, "/api/generate", {"model": "tiny"})
    assert r1["seed"] != r2["seed"] and 0 <= r1["seed"] < 2**53
    status, empty = await post(client, "/api/generate", {"model": "tiny_empty", "seed": 1})
    assert status == 200 and empty["state"]["c"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["tiny", "tiny_empty"])
async def test_state_round_trip_matches_engine(client, engines, model):
    """generate -> latent edit (Adam) -> latent edit -> two-stage edit, each equal to the engine
    called directly with the state the client carried."""
    eng = engines[model]
    sketch, mask = decode_png(base64.b64decode(SKETCH), R)
    _, gen = await post(client, "/api/generate", {"model": model, "seed": 11})
    state = EditState.from_dict(gen["state"])
    body = {"model": model, "sketch": SKETCH, "method": "latent", "steps": 3, "optimizer": "adam", "lr": 0.1}
    status, e1 = await post(client, "/api/edit", {**body, "state": gen["state"]})
    assert status == 200, e1
    # the moments, and the state the edit started from (what the paste keeps across calls)
    assert set(e1["state"]) == {"z", "c", "m", "v", "t", "z0", "c0"} and e1["state"]["t"] == 3
    assert e1["state"]["z0"] == gen["state"]["z"] and e1["state"]["c0"] == gen["state"]["c"]
    status, e2 = await post(client, "/api/edit", {**body, "steps": 2, "state": e1["state"]})
    assert status == 200, e2
    cfg = EditConfig(optimizer="adam", lr=0.1)
    r1 = eng.latent(state, sketch[None], mask[None], cfg, 3)
    r2 = eng.latent(r1.state, sketch[None], mask[None], cfg, 2)
    s2, img2, d1, d2 = r2.state, r2.image, r1.dist, r2.dist
    got = EditState.from_dict(e2["state"])
    np.testing.assert_allclose(got.z, s2.z, atol=1e-6)
    np.testing.assert_allclose(got.c, s2.c, atol=1e-6)
    np.testing.assert_allclose(got.m, s2.m, rtol=1e-5, atol=1e-9)
    assert got.t == s2.t == 5
    assert abs(e1["dist"] - float(d1[0])) < 1e-5 and abs(e2["dist"] - float(d2[0])) < 1e-5
    assert np.abs(decode_image(e2["image"]).astype(int) - to_uint8(img2[0])).max() <= 1
    assert e2["state"]["z"] != gen["state"]["z"]  # it moved
    # two-stage from the carried state: G2(G1(z, c), sketch), the state comes back unchanged
    status, ts = await post(client, "/api/edit", {"model": model, "sketch": SKETCH, "method": "two-stage",
                                                  "state": e2["state"]})
    assert status == 200 and ts["state"]["z"] == e2["state"]["z"]
    ref = eng.two_stage(got, sketch[None], mask[None])
    assert np.abs(decode_image(ts["image"]).astype(int) - to_uint8(ref[0])).max() <= 1
    # gd (one plain step per submit, docs/method.md §3) keeps no moments
    status, gd = await post(client, "/api/edit", {"model": model, "sketch": SKETCH, "method": "latent",
                                                  "optimizer": "gd", "state": e2["state"]})
    assert status == 200 and set(gd["state"]) == {"z", "c", "z0", "c0"}
    assert gd["state"]["z0"] == gen["state"]["z"]  # still pasting onto the picture the edit started from


@pytest.mark.asyncio
async def test_photo_edit_matches_engine(client, engines):
    data = photo((48, 30))
    status, out = await post(client, "/api/edit", {"model": "tiny", "image": b64(data), "sketch": SKETCH,
                                                   "method": "two-stage"})
    assert status == 200, out
    assert "state" not in out
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    sketch, mask = decode_png(base64.b64decode(SKETCH), R)
    ref = engines["tiny"].two_stage(resize_image(rgb, R)[None], sketch[None], mask[None])
    assert np.abs(decode_image(out["image"]).astype(int) - to_uint8(ref[0])).max() <= 2  # JPEG draft decode
    # PNG with alpha, grey, CMYK JPEG, a data URL: all accepted
    for p in (photo((20, 20), "PNG", "RGBA"), photo((33, 17), "PNG", "L"), photo((30, 30), "JPEG", "CMYK")):
        status, out = await post(client, "/api/edit", {"model": "tiny", "image": "data:image/png;base64," + b64(p),
                                                       "sketch": SKETCH})
        assert status == 200, out


@pytest.mark.asyncio
async def test_photo_projection_matches_engine_and_starts_latent_edits(client, engines):
    from neuedit.runtime import editing
    data = photo((48, 30), "PNG")
    status, out = await post(client, "/api/project", {"model": "tiny", "image": b64(data), "steps": 12})
    assert status == 200, out
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    ref = engines["tiny"].project(resize_image(rgb, R)[None], 12)
    got = EditState.from_dict(out["state"])
    np.testing.assert_allclose(got.z, ref.state.z, atol=1e-5)
    assert abs(out["dist"] - float(ref.dist[0])) < 1e-5 and out["steps"] == 12
    assert np.abs(decode_image(out["image"]).astype(int) - to_uint8(ref.image[0])).max() <= 1
    # the state it returns is a latent edit's start
    status, e = await post(client, "/api/edit", {"model": "tiny", "state": out["state"], "sketch": SKETCH,
                                                 "method": "latent", "steps": 2})
    assert status == 200 and e["state"]["z"] != out["state"]["z"]


@pytest.mark.asyncio
async def test_sketch_any_size_and_mode(client):
    _, gen = await post(client, "/api/generate", {"model": "tiny", "seed": 2})
    rgba = stroke_rgba(64)
    variants = [png_bytes(rgba[:37, :23]),                                   # odd size, not square
                png_bytes(np.asarray(Image.fromarray(rgba).resize((R, R)))),  # model size
                png_bytes(rgba[..., :3]),                                    # RGB: non-black is a stroke
                png_bytes(rgba[..., 0]),                                # grey
                png_bytes(np.asarray(Image.fromarray(rgba).convert("LA"))),
                png_bytes(np.zeros((8, 8, 4), np.uint8))]                    # nothing drawn
    pal = io.BytesIO()
    Image.fromarray(rgba).convert("P").save(pal, format="PNG")
    i16 = io.BytesIO()
    Image.fromarray(rgba[..., 0].astype(np.uint16) * 200).save(i16, format="PNG")
    for data in variants + [pal.getvalue(), i16.getvalue()]:
        status, out = await post(client, "/api/edit", {"model": "tiny", "state": gen["state"], "sketch": b64(data)})
        assert status == 200, out


# ---- bad input -----------------------------------------------------------------------------------------------
GOOD_STATE = {"z": [0.1] * 16, "c": [0.0] * 25}


def edit(**kw):
    body = {"model": "tiny", "state": GOOD_STATE, "sketch": SKETCH, "method": "latent"}
    body.update(kw)
    return {k: v for k, v in body.items() if v is not ...}


def state(**kw):
    return edit(state={**GOOD_STATE, **kw})


BAD = [
    # (name, path, body (dict or raw bytes), status, code)
    ("malformed json", "/api/generate", b"{not json", 400, "malformed_json"),
    ("truncated json", "/api/edit", b'{"model": "tiny", "state": {"z": [0.1,', 400, "malformed_json"),
    ("not utf-8", "/api/generate", b"\xff\xfe\x00{", 400, "malformed_json"),
    ("empty body", "/api/generate", b"", 400, "empty_body"),
    ("array body", "/api/generate", b"[1, 2]", 400, "bad_request"),
    ("deep nesting", "/api/edit", b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
    ("huge integer", "/api/generate", b'{"model": "tiny", "seed": 1' + b"0" * 5000 + b"}", 400, "malformed_json"),
    ("missing model", "/api/generate", {"seed": 1}, 400, "missing_field"),
    ("unknown model", "/api/generate", {"model": "nope"}, 404, "unknown_model"),
    ("model not a string", "/api/edit", edit(model=["tiny"]), 404, "unknown_model"),
    ("missing sketch", "/api/edit", edit(sketch=...), 400, "missing_field"),
    ("missing state and image", "/api/edit", edit(state=...), 400, "missing_field"),
    ("state and image", "/api/edit", edit(method="two-stage", image=b64(photo())), 400, "bad_request"),
    ("sketch bad base64", "/api/edit", edit(sketch="not base64!"), 400, "bad_base64"),
    ("sketch not a string", "/api/edit", edit(sketch=12), 400, "bad_base64"),
    ("sketch empty", "/api/edit", edit(sketch=""), 400, "bad_base64"),
    ("sketch not a png", "/api/edit", edit(sketch=b64(photo())), 400, "bad_sketch"),
    ("sketch random bytes", "/api/edit", edit(sketch=b64(os.urandom(300))), 400, "bad_sketch"),
    ("sketch truncated png", "/api/edit", edit(sketch=b64(png_bytes(stroke_rgba())[:60])), 400, "bad_sketch"),
    ("sketch bomb header", "/api/edit", edit(sketch=b64(bomb_png(100_000, 100_000))), 400, "bad_sketch"),
    ("sketch over the pixel cap", "/api/edit", edit(sketch=b64(bomb_png(1024, 1024))), 400, "bad_sketch"),
    ("sketch 0 wide", "/api/edit", edit(sketch=b64(bomb_png(0, 10))), 400, "bad_sketch"),
    ("photo bomb header", "/api/edit", edit(state=..., method="two-stage", image=b64(bomb_png(60_000, 60_000))),
     400, "bad_image"),
    ("photo garbage", "/api/edit", edit(state=..., method="two-stage", image=b64(b"GIF89a" + os.urandom(50))),
     400, "bad_image"),
    ("photo truncated jpeg", "/api/edit", edit(state=..., method="two-stage", image=b64(photo()[:100])),
     400, "bad_image"),
    ("photo latent, bad state", "/api/edit", edit(state={"z": [0.0]}, image=b64(photo())), 400, "bad_state"),
    ("photo latent, garbage", "/api/edit", edit(state=..., image=b64(b"GIF89a" + os.urandom(50))), 400, "bad_image"),
    ("project without image", "/api/project", {"model": "tiny"}, 400, "missing_field"),
    ("project garbage", "/api/project", {"model": "tiny", "image": b64(b"GIF89a" + os.urandom(50))}, 400, "bad_image"),
    ("project too many steps", "/api/project", {"model": "tiny", "image": b64(photo()), "steps": 10_000}, 400,
     "too_many_steps"),
    ("project negative steps", "/api/project", {"model": "tiny", "image": b64(photo()), "steps": -1}, 400,
     "bad_field"),
    ("project unknown model", "/api/project", {"model": "nope", "image": b64(photo())}, 404, "unknown_model"),
    ("state not an object", "/api/edit", edit(state=[0.1] * 16), 400, "bad_state"),
    ("z too short", "/api/edit", state(z=[0.1] * 15), 400, "bad_state"),
    ("z too long", "/api/edit", state(z=[0.1] * 17), 400, "bad_state"),
    ("z two rows", "/api/edit", state(z=[[0.1] * 16] * 2), 400, "bad_state"),
    ("z missing", "/api/edit", edit(state={"c": [0.0] * 25}), 400, "bad_state"),
    ("z strings", "/api/edit", state(z=["0.1"] * 16), 400, "bad_state"),
    ("z booleans", "/api/edit", state(z=[True] * 16), 400, "bad_state"),
    ("z out of range", "/api/edit", state(z=[1.5] + [0.1] * 15), 400, "bad_state"),
    ("z exactly 1", "/api/edit", state(z=[1.0] + [0.1] * 15), 400, "bad_state"),
    ("z rounds to 1 in float32", "/api/edit", state(z=[0.99999999] + [0.1] * 15), 400, "bad_state"),
    ("z huge integer", "/api/edit", state(z=[10**400] + [0] * 15), 400, "bad_state"),
    ("z overflows float32", "/api/edit", state(z=[1e39] + [0] * 15), 400, "bad_state"),
    ("c wrong length", "/api/edit", state(c=[0.0] * 24), 400, "bad_state"),
    ("c out of range", "/api/edit", state(c=[2.0] + [0.0] * 24), 400, "bad_state"),
    ("c negative", "/api/edit", state(c=[-0.5] + [0.0] * 24), 400, "bad_state"),
    ("m without v", "/api/edit", state(m=[0.0] * 41), 400, "bad_state"),
    ("m wrong length", "/api/edit", state(m=[0.0] * 40, v=[0.0] * 40), 400, "bad_state"),
    ("v negative", "/api/edit", state(m=[0.0] * 41, v=[-1.0] * 41), 400, "bad_state"),
    ("m huge", "/api/edit", state(m=[1e30] * 41, v=[0.0] * 41), 400, "bad_state"),
    ("t negative", "/api/edit", state(m=[0.0] * 41, v=[0.0] * 41, t=-1), 400, "bad_state"),
    ("t huge", "/api/edit", state(m=[0.0] * 41, v=[0.0] * 41, t=10**30), 400, "bad_state"),
    ("t float", "/api/edit", state(m=[0.0] * 41, v=[0.0] * 41, t=1.5), 400, "bad_state"),
    ("unknown method", "/api/edit", edit(method="magic"), 400, "unknown_method"),
    ("method not a string", "/api/edit", edit(method={"a": 1}), 400, "unknown_method"),
    ("too many steps", "/api/edit", edit(steps=21), 400, "too_many_steps"),
    ("steps astronomically many", "/api/edit", edit(steps=10**100), 400, "too_many_steps"),
    ("steps negative", "/api/edit", edit(steps=-1), 400, "bad_field"),
    ("steps a string", "/api/edit", edit(steps="5"), 400, "bad_field"),
    ("steps fractional", "/api/edit", edit(steps=2.5), 400, "bad_field"),
    ("optimizer unknown", "/api/edit", edit(optimizer="sgd"), 400, "bad_field"),
    ("lr zero", "/api/edit", edit(lr=0), 400, "bad_field"),
    ("lr negative", "/api/edit", edit(lr=-1), 400, "bad_field"),
    ("lr too large", "/api/edit", edit(lr=1e6), 400, "bad_field"),
    ("lr a string", "/api/edit", edit(lr="0.1"), 400, "bad_field"),
    ("seed negative", "/api/generate", {"model": "tiny", "seed": -1}, 400, "bad_field"),
    ("seed too large", "/api/generate", {"model": "tiny", "seed": 2**53}, 400, "bad_field"),
    ("seed a string", "/api/generate", {"model": "tiny", "seed": "1"}, 400, "bad_field"),
    ("generate c wrong length", "/api/generate", {"model": "tiny", "c": [0.0] * 3}, 400, "bad_field"),
    ("generate c out of range", "/api/generate", {"model": "tiny", "c": [3.0] * 25}, 400, "bad_field"),
    ("generate c for c_dim 0", "/api/generate", {"model": "tiny_empty", "c": [1.0]}, 400, "bad_field"),
]
NAN_BODIES = [  # Python's json writes NaN/Infinity literals, which its parser (and ours) reads
    ("z NaN", "/api/edit", state(z=[float("nan")] + [0.1] * 15), 400, "bad_state"),
    ("z infinity", "/api/edit", state(z=[float("inf")] + [0.1] * 15), 400, "bad_state"),
    ("c NaN", "/api/edit", state(c=[float("nan")] * 25), 400, "bad_state"),
    ("m infinity", "/api/edit", state(m=[float("-inf")] * 41, v=[0.0] * 41), 400, "bad_state"),
    ("lr NaN", "/api/edit", edit(lr=float("nan")), 400, "bad_field"),
    ("generate c infinity", "/api/generate", {"model": "tiny", "c": [float("inf")] * 25}, 400, "bad_field"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("name,path,body,status,code", BAD + NAN_BODIES, ids=[b[0] for b in BAD + NAN_BODIES])
async def test_bad_input_gets_4xx(client, name, path, body, status, code):
    got, out = await post(client, path, body)
    assert (got, out["error"]["code"]) == (status, code), out
    assert isinstance(out["error"]["message"], str) and out["error"]["message"]
    await assert_still_serves(client)


@pytest.mark.asyncio
async def test_good_baseline_of_bad_inputs(client):
    """The bodies BAD derives from are themselves fine (so each BAD case fails for its own reason)."""
    for body in (edit(), edit(steps=20, optimizer="adam", lr=1.0), state(m=[0.0] * 41, v=[0.0] * 41, t=3),
                 edit(method="two-stage"), edit(state=..., method="two-stage", image=b64(photo()))):
        status, out = await post(client, "/api/edit", body)
        assert status == 200, (body, out)


@pytest.mark.asyncio
async def test_body_too_large_and_http_errors(client, cfg):
    big = json.dumps(edit(sketch="A" * cfg.max_body_bytes)).encode()
    r = await client.post("/api/edit", data=big)
    assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"

    async def chunks():  # no Content-Length: aiohttp stops reading at the limit
        for _ in range(cfg.max_body_bytes // 65536 + 2):
            yield b" " * 65536
    r = await client.post("/api/edit", data=chunks())
    assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"
    r = await client.get("/api/edit")
    assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"
    r = await client.get("/api/nothing")
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    await assert_still_serves(client)


@pytest.mark.asyncio
async def test_method_unavailable(aiohttp_client, tiny_exported, tiny_exported_empty, tmp_path):
    """A bundle exported without G2 offers only the latent editor."""
    b = shutil.copytree(tiny_exported.path, tmp_path / "latent_only")
    meta = json.loads((b / "bundle.json").read_text())
    del meta["onnx"]["g2"]
    meta["name"] = "latent_only"
    write_meta(b, {k: v for k, v in meta.items() if k not in ("format", "version")})
    client = await aiohttp_client(create_app(config(tiny_exported, tiny_exported_empty, bundles=(str(b),))))
    models = (await (await client.get("/api/models")).json())["models"]
    assert models[0]["methods"] == ["latent"]
    status, out = await post(client, "/api/edit", edit(model="latent_only", method="two-stage"))
    assert (status, out["error"]["code"]) == (400, "method_unavailable")
    status, out = await post(client, "/api/edit", edit(model="latent_only"))
    assert status == 200


@pytest.mark.asyncio
async def test_unexpected_exception_is_a_logged_500(client, caplog):
    from neuedit.server.keys import ENGINES

    def broken(*a, **k):
        raise RuntimeError("boom")
    eng = client.app[ENGINES]["tiny"]
    eng.generate = broken  # an instance attribute: only this app's engine
    with caplog.at_level("ERROR", logger="neuedit.server"):
        status, out = await post(client, "/api/generate", {"model": "tiny"})
    assert (status, out["error"]["code"]) == (500, "internal") and "boom" not in out["error"]["message"]
    assert "boom" in caplog.text and "Traceback" in caplog.text
    del eng.generate
    await assert_still_serves(client)


# ---- static files ---------------------------------------------------------------------------------------------
TRAVERSALS = ["/static/../server/app.py", "/static/../app.py", "/static/%2e%2e/app.py", "/static/%2e%2e%2fapp.py",
              "/static/..%2fapp.py", "/static/..%5capp.py", "/static/..\\app.py", "/static//etc/passwd",
              "/static/%2fetc%2fpasswd", "/static/....//....//etc/passwd", "/static/../../../../../../etc/passwd",
              "/static/%252e%252e/app.py", "/static/.%2e/.%2e/.%2e/etc/passwd", "/../../etc/passwd",
              "/static/app.js/../../app.py", "/static/%00", "/static/app.js%00.html", "/static/", "/static"]


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """Send the request line byte for byte (no client-side URL normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.asyncio
async def test_static_files_stay_inside_the_static_folder(client):
    secret = (Path(__file__).resolve().parents[1] / "server" / "app.py").read_bytes()[:200]
    port = client.server.port
    status, body = await raw_get(port, "/static/app.js")
    assert status == 200 and b"neuedit" in body
    for target in TRAVERSALS:
        status, body = await raw_get(port, target)
        assert status in (400, 403, 404), (target, status)
        assert secret not in body and b"root:" not in body, target


# ---- load: batching and back-pressure ------------------------------------------------------------------------
async def healthz(client) -> dict:
    return await (await client.get("/healthz")).json()


@pytest.mark.asyncio
async def test_concurrent_requests_are_batched(aiohttp_client, tiny_exported, tiny_exported_empty, engines):
    cfg = config(tiny_exported, tiny_exported_empty, batch_window_ms=300.0, max_batch=8)
    client = await aiohttp_client(create_app(cfg))
    outs = await asyncio.gather(*[post(client, "/api/generate", {"model": "tiny", "seed": s}) for s in range(5)])
    assert all(s == 200 for s, _ in outs)
    h = await healthz(client)
    assert (h["batching"]["engine_calls"], h["batching"]["requests"]) == (1, 5)
    for _, out in outs:  # each row is its own image, as if generated alone
        st = EditState.from_dict(out["state"])
        ref = to_uint8(engines["tiny"].generate(st.z, st.c)[0])
        assert np.abs(decode_image(out["image"]).astype(int) - ref).max() <= 1
    # different models, methods and latent settings never share an engine call
    _, g = outs[0]
    reqs = [("/api/generate", {"model": "tiny_empty", "seed": 1}),
            ("/api/edit", edit(state=g["state"], method="two-stage")),
            ("/api/edit", edit(state=g["state"], steps=2)), ("/api/edit", edit(state=g["state"], steps=2)),
            ("/api/edit", edit(state=g["state"], steps=3))]
    outs = await asyncio.gather(*[post(client, p, b) for p, b in reqs])
    assert all(s == 200 for s, _ in outs)
    a, b = (EditState.from_dict(o[1]["state"]) for o in outs[2:4])  # equal rows, equal results (to fp32 noise:
    for k in ("z", "c", "m", "v", "z0", "c0"):                           # rows of one batch may take other kernel paths)
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-5, atol=1e-9)
    h = await healthz(client)
    assert (h["batching"]["engine_calls"], h["batching"]["requests"]) == (1 + 4, 5 + 5)


@pytest.mark.asyncio
async def test_requests_queued_behind_a_busy_engine_share_its_next_call(aiohttp_client, tiny_exported,
                                                                        tiny_exported_empty):
    """The default: no batch window; the first request runs at once, the ones that arrive
    while it runs (here: a slowed-down engine) go together in the next call."""
    from neuedit.server.keys import ENGINES
    cfg = config(tiny_exported, tiny_exported_empty, batch_window_ms=0.0, inference_threads=1)
    client = await aiohttp_client(create_app(cfg))
    eng = client.app[ENGINES]["tiny"]
    fast = eng.generate

    def slow(z, c):
        time.sleep(0.3)
        return fast(z, c)
    eng.generate = slow
    first = asyncio.ensure_future(post(client, "/api/generate", {"model": "tiny", "seed": 0}))
    await asyncio.sleep(0.1)  # the first call is running
    rest = await asyncio.gather(*[post(client, "/api/generate", {"model": "tiny", "seed": s}) for s in range(1, 6)])
    assert (await first)[0] == 200 and all(s == 200 for s, _ in rest)
    h = await healthz(client)
    assert (h["batching"]["engine_calls"], h["batching"]["requests"]) == (2, 6)


@pytest.mark.asyncio
async def test_batching_off_runs_one_call_per_request(aiohttp_client, tiny_exported, tiny_exported_empty):
    client = await aiohttp_client(create_app(config(tiny_exported, tiny_exported_empty, batching=False)))
    outs = await asyncio.gather(*[post(client, "/api/generate", {"model": "tiny", "seed": s}) for s in range(4)])
    assert all(s == 200 for s, _ in outs)
    h = await healthz(client)
    assert (h["batching"]["enabled"], h["batching"]["engine_calls"], h["batching"]["requests"]) == (False, 4, 4)


@pytest.mark.asyncio
async def test_full_queue_answers_503_with_retry_after(aiohttp_client, tiny_exported, tiny_exported_empty):
    cfg = config(tiny_exported, tiny_exported_empty, queue_size=2, batch_window_ms=400.0, retry_after_s=3)
    client = await aiohttp_client(create_app(cfg))
    rs = await asyncio.gather(*[client.post("/api/generate", json={"model": "tiny", "seed": s}) for s in range(5)])
    statuses = sorted(r.status for r in rs)
    assert statuses == [200, 200, 503, 503, 503]
    busy = [r for r in rs if r.status == 503][0]
    assert busy.headers["Retry-After"] == "3" and (await busy.json())["error"]["code"] == "busy"
    await assert_still_serves(client)


# ---- CLI: no torch, workers, graceful shutdown ------------------------------------------------------------
def test_server_runs_without_torch(tiny_exported):
    """Import and serve a request with torch made unimportable (a deployer's install)."""
    code = f"""
import sys, asyncio
sys.modules["torch"] = None  # any import of torch now fails
from aiohttp.test_utils import TestClient, TestServer
from neuedit.server.app import create_app
from neuedit.server.config import ServerConfig
async def main():
    async with TestClient(TestServer(create_app(ServerConfig(bundles=({str(tiny_exported.path)!r},), threads=1)))) as c:
        r = await c.post("/api/generate", json={{"model": "tiny", "seed": 0}})
        assert r.status == 200, await r.text()
asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_no_bundle_is_a_clear_error(monkeypatch, capsys):
    from neuedit.runtime import bundle as bundle_mod
    from neuedit.cli.main import main
    monkeypatch.setattr(bundle_mod, "shipped", lambda: [])
    assert main(["serve"]) == 1
    assert "no bundle to serve" in capsys.readouterr().err


def test_unexported_bundle_is_a_clear_error(tiny_bundle, capsys):
    from neuedit.cli.main import main
    assert main(["serve", "--bundle", str(tiny_bundle.path)]) == 1
    assert "neuedit export" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def start_server(bundle_path, port, *extra) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "neuedit.cli.main", "serve", "--bundle", str(bundle_path),
                             "--port", str(port), "--threads", "1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        try:
            if http_json(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start")


def test_graceful_shutdown_finishes_requests_in_flight(tiny_exported):
    port = free_port()
    # a long batch window keeps the request in flight while SIGTERM arrives
    proc = start_server(tiny_exported.path, port, "--batch-window-ms", "1500")
    result = {}

    def call():
        result["out"] = http_json(f"http://127.0.0.1:{port}/api/generate", {"model": "tiny", "seed": 3})
    t = threading.Thread(target=call)
    try:
        t.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert result["out"][0] == 200 and result["out"][1]["seed"] == 3
    assert proc.returncode == 0, out
    assert "finishing 1 request(s) in flight" in out and '"POST /api/generate" 200' in out


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is not available here")
def test_workers_share_one_port(tiny_exported):
    port = free_port()
    proc = start_server(tiny_exported.path, port, "--workers", "2")
    try:
        pids = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:  # new connections land on either worker
            pids.add(http_json(f"http://127.0.0.1:{port}/healthz")[1]["pid"])
        assert len(pids) == 2 and proc.pid not in pids
        assert http_json(f"http://127.0.0.1:{port}/api/generate", {"model": "tiny", "seed": 1})[0] == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
    finally:
        proc.kill()


@pytest.mark.asyncio
async def test_a_latent_edit_of_a_photo_answers_the_edited_photo(client):
    status, out = await post(client, "/api/edit", edit(state=None, image=b64(photo()), steps=2))
    assert status == 200, out
    st = EditState.from_dict(out["state"])
    assert st.z0 is not None and out["steps"] == 2 and decode_image(out["image"]).shape[:2] == (16, 16)
    assert len(out["state"]["r"]) == 16 * 8 * 8  # the photo's detail map (tiny: 16 channels at 8x8), flat
    status, again = await post(client, "/api/edit", edit(state=out["state"], image=b64(photo()), steps=1))
    assert status == 200, again
    assert EditState.from_dict(again["state"]).z0.tolist() == st.z0.tolist()  # continued, not projected again
    assert again["state"]["r"] == out["state"]["r"]  # the detail rides along
    short = {**out["state"], "r": out["state"]["r"][:-1]}
    status, bad = await post(client, "/api/edit", edit(state=short, image=b64(photo()), steps=1))
    assert (status, bad["error"]["code"]) == (400, "bad_state") and "state.r" in bad["error"]["message"]
    status, bad = await post(client, "/api/edit", edit(state=out["state"], image=b64(photo()), method="two-stage"))
    assert (status, bad["error"]["code"]) == (400, "bad_request")
