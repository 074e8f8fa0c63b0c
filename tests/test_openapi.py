"""/openapi.json describes exactly what the server accepts. Schemathesis, run against a live
server holding the shipped demo models, sends bodies valid by the description (each must get
a 2xx) and bodies invalid by it (each must get a 4xx), and checks every answer's status,
content type and body against the description; never a 5xx."""
from __future__ import annotations

import base64
import collections
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.engine import events
from schemathesis.specs.openapi.formats import unregister_string_format

from neuedit.runtime import bundle as bundle_mod
from neuedit.server.config import ServerConfig
from neuedit.server.testing import ServerThread

SHIPPED = bundle_mod.shipped()
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no shipped models in neuedit/models")

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "positive_data_acceptance", "negative_data_rejection")
MAX_EXAMPLES = 30  # fuzzing cases per operation, on top of the coverage phase's boundary cases


@st.composite
def png_base64(draw) -> str:
    """A small PNG of any mode, base64. JSON Schema cannot say "a PNG", so the description's
    images are strings of `format: byte`; this is what generated ones must hold to be valid."""
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "P"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    img = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA").convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def server():
    # few steps and small caps keep the latent edits and projections fast; the spec follows cfg
    cfg = ServerConfig(bundles=tuple(str(p) for p in SHIPPED), max_steps=2, max_project_steps=2,
                       max_sketch_pixels=256 * 256, max_photo_pixels=256 * 256, inference_threads=1,
                       decode_threads=1, threads=1)
    with ServerThread(cfg) as s:
        yield s


def run_schemathesis(url: str, seed: int = 0) -> tuple[list[str], collections.Counter]:
    """Schemathesis' examples, coverage and fuzzing phases over every operation of the
    document at `url` (no stateful phase: the API is stateless). Returns the failures, one
    line each, and how many cases each operation got."""
    config = schemathesis.Config.from_dict({
        "seed": seed,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"stateful": {"enabled": False}},
    })
    schemathesis.openapi.format("byte", png_base64())
    try:
        schema = schemathesis.openapi.from_url(url + "openapi.json", config=config)
        failures, cases = [], collections.Counter()
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, events.NonFatalError):  # e.g. a schema it cannot generate from
                failures.append(f"{event.label} error: {event.value!r}")
            elif isinstance(event, events.FatalError):
                failures.append(f"fatal error: {event.exception!r}")
            if not isinstance(event, events.ScenarioFinished):
                continue
            rec = event.recorder
            cases[rec.label] += len(rec.cases)
            for case_id, checks in rec.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    case = rec.cases[case_id].value
                    answer = rec.interactions.get(case_id)
                    status = answer.response.status_code if answer and answer.response else None
                    failures.append(f"{rec.label} {check.name}: {failure.title} -> {status}; "
                                    f"{(failure.message.splitlines() or [''])[-1]}; "
                                    f"body {json.dumps(case.body, default=str)[:300]} path {case.path_parameters}")
        return failures, cases
    finally:
        unregister_string_format("byte")


def test_server_answers_as_its_openapi_description_says(server):
    failures, cases = run_schemathesis(server.url)
    assert not failures, "\n".join(dict.fromkeys(failures))
    assert {"POST /api/generate", "POST /api/edit", "POST /api/project", "GET /api/models"} <= set(cases)
    assert min(cases[op] for op in ("POST /api/generate", "POST /api/edit", "POST /api/project")) > MAX_EXAMPLES


def post(server, path: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(server.url + path.lstrip("/"), data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_null_is_not_given_and_vectors_are_flat(server):
    """The choices the description documents: a null field counts as absent (c sampled, the
    default method, m and v absent), and z and c are flat lists of exactly z_dim and c_dim."""
    status, out = post(server, "/api/generate", {"model": "anime", "seed": 1, "c": None})
    assert status == 200 and len(out["state"]["c"]) == 25, out
    state = {**out["state"], "m": None, "v": None, "t": None}
    sketch = stroke_png()
    status, out = post(server, "/api/edit", {"model": "anime", "state": state, "image": None, "method": None,
                                             "sketch": sketch})
    assert status == 200 and out["method"] == "two-stage", out
    for bad in ({**state, "z": [state["z"]]}, {**state, "c": []}):
        status, out = post(server, "/api/edit", {"model": "anime", "state": bad, "sketch": sketch})
        assert (status, out["error"]["code"]) == (400, "bad_state"), out
    # a state's c is its model's: null counts as absent, which a model with a condition refuses
    status, out = post(server, "/api/edit", {"model": "shoes", "state": {"z": [0.0] * 128, "c": None},
                                             "sketch": sketch})
    assert (status, out["error"]["code"]) == (400, "bad_state") and "12 numbers" in out["error"]["message"], out
    status, out = post(server, "/api/edit", {"model": "shoes", "state": {"z": [0.0] * 128, "c": [0.0] * 12, "m": None},
                                             "sketch": sketch})
    assert status == 200, out


def stroke_png() -> str:
    """A red bar on a transparent canvas, base64 PNG."""
    a = np.zeros((16, 16, 4), np.uint8)
    a[4:8, 2:14] = (230, 40, 40, 255)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()
