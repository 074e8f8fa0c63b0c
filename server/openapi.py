"""The OpenAPI 3 description of the API, written by hand and served at /openapi.json.

It is exact: a request body is valid by it when the server accepts it and invalid when the
server refuses it, except for what JSON Schema cannot say (that a base64 string holds a PNG or
photo within the pixel caps). Lengths differ per model (z has z_dim values, c has c_dim), so
each request body is a `oneOf` with one variant per model shape, its `model` an enum of the
models of that shape. null means "not given" for every optional field (`nullable`); required
fields are never null. Every 4xx the server answers with is listed, with its error codes.
"""
# tests/test_openapi.py runs Schemathesis against a live server to keep all this true.
from __future__ import annotations

from neuedit.runtime.state import T_MAX, EditConfig

from neuedit.server.codec import M_MAX, R_MAX, SEED_MAX, V_MAX, Z_LIMIT
from neuedit.server.config import PROJECT_STEPS, ServerConfig

TWO_STAGE, LATENT = "two-stage", "latent"
ABSENT = {"nullable": True, "enum": [None]}  # a field that must be left out (or null)

# the error codes of the 400s each request endpoint answers with (raised in api.py and codec.py)
BAD_JSON = ["empty_body", "malformed_json", "bad_request", "missing_field"]
CODES_400 = {
    "generate": BAD_JSON + ["bad_field"],
    "edit": BAD_JSON + ["bad_field", "bad_state", "bad_base64", "bad_sketch", "bad_image", "unknown_method",
                        "method_unavailable", "too_many_steps"],
    "project": BAD_JSON + ["bad_field", "bad_base64", "bad_image", "method_unavailable", "too_many_steps"],
}


