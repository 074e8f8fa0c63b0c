"""Property tests: whatever a client sends, the server answers with a 2xx or a 4xx carrying
{"error": {"code", "message"}}, never a 5xx, and keeps serving."""
from __future__ import annotations

import base64
import http.client
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings, strategies as st
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
    if currently_in_test_context():
        event(f"{status} {out['error']['code'] if status >= 400 else 'ok'}")  # --hypothesis-show-statistics
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
    kind = draw(st.sampled_from(["valid"] * 4 + ["random", "signature", "mutated", "cut"]))
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


def valid_vec(n: int, lo: float = -0.99, hi: float = 0.99):
    return st.lists(st.floats(lo, hi), min_size=n, max_size=n)


def bad_vec(n: int):
    return st.lists(numbers, min_size=max(0, n - 1), max_size=n + 1) | json_values


@st.composite
def states(draw, c_dim: int):
    """A state that is valid, or has one broken part."""
    w = 16 + c_dim
    s = {"z": draw(valid_vec(16)), "c": draw(valid_vec(c_dim, 0.0, 1.0))}
    if draw(st.booleans()):
        s.update(m=draw(valid_vec(w, -1.0, 1.0)), v=draw(valid_vec(w, 0.0, 1.0)), t=draw(st.integers(0, 100)))
    broken = draw(st.sampled_from([None] * 8 + ["z", "c", "m", "v", "t", "drop"]))
    if broken == "drop":
        s.pop(draw(st.sampled_from(sorted(s))))
    elif broken == "t":
        s["t"] = draw(st.integers(-5, 2**40) | json_values)
    elif broken is not None:
        s[broken] = draw(bad_vec({"z": 16, "c": c_dim}.get(broken, w)))
    if draw(st.booleans()):  # the 2-D form, one row ({"z": [[...]], ...}): refused, vectors are flat lists
        s = {k: [v] if isinstance(v, list) else v for k, v in s.items()}
    return s


@st.composite
def edit_bodies(draw):
    """A valid edit request with (sometimes) one field broken; the sketch and photo bytes are
    themselves valid images or impostors."""
    model = draw(st.sampled_from(["tiny", "tiny_empty"]))
    method = draw(st.sampled_from(["two-stage", "latent"]))
    body = {"model": model, "method": method, "sketch": base64.b64encode(draw(image_bytes())).decode()}
    if method == "two-stage" and draw(st.integers(0, 3)) == 3:
        body["image"] = base64.b64encode(draw(image_bytes())).decode()
    else:
        body["state"] = draw(states(0 if model == "tiny_empty" else 25))
    if method == "latent":
        body.update(steps=draw(st.integers(0, 8)), optimizer=draw(st.sampled_from(["gd", "adam"])),
                    lr=draw(st.floats(1e-3, 5)))
    broken = draw(st.sampled_from([None] * 4 + ["model", "method", "sketch", "steps", "optimizer", "lr", "drop",
                                                "extra"]))
    if broken == "drop":
        body.pop(draw(st.sampled_from(sorted(body))))
    elif broken == "extra":
        body[draw(st.sampled_from(["state", "image", "steps", "zzz"]))] = draw(json_values | b64_text)
    elif broken is not None:
        body[broken] = draw(json_values | b64_text if broken == "sketch" else json_values)
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


@st.composite
def generate_bodies(draw):
    model = draw(st.sampled_from(["tiny", "tiny_empty"]))
    body = {"model": model}
    if draw(st.booleans()):
        body["seed"] = draw(st.integers(0, 2**53 - 1))
    if draw(st.booleans()):
        body["c"] = draw(valid_vec(0 if model == "tiny_empty" else 25, 0.0, 1.0))
    broken = draw(st.sampled_from([None] * 3 + ["model", "seed", "c"]))
    if broken is not None:
        body[broken] = draw(st.integers(-5, 2**60) | bad_vec(25) if broken != "model" else json_values)
    return body


@SETTINGS
@given(body=generate_bodies())
def test_random_generate_never_5xx(server, body):
    check(server, "/api/generate", dumps(body))


@settings(SETTINGS, max_examples=250)
@given(body=edit_bodies())
def test_random_edit_never_5xx(server, body):
    out = check(server, "/api/edit", dumps(body))
    if "image" in out and "error" not in out:
        assert base64.b64decode(out["image"]).startswith(b"\x89PNG")


OPTIONAL = {"/api/generate": ("seed", "c"), "/api/edit": ("state", "image", "method", "steps", "optimizer", "lr")}


@settings(SETTINGS, max_examples=60)
@given(path=st.sampled_from(sorted(OPTIONAL)), data=st.data())
def test_a_null_field_is_the_same_as_an_absent_one(server, path, data):
    """null means "not given" for every field (/openapi.json documents them as nullable): a body
    with an absent field set to null gets the answer the body without it gets."""
    body = data.draw(generate_bodies() if path == "/api/generate" else edit_bodies())
    absent = [k for k in OPTIONAL[path] if k not in body]
    if not absent:
        return
    field = data.draw(st.sampled_from(absent))
    without, with_null = check(server, path, dumps(body)), check(server, path, dumps({**body, field: None}))
    assert with_null.get("error", {}).get("code") == without.get("error", {}).get("code"), (field, body)
    assert set(with_null) == set(without)


def test_server_still_serves_after_fuzzing(server):
    out = check(server, "/api/generate", dumps({"model": "tiny", "seed": 0}))
    assert "state" in out
