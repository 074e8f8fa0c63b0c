"""Request fields -> validated arrays, and arrays -> response fields.

Everything here runs on untrusted input and answers bad input with an `ApiError` (a 4xx),
never with another exception. Pure functions (numpy + pillow), safe to call from threads.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math

import numpy as np
from PIL import Image, ImageOps

from neuedit.data.datasets import to_rgb, to_uint8
from neuedit.data.datasets import image_to_model as resize_image
from neuedit.runtime.sketch import SketchError, decode_png
from neuedit.runtime.state import T_MAX, EditState, StateError

from neuedit.server.errors import ApiError, bad_request

log = logging.getLogger("neuedit.server")

SEED_MAX = 2**53          # seeds stay exact as JavaScript numbers

M_MAX = 1e4               # |Adam first moment| (gradients of Dist are far smaller)
V_MAX = 1e8               # Adam second moment
R_MAX = 1e4               # |a photo's detail| (feature maps of order 1)
# |z| at most the largest float32 below 1: values are checked as sent (float64), and a larger
# one would round to 1 in float32, outside z's open interval (-1, 1)
Z_LIMIT = float(np.nextafter(np.float32(1), np.float32(0)))
PHOTO_FORMATS = ("PNG", "JPEG", "WEBP")


# ---- JSON ----------------------------------------------------------------------------------------
def parse_json(data: bytes) -> dict:
    """Request body -> a JSON object. A field set to null is dropped: null means "not given"
    for every field (what /openapi.json documents as nullable)."""
    if not data.strip():
        raise bad_request("empty_body", "the request body is empty; send a JSON object")
    try:
        body = json.loads(data)
    except RecursionError:
        raise bad_request("malformed_json", "the JSON body is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise bad_request("malformed_json", f"the body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise bad_request("bad_request", f"the body must be a JSON object, not {type(body).__name__}")
    return _given(body)


def _given(obj: dict) -> dict:
    """The object without its null fields (a client's unset optional fields)."""
    return {k: v for k, v in obj.items() if v is not None}


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def require(body: dict, name: str):
    if body.get(name) is None:
        raise bad_request("missing_field", f"missing field {name!r}")
    return body[name]


def parse_int(value, name: str, lo: int, hi: int, code: str = "bad_field") -> int:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(code, f"{name} must be an integer")
    if not lo <= value <= hi:
        raise bad_request(code, f"{name} must lie in [{lo}, {hi}], got {value}")
    return value


def parse_float(value, name: str, lo: float, hi: float, lo_open: bool = False) -> float:
    if not is_number(value):
        raise bad_request("bad_field", f"{name} must be a number")
    try:
        x = float(value)
    except OverflowError:
        raise bad_request("bad_field", f"{name} is too large") from None
    if not math.isfinite(x) or x > hi or x < lo or (lo_open and x == lo):
        raise bad_request("bad_field", f"{name} must lie in {'(' if lo_open else '['}{lo}, {hi}], got {value}")
    return x


def vector(value, n: int, name: str, code: str = "bad_state", lo: float | None = None,
           hi: float | None = None) -> np.ndarray:
    """A flat list of `n` numbers -> float32 [1, n]. The values are checked as sent (float64):
    finite, within float32's range and, when given, within [lo, hi], so that no value outside
    the bounds gets in by rounding to them in float32."""
    if not isinstance(value, list):
        raise bad_request(code, f"{name} must be a list of {n} numbers")
    if len(value) != n:
        raise bad_request(code, f"{name} must have {n} values, got {len(value)}")
    if not all(is_number(x) for x in value):
        raise bad_request(code, f"{name} must contain only numbers (a flat list)")
    try:
        a = np.array([float(x) for x in value], np.float64)
    except OverflowError:
        raise bad_request(code, f"{name} contains a number too large") from None
    if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 3.0e38):
        raise bad_request(code, f"{name} contains NaN, infinity or a number out of float32 range")
    if lo is not None and hi is not None and (a.min(initial=lo) < lo or a.max(initial=hi) > hi):
        raise bad_request(code, f"{name} values must lie in [{lo:.9g}, {hi:.9g}]")
    return a.astype(np.float32).reshape(1, n)