def _error(description: str, codes: list[str], headers: dict | None = None) -> dict:
    """A 4xx/5xx answer: {"error": {"code", "message"}} with `code` one of `codes`."""
    body = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "enum": codes}, "message": {"type": "string", "minLength": 1}}}}}
    out = {"description": description, "content": {"application/json": {"schema": body}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(cfg: ServerConfig, endpoint: str) -> dict:
    return {
        "400": _error("Invalid input: malformed JSON, a missing or wrong field, bad base64, not a PNG (or photo), "
                      "too many pixels, a state of the wrong length or out of range, a method the model lacks, "
                      "...; the message says which", CODES_400[endpoint]),
        "404": _error("Unknown model", ["unknown_model"]),
        "413": _error(f"Body larger than {cfg.max_body_bytes} bytes", ["body_too_large"]),
        "422": _error("The model produced non-finite numbers for this input", ["numerical_error"]),
        "503": _error("Too many requests in flight; retry after the Retry-After header's seconds", ["busy"],
                      {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}),
    }


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _vec(n: int, lo: float, hi: float, description: str, nullable: bool = False) -> dict:
    """A flat list of exactly n numbers in [lo, hi]."""
    out = {"type": "array", "minItems": n, "maxItems": n, "items": {"type": "number", "minimum": lo, "maximum": hi},
           "description": description}
    if nullable:
        out["nullable"] = True
    return out


def _image(description: str, nullable: bool = False) -> dict:
    out = {"type": "string", "format": "byte", "minLength": 1, "description": description}
    if nullable:
        out["nullable"] = True
    return out


def _method(allowed: list[str], required: bool) -> dict:
    """`method`: one of `allowed`; when not required it may be left out (or null) for two-stage."""
    if required:
        return {"type": "string", "enum": allowed}
    return {"type": "string", "enum": [*allowed, None], "nullable": True, "default": TWO_STAGE}


def _shapes(models: list[dict]) -> dict[str, dict]:
    """Models grouped by (z_dim, c_dim, detail size): {"z128_c25_r16384": {"z_dim", "c_dim", "r_size",
    "models": [descriptions]}} (r_size 0: no photo encoder, so no detail map)."""
    groups: dict[str, dict] = {}
    for m in models:
        r_size = m["detail"]["channels"] * m["detail"]["size"] ** 2 if m.get("detail") else 0
        key = f"z{m['z_dim']}_c{m['c_dim']}" + (f"_r{r_size}" if r_size else "")
        groups.setdefault(key, {"z_dim": m["z_dim"], "c_dim": m["c_dim"], "r_size": r_size, "models": []})["models"].append(m)
    return groups


def _names(models: list[dict], method: str | None = None) -> list[str]:
    return [m["name"] for m in models if method is None or method in m["methods"]]


def _one_of(refs: list[dict], description: str) -> dict:
    # an enum cannot be empty: a server without any model for this operation accepts no body
    return {"oneOf": refs, "description": description} if refs else {"not": {}, "description": description}


def _state(z_dim: int, c_dim: int, r_size: int = 0) -> dict:
    """One image's state for models of this shape, as the server checks it: m with v, z0 with
    c0; c and c0 may be left out when c_dim is 0; r (a photo's detail) only with a photo encoder."""
    w = z_dim + c_dim
    z = _vec(z_dim, -Z_LIMIT, Z_LIMIT, f"{z_dim} values inside (-1, 1): |z| is at most {Z_LIMIT!r}, the largest "
                                       "float32 below 1")
    c = _vec(c_dim, 0.0, 1.0, f"{c_dim} values in [0, 1]", nullable=c_dim == 0)
    m = _vec(w, -M_MAX, M_MAX, f"Adam's first moment ({w} values), with v")
    v = _vec(w, 0.0, V_MAX, f"Adam's second moment ({w} values), with m")
    z0 = _vec(z_dim, -Z_LIMIT, Z_LIMIT, "the z the latent edit started from, with c0")
    c0 = _vec(c_dim, 0.0, 1.0, "the c the latent edit started from, with z0", nullable=c_dim == 0)
    with_c = ["c"] if c_dim else []
    return {
        "type": "object", "required": ["z", *with_c],
        "description": f"The editing state of one image of a model with z_dim {z_dim} and c_dim {c_dim}: z and c; "
                       "after a latent edit with optimizer adam Adam's moments m, v and step t; after a latent "
                       "edit z0, c0, the state whose picture the edit started from (kept across calls, so the "
                       "edit keeps that picture). Send it back as the server returned it.",
        "properties": {"z": z, "c": c, "m": {**m, "nullable": True}, "v": {**v, "nullable": True},
                       "t": {"type": "integer", "minimum": 0, "maximum": T_MAX, "nullable": True,
                             "description": "Adam's step count"},
                       "z0": {**z0, "nullable": True}, "c0": {**c0, "nullable": True},
                       "r": ({**_vec(r_size, -R_MAX, R_MAX, f"a projected photo's detail ({r_size} values: the "
                                                           "model's detail map, channels x size x size, flat)"),
                              "nullable": True} if r_size else ABSENT)},
        "allOf": [
            {"anyOf": [{"required": ["m", "v"], "properties": {"m": m, "v": v}},
                       {"properties": {"m": ABSENT, "v": ABSENT}}]},
            {"anyOf": [{"required": ["z0", *(["c0"] if c_dim else [])], "properties": {"z0": z0, "c0": c0}},
                       {"properties": {"z0": ABSENT, "c0": ABSENT}}]},
        ],
    }


def _generate(names: list[str], c_dim: int) -> dict:
    return {"type": "object", "required": ["model"], "properties": {
        "model": {"type": "string", "enum": names},
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX - 1, "nullable": True,
                 "description": "z is drawn from it (random when absent); the same seed with another c keeps z"},
        "c": _vec(c_dim, 0.0, 1.0, f"{c_dim} values in [0, 1]; sampled from the label schema when absent",
                  nullable=True)}}


def _edit_state(cfg: ServerConfig, names: list[str], state: str, method: str, photo: bool = False) -> dict:
    """Edit a generated image (its state) with one method; `photo`: a latent edit of a photo, the
    state (optional) continuing an earlier one."""
    sketch = _sketch(cfg)
    props = {"model": {"type": "string", "enum": names}, "state": _ref(state), "image": ABSENT, "sketch": sketch}
    required = ["model", "state", "sketch"]
    if photo:
        props.update(image=_photo(cfg), state={**_ref(state), "nullable": True})
        required = ["model", "image", "sketch"]
    if method == TWO_STAGE:
        return {"type": "object", "required": required, "properties": {**props, "method": _method([TWO_STAGE], False)},
                "description": "Two-stage edit of a generated image: one pass of G2 over G1(z, c) and the strokes; "
                               "the state comes back unchanged (steps, optimizer and lr are not read)"}
    what = ("Latent edit of a photo: its projection edited, the change carried onto the photo where the strokes "
            "concern it; send the returned state back with the same photo to continue") if photo \
        else "Latent edit: steps on (z, c)"
    return {"type": "object", "required": [*required, "method"], "description": what,
            "properties": {
                **props, "method": _method([LATENT], True),
                "steps": {"type": "integer", "minimum": 0, "maximum": cfg.max_steps, "default": 1, "nullable": True,
                          "description": "optimisation steps"},
                "optimizer": {"type": "string", "enum": ["gd", "adam", None], "nullable": True,
                              "default": EditConfig().optimizer,
                              "description": "plain gradient descent or Adam (iGAN's); gd drops the state's "
                                             "moments"},
                "lr": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": cfg.max_lr,
                       "nullable": True,
                       "description": "step size of z (default 2.0 for gd; for adam 0, z held, on a model with a "
                                      "condition c, which then carries the edit, else 0.05)"}}}


