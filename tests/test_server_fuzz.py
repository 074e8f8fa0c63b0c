"""Property tests: whatever a client sends, the server answers with a 2xx or a 4xx carrying
{"error": {"code", "message"}}, never a 5xx, and keeps serving."""
from __future__ import annotations

import base64
import http.client
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from neuedit.server.config import ServerConfig
from neuedit.server.testing import ServerThread

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)


@pytest.fixture(scope="module")
def server(tiny_exported, tiny_exported_empty):
    cfg = ServerConfig(bundles=(str(tiny_exported.path), str(tiny_exported_empty.path)), max_body_bytes=512 * 1024,
                       max_steps=8, max_sketch_pixels=256 * 256, max_photo_pixels=256 * 256, inference_threads=1,
                       decode_threads=1, threads=1, batch_window_ms=0.0)
    with ServerThread(cfg) as s:
        yield s


def request(server, path: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def check(server, path: str, body: bytes) -> dict:
    status, data = request(server, path, body)
    assert status < 500, (status, data[:300], body[:300])
    out = json.loads(data)
    if status >= 400:
        assert set(out) == {"error"} and isinstance(out["error"]["code"], str) and out["error"]["message"]
    return out


# ---- strategies ----------------------------------------------------------------------------------------
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1.5, 1.5))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=30)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


VALID_PNG = png(np.random.default_rng(0).integers(0, 255, (24, 20, 4), dtype=np.uint8))


@st.composite
def image_bytes(draw) -> bytes:
    """Bytes that pose as an image: garbage, a PNG signature and random chunks, a valid PNG
    with random bytes flipped or cut, or a valid PNG of random size and mode."""
    kind = draw(st.sampled_from(["random", "signature", "mutated", "cut", "valid"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    if kind == "signature":
        return b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=400))
    if kind in ("mutated", "cut"):
        data = bytearray(VALID_PNG)
        if kind == "cut":
            return bytes(data[:draw(st.integers(0, len(data)))])
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    h, w = draw(st.integers(1, 300)), draw(st.integers(1, 300))
    channels = draw(st.sampled_from([None, 2, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    if channels == 2:  # LA
        return png(np.zeros((h, w), np.uint8)) if draw(st.booleans()) else \
            _save(Image.new("LA", (w, h), (draw(st.integers(0, 255)), draw(st.integers(0, 255)))))
    arr = np.full(shape, draw(st.integers(0, 255)), np.uint8)
    return png(arr)


def _save(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


b64_text = st.one_of(image_bytes().map(lambda b: base64.b64encode(b).decode()), st.text(max_size=40), json_values)


@st.composite
def states(draw):
    def vec(n):
        return st.lists(numbers, min_size=max(0, n - 1), max_size=n + 1) | st.lists(st.floats(-0.99, 0.99), min_size=n,
                                                                                      max_size=n)
    z_dim, c_dim = 16, draw(st.sampled_from([0, 25]))
    s = {"z": draw(vec(z_dim)), "c": draw(vec(c_dim))}
    if draw(st.booleans()):
        s["m"] = draw(vec(z_dim + c_dim))
        s["v"] = draw(vec(z_dim + c_dim))
        s["t"] = draw(st.integers(-5, 2**40) | json_values)
    if draw(st.booleans()):  # the 2-D form, one row: {"z": [[...]], ...}
        s = {k: [v] if isinstance(v, list) else v for k, v in s.items()}
    return s


@st.composite
def edit_bodies(draw):
    body = {"model": draw(st.sampled_from(["tiny", "tiny_empty"]) | json_values),
            "sketch": draw(b64_text),
            "method": draw(st.sampled_from(["two-stage", "latent"]) | json_values)}
    if draw(st.booleans()):
        body["state"] = draw(states() | json_values)
    if draw(st.booleans()):
        body["image"] = draw(b64_text)
    for key, strat in (("steps", st.integers(-3, 12) | json_values), ("optimizer", st.sampled_from(["gd", "adam"])
                       | json_values), ("lr", st.floats(0, 200) | json_values)):
        if draw(st.booleans()):
            body[key] = draw(strat)
    if draw(st.booleans()):  # drop a field
        body.pop(draw(st.sampled_from(sorted(body))))
    return body


def dumps(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


# ---- properties -------------------------------------------------------------------------------------------
@SETTINGS
@given(path=st.sampled_from(["/api/generate", "/api/edit"]), body=json_values)
def test_random_json_never_5xx(server, path, body):
    check(server, path, dumps(body))


@SETTINGS
@given(path=st.sampled_from(["/api/generate", "/api/edit"]), body=st.binary(max_size=600))
def test_random_bytes_body_never_5xx(server, path, body):
    check(server, path, body)


@SETTINGS
@given(body=st.fixed_dictionaries({"model": st.sampled_from(["tiny", "tiny_empty"]) | json_values},
                                  optional={"seed": st.integers(-5, 2**60) | json_values,
                                            "c": st.lists(numbers, max_size=26) | json_values}))
def test_random_generate_never_5xx(server, body):
    check(server, "/api/generate", dumps(body))


@settings(SETTINGS, max_examples=250)
@given(body=edit_bodies())
def test_random_edit_never_5xx(server, body):
    out = check(server, "/api/edit", dumps(body))
    if "image" in out and "error" not in out:
        assert base64.b64decode(out["image"]).startswith(b"\x89PNG")


def test_server_still_serves_after_fuzzing(server):
    out = check(server, "/api/generate", dumps({"model": "tiny", "seed": 0}))
    assert "state" in out