def parse_state(value, z_dim: int, c_dim: int, detail=None) -> EditState:
    """The client's state {z, c[, m, v, t][, z0, c0][, r]} for one image -> a validated EditState.
    Null fields count as absent; c and c0 may be left out when c_dim is 0; r (a projected photo's
    detail, flat) needs a model with a photo encoder (`detail`, its `neuedit.runtime.graphs.Detail`)."""
    if not isinstance(value, dict):
        raise bad_request("bad_state", "state must be an object {z, c} (as returned by /api/generate)")
    value = _given(value)
    no_c = [] if c_dim == 0 else None
    z = vector(value.get("z"), z_dim, "state.z", lo=-Z_LIMIT, hi=Z_LIMIT)
    c = vector(value.get("c", no_c), c_dim, "state.c", lo=0.0, hi=1.0)
    m = v = None
    if "m" in value or "v" in value:
        if "m" not in value or "v" not in value:
            raise bad_request("bad_state", "state.m and state.v (Adam's moments) come together")
        m = vector(value["m"], z_dim + c_dim, "state.m", lo=-M_MAX, hi=M_MAX)
        v = vector(value["v"], z_dim + c_dim, "state.v", lo=0.0, hi=V_MAX)
    t = parse_int(value.get("t", 0), "state.t", 0, T_MAX, "bad_state")
    z0 = c0 = None
    if "z0" in value or "c0" in value:
        if "z0" not in value:
            raise bad_request("bad_state", "state.c0 comes with state.z0 (the starting point)")
        z0 = vector(value["z0"], z_dim, "state.z0", lo=-Z_LIMIT, hi=Z_LIMIT)
        c0 = vector(value.get("c0", no_c), c_dim, "state.c0", lo=0.0, hi=1.0)
    r = None
    if "r" in value:
        if detail is None:
            raise bad_request("bad_state", "state.r (a photo's detail) needs a model with a photo encoder")
        r = vector(value["r"], detail.channels * detail.size ** 2, "state.r", lo=-R_MAX, hi=R_MAX)
    state = EditState(z, c, m, v, t, z0, c0, r)
    try:
        state.validate(z_dim, c_dim, detail)
    except StateError as e:
        raise bad_request("bad_state", f"state: {e}") from None
    return state


def state_json(state: EditState) -> dict:
    """One image's state -> JSON with flat lists (what a client sends back)."""
    d = {"z": state.z[0].tolist(), "c": state.c[0].tolist()}
    if state.m is not None:  # t past T_MAX changes nothing (bias correction is 1) and would be refused back
        d.update(m=state.m[0].tolist(), v=state.v[0].tolist(), t=min(int(state.t), T_MAX))
    if state.z0 is not None:
        d.update(z0=state.z0[0].tolist(), c0=state.c0[0].tolist())
    if state.r is not None:
        d.update(r=state.r[0].tolist())
    return d


# ---- images ---------------------------------------------------------------------------------------
def b64_bytes(value, name: str) -> bytes:
    """Base64 text (a `data:` URL too; whitespace ignored) -> bytes."""
    if not isinstance(value, str):
        raise bad_request("bad_base64", f"{name} must be a base64 string")
    s = value
    if s[:5].lower() == "data:":
        head, sep, s = s.partition(",")
        if not sep or ";base64" not in head.lower():
            raise bad_request("bad_base64", f"{name}: a data URL must be base64-encoded")
    try:
        data = base64.b64decode("".join(s.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise bad_request("bad_base64", f"{name} is not valid base64: {e}") from None
    if not data:
        raise bad_request("bad_base64", f"{name} is empty")
    return data


def decode_sketch(data: bytes, resolution: int, max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """PNG bytes of any size and mode -> sketch [1, 3, R, R], mask [1, 1, R, R]."""
    try:
        sketch, mask = decode_png(data, resolution, max_pixels)
    except SketchError as e:
        raise bad_request("bad_sketch", f"sketch: {e}") from None
    except Exception as e:  # noqa: BLE001  pillow raises many kinds on hostile files
        log.warning("sketch decoding failed unexpectedly", exc_info=True)
        raise bad_request("bad_sketch", f"sketch: cannot decode ({type(e).__name__})") from None
    return sketch[None], mask[None]


def decode_photo(data: bytes, resolution: int, max_pixels: int) -> np.ndarray:
    """PNG/JPEG/WEBP bytes of any size and mode -> [1, 3, R, R] in [-1, 1] (centre crop,
    EXIF orientation applied). The header's size is checked before any pixel is decoded;
    JPEGs are decoded at a reduced scale when they are much larger than the model."""
    try:
        img = Image.open(io.BytesIO(data), formats=list(PHOTO_FORMATS))
        w, h = img.size
        if w <= 0 or h <= 0 or w * h > max_pixels:
            raise bad_request("bad_image", f"image is {w}x{h}; at most {max_pixels} pixels are accepted")
        if img.format == "JPEG":
            side = max(2 * resolution, 1)
            img.draft("RGB", (side, side))
        img.load()
        img = ImageOps.exif_transpose(img)
        rgb = np.asarray(to_rgb(img))
        return resize_image(rgb, resolution)[None]
    except ApiError:
        raise
    except Exception as e:  # noqa: BLE001  UnidentifiedImageError, truncated data, odd modes...
        kind = "not a PNG, JPEG or WEBP image" if type(e).__name__ == "UnidentifiedImageError" \
            else f"cannot decode ({type(e).__name__}: {e})"
        raise bad_request("bad_image", f"image: {kind}") from None


def encode_png(image: np.ndarray) -> str:
    """[3, R, R] in [-1, 1] -> base64 PNG."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image), "RGB").save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")