def _edit_photo(cfg: ServerConfig, names: list[str]) -> dict:
    return {"type": "object", "required": ["model", "image", "sketch"],
            "description": "Two-stage edit of a photo (steps, optimizer and lr are not read)",
            "properties": {"model": {"type": "string", "enum": names}, "state": ABSENT, "image": _photo(cfg),
                           "sketch": _sketch(cfg), "method": _method([TWO_STAGE], False)}}


def _sketch(cfg: ServerConfig) -> dict:
    return _image("base64 PNG of the strokes, any size (resized to the model's): alpha > 0 marks a stroke, RGB is "
                  "its colour; without alpha, non-black pixels are strokes; at most "
                  f"{cfg.max_sketch_pixels} pixels. A data: URL works too")


def _photo(cfg: ServerConfig) -> dict:
    return _image("a photo: base64 PNG, JPEG or WEBP of any size (centre-cropped and resized), at most "
                  f"{cfg.max_photo_pixels} pixels. A data: URL works too")


def spec(cfg: ServerConfig, models: list[dict]) -> dict:
    """The document for this server: `models` are the /api/models descriptions of its models."""
    shapes = _shapes(models)
    schemas: dict[str, dict] = {}
    generate, edit, states = [], [], []
    for key, g in shapes.items():
        schemas[f"State_{key}"] = _state(g["z_dim"], g["c_dim"], g["r_size"])
        states.append(_ref(f"State_{key}"))
        schemas[f"GenerateRequest_{key}"] = _generate(_names(g["models"]), g["c_dim"])
        generate.append(_ref(f"GenerateRequest_{key}"))
        for method, label in ((TWO_STAGE, "TwoStage"), (LATENT, "Latent")):
            names = _names(g["models"], method)
            if names:
                schemas[f"EditRequest{label}_{key}"] = _edit_state(cfg, names, f"State_{key}", method)
                edit.append(_ref(f"EditRequest{label}_{key}"))
        names = _names(g["models"], LATENT)
        if names:
            schemas[f"EditRequestLatentPhoto_{key}"] = _edit_state(cfg, names, f"State_{key}", LATENT, photo=True)
            edit.append(_ref(f"EditRequestLatentPhoto_{key}"))
    if _names(models, TWO_STAGE):
        schemas["EditRequestPhoto"] = _edit_photo(cfg, _names(models, TWO_STAGE))
        edit.append(_ref("EditRequestPhoto"))
    latent = _names(models, LATENT)
    schemas["ProjectRequest"] = {"type": "object", "required": ["model", "image"], "properties": {
        "model": {"type": "string", "enum": latent}, "image": _photo(cfg),
        "steps": {"type": "integer", "minimum": 0, "maximum": cfg.max_project_steps, "nullable": True,
                  "description": "Adam steps after the start; absent: none where the model has a photo encoder "
                                 f"(/api/models 'projection'), else {min(PROJECT_STEPS, cfg.max_project_steps)}"}}} \
        if latent else {"not": {}, "description": "no model here has a latent editor"}
    schemas["GenerateRequest"] = _one_of(generate, "one variant per model shape (z_dim, c_dim)")
    schemas["EditRequest"] = _one_of(edit, "a generated image's state (two-stage or latent) or a photo (two-stage, "
                                           "or latent with an optional state to continue), one variant per model shape")
    schemas["State"] = {"anyOf": states, "description": "a state as the server returns it (send it back as is)"} \
        if states else {"not": {}}
    schemas.update(_responses(models))

    def post(summary: str, request: str, ok: str, response: str, endpoint: str) -> dict:
        return {"post": {"summary": summary,
                         "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
                         "responses": {"200": _json(_ref(response), ok), **_errors(cfg, endpoint)}}}

    return {
        "openapi": "3.0.3",
        "info": {"title": "neuedit editing server", "version": "1",
                 "description": "Generate images from (z, c) and edit them with sketches: two-stage (one forward "
                                "pass of G2 over the image and the strokes) or latent optimisation (steps on z and "
                                "c). The server is stateless: every response carries the state, send it back with "
                                "the next edit. Images and sketches are base64 PNGs (a data: URL works too). A "
                                "field set to null counts as not given."},
        "paths": {
            "/api/models": {"get": {"summary": "The models this server holds", "responses": {"200": _json(
                {"type": "object", "required": ["models"],
                 "properties": {"models": {"type": "array", "items": _ref("Model")}}}, "Models")}}},
            "/api/generate": post("A new image: z from the seed, c given or sampled from the label schema",
                                  "GenerateRequest", "The image and its state", "GenerateResponse", "generate"),
            "/api/edit": post("Edit a generated image (state) or a photo (image, two-stage only) with a sketch",
                              "EditRequest", "The edited image (and the new state)", "EditResponse", "edit"),
            "/api/project": post("Project a photo into the latent space (the latent editor's start for a photo): "
                                 "the best of a few random z, then Adam steps on (z, c) toward the photo",
                                 "ProjectRequest", "G1's reconstruction of the photo and its state",
                                 "ProjectResponse", "project"),
            "/healthz": {"get": {"summary": "Liveness and readiness (503 while draining at shutdown)", "responses": {
                "200": _json(_ref("Health"), "Serving"),
                "503": _json(_ref("Health"), "Shutting down: finishing requests in flight, send no new ones")}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")}}},
            "/": {"get": {"summary": "The web client",
                          "responses": {"200": {"description": "HTML page", "content": {"text/html": {}}}}}},
            "/sw.js": {"get": {"summary": "The web client's service worker (a second visit starts offline)",
                               "responses": {"200": {"description": "JavaScript",
                                                     "content": {"text/javascript": {}}}}}},
            "/web.json": {"get": {"summary": "The in-browser runtime's manifest: graph contract, defaults, models "
                                             "and their graph files (docs/serving.md)",
                                  "responses": {"200": _json({"type": "object"}, "Manifest")}}},
            "/models/{model}/{file}": {"get": {
                "summary": "One of a served model's ONNX graphs, for the in-browser runtime",
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ONNX graph", "content": {"application/octet-stream": {}}},
                              "404": _error("No such model or graph", ["not_found"])}}},
        },
        "components": {"schemas": schemas},
    }


def _responses(models: list[dict]) -> dict:
    """The response bodies' schemas."""
    names = {"type": "string", "enum": _names(models)} if models else {"type": "string"}
    png = {"type": "string", "format": "byte", "description": "base64 PNG, resolution x resolution"}
    return {
        "LabelSchema": {"type": "object", "required": ["name", "groups"],
                        "description": "The label schema: c is the concatenation of its groups' attributes; an "
                                       "exclusive group has at most one on",
                        "properties": {"name": {"type": "string"}, "groups": {"type": "array", "items": {
                            "type": "object", "required": ["name", "attributes", "exclusive"], "properties": {
                                "name": {"type": "string"},
                                "attributes": {"type": "array", "items": {"type": "string"}},
                                "exclusive": {"type": "boolean"},
                                "tags": {"type": "array", "items": {"type": "string"},
                                         "description": "the dataset's tag of each attribute"}}}}}},
        "Model": {"type": "object", "required": ["name", "domain", "kind", "resolution", "z_dim", "c_dim", "schema",
                                                 "methods", "provider", "training_steps"], "properties": {
            "name": names, "domain": {"type": "string"}, "kind": {"type": "string"},
            "resolution": {"type": "integer", "minimum": 1}, "z_dim": {"type": "integer", "minimum": 1},
            "c_dim": {"type": "integer", "minimum": 0}, "schema": _ref("LabelSchema"),
            "methods": {"type": "array", "items": {"type": "string", "enum": [TWO_STAGE, LATENT]}},
            "provider": {"type": "string", "description": "ONNX Runtime's execution provider"},
            "training_steps": {"type": "object", "description": "training iterations of each stage in the bundle",
                               "properties": {"stage1": {"type": "integer"}, "stage2": {"type": "integer"}}}}},
        "GenerateResponse": {"type": "object", "required": ["model", "image", "state", "seed", "resolution"],
                             "properties": {"model": names, "image": png, "state": _ref("State"),
                                            "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX - 1},
                                            "resolution": {"type": "integer", "minimum": 1}}},
        "EditResponse": {"type": "object", "required": ["model", "method", "image", "dist"], "properties": {
            "model": names, "method": {"type": "string", "enum": [TWO_STAGE, LATENT]}, "image": png,
            "state": {**_ref("State"), "description": "the new state (latent) or the one sent (two-stage); "
                                                      "absent for a photo"},
            "dist": {"type": "number", "minimum": 0, "description": "Dist(image, sketch) over the stroked pixels"},
            "steps": {"type": "integer", "minimum": 0, "description": "latent: the steps taken"}}},
        "ProjectResponse": {"type": "object", "required": ["model", "image", "state", "dist", "steps"], "properties": {
            "model": names, "image": {**png, "description": "base64 PNG: G1(z, c) of the state"},
            "state": _ref("State"),
            "dist": {"type": "number", "minimum": 0,
                     "description": "the reconstruction's Dist to the photo (mean L1 over the whole image)"},
            "steps": {"type": "integer", "minimum": 0}}},
        "Health": {"type": "object", "required": ["status", "models", "pid", "inflight", "queue_size", "batching"],
                   "properties": {
                       "status": {"type": "string", "enum": ["ok", "draining"]},
                       "models": {"type": "array", "items": {"type": "string"}},
                       "pid": {"type": "integer"}, "inflight": {"type": "integer", "minimum": 0},
                       "queue_size": {"type": "integer", "minimum": 1},
                       "batching": {"type": "object", "required": ["enabled", "engine_calls", "requests"],
                                    "properties": {"enabled": {"type": "boolean"},
                                                   "engine_calls": {"type": "integer", "minimum": 0},
                                                   "requests": {"type": "integer", "minimum": 0}}}}},
    }
