"""The JSON API: models, generate, edit, project (a photo into the latent space), health, and
the OpenAPI description.

A generate or edit request crosses threads twice. The handler reads the raw body on the event
loop; one job in the decode pool parses and validates the JSON and decodes the images into a
ready `_Call`; the micro-batcher then runs the engine in the inference pool and, in that same
job, encodes each request's reply (PNG, base64, JSON bytes). The event loop only moves bytes.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import dataclasses
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable

import numpy as np
from aiohttp import web

from neuedit.runtime.editing import default_project_steps
from neuedit.runtime.editor import LATENT, TWO_STAGE, Editor, MethodError
from neuedit.runtime.sketch import dist as edit_dist
from neuedit.runtime.state import EditConfig, EditState, seed_state

from neuedit.server import codec
from neuedit.server.config import ServerConfig
from neuedit.server.errors import ApiError, bad_request
from neuedit.server.keys import BATCHER, CONFIG, DECODE_POOL, ENGINES, GATE, INFO, RUNTIME
from neuedit.server.openapi import spec

METHODS = (TWO_STAGE, LATENT)


# ---- helpers ---------------------------------------------------------------------------------------
@dataclass
class _Call:
    """A validated request, ready for the micro-batcher."""
    key: tuple                      # requests with equal keys may share one engine call
    rows: Callable[[list], list]    # the batched engine call: payloads -> one result per payload
    payload: Any                    # this request's row of the engine call
    reply: Callable[[Any], dict]    # this request's engine result -> the response object


async def _read_body(request: web.Request) -> bytes:
    limit = request.app[CONFIG].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"request body of {request.content_length} bytes; at most {limit}")
    return await request.read()  # aiohttp answers 413 itself when a chunked body grows past the limit


async def _prepare(request: web.Request, fn, *args) -> _Call:
    """Read the body, then parse, validate and decode it in one decode-pool job."""
    data = await _read_body(request)
    return await asyncio.get_running_loop().run_in_executor(request.app[DECODE_POOL], partial(fn, *args, data))


def _engine(engines: dict[str, Editor], body: dict) -> Editor:
    name = codec.require(body, "model")
    if not isinstance(name, str) or name not in engines:
        shown = name if isinstance(name, str) else type(name).__name__
        raise ApiError(404, "unknown_model", f"unknown model {shown[:100]!r}; available: {', '.join(engines)}")
    return engines[name]


def _require(eng: Editor, method: str) -> None:
    try:
        eng.require(method)
    except MethodError as e:
        raise bad_request("method_unavailable", f"{e}; it offers {', '.join(eng.methods) or 'no editing'}") from None


def describe(eng: Editor) -> dict:
    info = eng.bundle.info
    return {"name": eng.name, "domain": info.domain, "kind": info.kind,
            "resolution": eng.resolution, "z_dim": eng.z_dim, "c_dim": eng.c_dim,
            "schema": eng.schema.to_dict(), "methods": list(eng.methods), "provider": eng.provider,
            "training_steps": eng.bundle.training_steps,
            # photos: the encoder's guess and detail map, or (without one) the best random start + Adam steps
            "projection": "encoder" if eng.has_encoder else "random starts + steps",
            "detail": dataclasses.asdict(eng.detail) if eng.has_encoder else None}


def _finite(image: np.ndarray) -> ApiError | None:
    if np.all(np.isfinite(image)):
        return None
    return ApiError(422, "numerical_error", "the model produced NaN or infinity for this input; "
                                            "try a smaller lr or fewer steps")


# ---- batched engine calls (run in the inference thread pool; one result per payload) -------------
def _generate_rows(eng: Editor, states: list[EditState]) -> list:
    image = eng.generate(np.concatenate([s.z for s in states]), np.concatenate([s.c for s in states]))
    return [_finite(image[i]) or image[i] for i in range(len(states))]


def _cat_states(states: list[EditState]) -> EditState:
    """Rows alike in which optional parts they have (the call's key says so) -> one batched state."""
    first = states[0]
    cat = lambda name: None if getattr(first, name) is None else np.concatenate([getattr(s, name) for s in states])  # noqa: E731
    return EditState(cat("z"), cat("c"), cat("m"), cat("v"), first.t, cat("z0"), cat("c0"), cat("r"))


def _two_stage_rows(eng: Editor, payloads: list) -> list:
    sources = [p[0] for p in payloads]
    if isinstance(sources[0], EditState):
        source = _cat_states(sources)
    else:
        source = np.concatenate(sources)
    sketch = np.concatenate([p[1] for p in payloads])  # [N, 3, R, R]
    mask = np.concatenate([p[2] for p in payloads])    # [N, 1, R, R]
    image = eng.two_stage(source, sketch, mask)
    d = edit_dist(image, sketch, mask)
    return [_finite(image[i]) or (image[i], float(d[i])) for i in range(len(payloads))]


def _latent_rows(eng: Editor, steps: int, cfg: EditConfig, payloads: list) -> list:
    state = _cat_states([p[0] for p in payloads])  # rows alike in m, z0 and r (the call's key)
    r = eng.latent(state, np.concatenate([p[1] for p in payloads]), np.concatenate([p[2] for p in payloads]),
                   cfg, steps)
    new, image, d = r.state, r.image, r.dist
    out = []
    for i in range(len(payloads)):
        row = new.row(i)
        bad = _finite(image[i]) or _finite(row.z) or _finite(row.c) or \
            (row.m is not None and (_finite(row.m) or _finite(row.v)))
        out.append(bad or (row, image[i], float(d[i])))
    return out


def _encode(reply: Callable[[Any], dict], result) -> bytes:
    """Runs in the inference job, right after the engine call: the response body."""
    return json.dumps(reply(result)).encode()


async def _infer(request: web.Request, call: _Call) -> web.Response:
    body, batch = await request.app[BATCHER].submit(call.key, call.rows, call.payload, partial(_encode, call.reply))
    request[INFO] = f"model={call.key[0]} op={call.key[1]} batch={batch}"
    if isinstance(body, Exception):  # an ApiError for this row, or a bug in its reply (a 500)
        raise body
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _project_rows(eng: Editor, steps: int, photos: list) -> list:
    # each photo is projected independently: batching changes nothing but speed
    r = eng.project(np.concatenate(photos), steps)  # random starts: seeds 0.. (as in the browser)
    return [_finite(r.image[i]) or (r.state.row(i), r.image[i], float(r.dist[i])) for i in range(len(photos))]


# ---- request parsing (runs in the decode pool; raises ApiError for bad input) -------------------------
def _prepare_generate(engines: dict[str, Editor], data: bytes) -> _Call:
    body = codec.parse_json(data)
    eng = _engine(engines, body)
    seed = body.get("seed")
    seed = secrets.randbelow(codec.SEED_MAX) if seed is None else \
        codec.parse_int(seed, "seed", 0, codec.SEED_MAX - 1)
    c = body.get("c")
    if c is not None:
        c = codec.vector(c, eng.c_dim, "c", "bad_field", lo=0.0, hi=1.0)
        if c.min(initial=0) < 0 or c.max(initial=0) > 1:
            raise bad_request("bad_field", "c values must lie in [0, 1]")
    state = seed_state(seed, eng.z_dim, eng.schema, c)  # the browser's runtime draws the same picture

    def reply(image: np.ndarray) -> dict:
        return {"model": eng.name, "image": codec.encode_png(image), "state": codec.state_json(state),
                "seed": seed, "resolution": eng.resolution}
    return _Call((eng.name, "generate"), partial(_generate_rows, eng), state, reply)


def _prepare_edit(engines: dict[str, Editor], cfg: ServerConfig, data: bytes) -> _Call:
    body = codec.parse_json(data)
    eng = _engine(engines, body)
    method = body.get("method", "two-stage")
    if method not in METHODS:
        shown = method if isinstance(method, str) else type(method).__name__
        raise bad_request("unknown_method", f"unknown method {str(shown)[:50]!r}; use one of {', '.join(METHODS)}")
    _require(eng, method)
    has_state, has_image = body.get("state") is not None, body.get("image") is not None
    if not (has_state or has_image):
        raise bad_request("missing_field", "send 'state' (from /api/generate) or 'image' (a photo)")
    if has_state and has_image and method != "latent":
        raise bad_request("bad_request", "a two-stage edit takes one of 'state' or 'image'; both together continue "
                                         "a latent edit of a photo")
    state = codec.parse_state(body["state"], eng.z_dim, eng.c_dim, eng.detail) if has_state else None
    sketch_bytes = codec.b64_bytes(codec.require(body, "sketch"), "sketch")
    photo_bytes = codec.b64_bytes(body["image"], "image") if has_image else None
    edit_cfg = _latent_config(body, cfg, state) if method == "latent" else None  # every field before any pixel
    sketch, mask = codec.decode_sketch(sketch_bytes, eng.resolution, cfg.max_sketch_pixels)
    if method == "latent" and has_image:
        photo = codec.decode_photo(photo_bytes, eng.resolution, cfg.max_photo_pixels)
        return _latent_photo_call(eng, edit_cfg, None, state, photo, sketch, mask)
    if method == "latent":
        return _latent_call(eng, edit_cfg, state, sketch, mask)
    source = codec.decode_photo(photo_bytes, eng.resolution, cfg.max_photo_pixels) if has_image else state

    def reply(result: tuple) -> dict:
        image, d = result
        out = {"model": eng.name, "method": method, "dist": d}
        if state is not None:
            out["state"] = codec.state_json(state)
        out["image"] = codec.encode_png(image)
        return out
    key = (eng.name, "two-stage", "image" if has_image else ("photo state" if state.r is not None else "state"))
    return _Call(key, partial(_two_stage_rows, eng), (source, sketch, mask), reply)


def _prepare_project(engines: dict[str, Editor], cfg: ServerConfig, data: bytes) -> _Call:
    body = codec.parse_json(data)
    eng = _engine(engines, body)
    _require(eng, "latent")
    steps = body.get("steps")
    if steps is None:  # the model's default (none after an encoder), within this server's limit
        steps = min(default_project_steps(eng.has_encoder), cfg.max_project_steps)
    if codec.is_number(steps) and steps > cfg.max_project_steps:
        raise bad_request("too_many_steps", f"steps is {steps}; this server takes at most {cfg.max_project_steps}")
    steps = codec.parse_int(steps, "steps", 0, cfg.max_project_steps)
    photo_bytes = codec.b64_bytes(codec.require(body, "image"), "image")
    photo = codec.decode_photo(photo_bytes, eng.resolution, cfg.max_photo_pixels)

    def reply(result: tuple) -> dict:
        state, image, d = result
        return {"model": eng.name, "image": codec.encode_png(image), "state": codec.state_json(state),
                "dist": d, "steps": steps}
    return _Call((eng.name, "project", steps), partial(_project_rows, eng, steps), photo, reply)


def _latent_config(body: dict, cfg: ServerConfig, state: EditState) -> EditConfig:
    """The latent editor's settings from the body; with 'gd' the state's moments are dropped."""
    steps = body.get("steps", 1)
    if codec.is_number(steps) and steps > cfg.max_steps:
        raise bad_request("too_many_steps", f"steps is {steps}; this server takes at most {cfg.max_steps}")
    steps = codec.parse_int(steps, "steps", 0, cfg.max_steps)
    defaults = EditConfig()  # the benchmark's choice (README, "Edits that do what the strokes ask")
    optimizer = body.get("optimizer", defaults.optimizer)
    if optimizer not in ("gd", "adam"):
        raise bad_request("bad_field", "optimizer must be 'gd' or 'adam'")
    lr = body.get("lr")
    lr = None if lr is None else codec.parse_float(lr, "lr", 0.0, cfg.max_lr, lo_open=True)
    if optimizer == "gd" and state is not None:  # plain gradient descent keeps no moments
        state.m = state.v = None
        state.t = 0
    return replace(defaults, optimizer=optimizer, lr=lr, steps=steps)


def _latent_call(eng: Editor, edit_cfg: EditConfig, state: EditState, sketch: np.ndarray, mask: np.ndarray) -> _Call:
    steps = edit_cfg.steps

    def reply(result: tuple) -> dict:
        new, image, d = result
        return {"model": eng.name, "method": "latent", "dist": d, "state": codec.state_json(new), "steps": steps,
                "image": codec.encode_png(image)}
    key = (eng.name, "latent", steps, edit_cfg, state.m is not None, state.t, state.z0 is not None, state.r is not None)
    return _Call(key, partial(_latent_rows, eng, steps, edit_cfg), (state, sketch, mask), reply)


def _latent_photo_rows(eng: Editor, steps: int, cfg: EditConfig, project_steps: int | None, payloads: list) -> list:
    # photos without a state are projected and edited together; one with a state continues alone
    photos = np.concatenate([p[1] for p in payloads])
    sketch, mask = np.concatenate([p[2] for p in payloads]), np.concatenate([p[3] for p in payloads])
    r = eng.latent_photo(photos, sketch, mask, cfg, steps, state=payloads[0][0], project_steps=project_steps)
    return [_finite(r.image[i]) or _finite(r.state.z[i]) or (r.state.row(i), r.image[i], float(r.dist[i]))
            for i in range(len(payloads))]


def _latent_photo_call(eng: Editor, edit_cfg: EditConfig, project_steps: int | None, state: EditState | None,
                       photo: np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> _Call:
    steps = edit_cfg.steps

    def reply(result: tuple) -> dict:
        new, image, d = result
        return {"model": eng.name, "method": "latent", "dist": d, "state": codec.state_json(new), "steps": steps,
                "image": codec.encode_png(image)}
    key = (eng.name, "latent-photo", steps, edit_cfg) + ((secrets.token_hex(8),) if state is not None else ())
    return _Call(key, partial(_latent_photo_rows, eng, steps, edit_cfg, project_steps), (state, photo, sketch, mask),
                 reply)


# ---- handlers -----------------------------------------------------------------------------------------
async def models(request: web.Request) -> web.Response:
    return web.json_response({"models": [describe(e) for e in request.app[ENGINES].values()]})


async def generate(request: web.Request) -> web.Response:
    """{model, seed?, c?} -> {image, state, seed}: z from the seed, c given or sampled."""
    with request.app[GATE].enter():
        call = await _prepare(request, _prepare_generate, request.app[ENGINES])
        return await _infer(request, call)


async def edit(request: web.Request) -> web.Response:
    """{model, state | image (| both: a latent edit of a photo continued), sketch, method, steps?, optimizer?, lr?}
    -> {image, state?, dist}; a latent edit of a photo answers the edited photo and the state to continue."""
    with request.app[GATE].enter():
        call = await _prepare(request, _prepare_edit, request.app[ENGINES], request.app[CONFIG])
        return await _infer(request, call)


async def project(request: web.Request) -> web.Response:
    """{model, image, steps?} -> {image, state, dist}: the photo projected into the latent space,
    so the latent editor can edit it (its image is G1's reconstruction)."""
    with request.app[GATE].enter():
        call = await _prepare(request, _prepare_project, request.app[ENGINES], request.app[CONFIG])
        return await _infer(request, call)


async def healthz(request: web.Request) -> web.Response:
    app, runtime = request.app, request.app[RUNTIME]
    stats = app[BATCHER].stats
    body = {"status": "draining" if runtime.draining else "ok", "models": list(app[ENGINES]), "pid": os.getpid(),
            "inflight": app[GATE].inflight, "queue_size": app[CONFIG].queue_size,
            "batching": {"enabled": app[BATCHER].enabled, "engine_calls": stats.calls, "requests": stats.rows}}
    return web.json_response(body, status=503 if runtime.draining else 200)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec(request.app[CONFIG], [describe(e) for e in request.app[ENGINES].values()]))
