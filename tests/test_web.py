"""The in-browser runtime: the manifest, `neuedit export-web`'s static site, and the page running
the models itself in headless Chromium (onnxruntime-web) with the Python engine's results."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuedit.errors import UsageError
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.editor import Editor
from neuedit.runtime.graphs import GRAPHS
from neuedit.data.datasets import to_uint8
from neuedit.runtime.sketch import from_rgba
from neuedit.runtime.state import EditConfig, EditState, seed_state, seed_uniforms
from neuedit.server.site import MANIFEST, export_site
from neuedit.server.testing import CHROMIUM, StaticSite, mouse_stroke
def in_browser(test):
    """A test that drives Debian's chromium (pytest -m browser)."""
    skip = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")
    return pytest.mark.browser(skip(test))


# ---- the manifest and the site (no browser) ------------------------------------------------------------
def test_seed_stream_is_fixed():
    # the numbers every runtime draws for a seed: changing them changes every seed's picture
    np.testing.assert_allclose(seed_uniforms(3, 0, 3), [0.1633952900, 0.4324573700, 0.1027476400], atol=1e-9)
    a, b = seed_state(7, 16, bundle_mod.read(bundle_mod.shipped()[0]).schema), seed_state(7, 16, None, np.zeros(0))
    np.testing.assert_array_equal(a.z, b.z)  # z does not depend on the schema: a seed keeps its face
    assert np.all(np.abs(a.z) < 0.999) and not np.array_equal(a.z, seed_state(8, 16, None, np.zeros(0)).z)


@pytest.fixture(scope="module")
def site(tiny_exported, tiny_exported_empty, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    export_site(out, [str(tiny_exported.path), str(tiny_exported_empty.path)])
    return out


def test_site_holds_page_runtime_graphs_and_manifest(site, tiny_exported):
    m = json.loads((site / MANIFEST).read_text())
    assert m["server"] is False and [x["name"] for x in m["models"]] == ["tiny", "tiny_empty"]
    for f in ("index.html", "sw.js", "static/app.js", "static/engine/worker.js", "static/ort/LICENSE",
              "static/ort/" + m["runtime"]["wasm"], "static/ort/" + m["runtime"]["entry"]):
        assert (site / f).is_file(), f
    tiny = m["models"][0]
    assert set(tiny["graphs"]) == {"g1", "g2", "latent_step", "encoder", "g1_detail"}
    for g, f in tiny["graphs"].items():  # the site's graphs are the bundle's, byte for byte
        assert (site / f["url"]).read_bytes() == (tiny_exported.path / GRAPHS[g].file).read_bytes()
        assert f["bytes"] == (site / f["url"]).stat().st_size
    # the contract the browser reads is graphs.py's
    assert m["contract"]["latent_step"]["inputs"][0] == {"name": "z_t", "axes": ["N", "Z"]}
    assert [p["name"] for p in m["contract"]["g2"]["outputs"]] == ["edited"]
    assert tiny["defaults"]["paste"] == EditConfig().paste
    assert tiny["defaults"]["step_sizes"]["adam"]["lr"] == EditConfig().step_sizes(tiny["c_dim"])[0]


def test_site_refuses_a_folder_that_is_not_a_site(tmp_path, tiny_exported):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        export_site(tmp_path, [str(tiny_exported.path)])
    assert (tmp_path / "notes.txt").read_text() == "mine"  # nothing lost


def test_site_can_be_rewritten(tmp_path, tiny_exported, tiny_exported_empty):
    export_site(tmp_path / "s", [str(tiny_exported.path), str(tiny_exported_empty.path)])
    export_site(tmp_path / "s", [str(tiny_exported.path)])  # an earlier site is replaced
    assert [x["name"] for x in json.loads((tmp_path / "s" / MANIFEST).read_text())["models"]] == ["tiny"]
    assert not (tmp_path / "s" / "models" / "tiny_empty").exists()


# ---- in the browser ------------------------------------------------------------------------------------
DEVICE = """async ([model, seed, rgba, W, steps, photo]) => {
  const {Device} = await import("./static/engine/device.js");
  const manifest = await (await fetch("web.json")).json();
  const d = await Device.start(manifest, location.href, () => {});
  await d.load(model);
  const sketch = {rgba: Uint8ClampedArray.from(rgba), width: W, height: W};
  const g = await d.api("/api/generate", {model, seed});
  const out = {state: g.state, g1: Array.from(g.raw)};
  const has = manifest.models.find((m) => m.name === model).methods;
  if (has.includes("two-stage")) out.g2 = Array.from((await d.api("/api/edit", {model, method: "two-stage", state: g.state, sketch})).raw);
  if (has.includes("latent")) {
    const r = await d.api("/api/edit", {model, method: "latent", state: g.state, sketch, steps});
    Object.assign(out, {latent: Array.from(r.raw), latent_state: r.state});
    const image = {rgba: Uint8ClampedArray.from(photo), size: g.resolution};  // a photo: projected, edited, carried onto it
    const p = await d.api("/api/edit", {model, method: "latent", image, sketch, steps});
    const q = await d.api("/api/edit", {model, method: "latent", image, sketch, steps, state: p.state});  // continued
    Object.assign(out, {photo: Array.from(p.raw), photo_state: p.state, photo2: Array.from(q.raw)});
  }
  return out;
}"""


def strokes_rgba(w: int = 128) -> np.ndarray:
    """Two antialiased-free bars in two colours, [w, w, 4] uint8, with a half-transparent edge."""
    a = np.zeros((w, w, 4), np.uint8)
    a[w // 8: w // 8 + w // 10, w // 5: 4 * w // 5] = [232, 68, 58, 255]
    a[w // 2: w // 2 + 3, w // 4: 3 * w // 4] = [47, 111, 222, 128]
    return a


# ---- the page, as a person uses it ---------------------------------------------------------------------
def draw(page, strokes):
    """Mouse strokes over the canvas, each a list of (x, y) in [0, 1]."""
    for pts in strokes:
        mouse_stroke(page, pts)


def changes_picture(page, action, timeout=120_000):
    before = page.get_attribute("#image", "src")
    action()
    page.wait_for_function("s => document.getElementById('image').src !== s", arg=before, timeout=timeout)
    page.wait_for_function("() => !document.body.classList.contains('busy')", timeout=timeout)


def watch(page) -> list:
    problems = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    return problems


@pytest.fixture(scope="module")
def shipped_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("shipped-site") / "site"
    export_site(out, [str(p) for p in bundle_mod.shipped()])
    return out


@in_browser
def test_static_site_edits_every_model_with_no_server(browser, shipped_site):
    # `neuedit export-web` + a plain static server: New, strokes, Submit with both methods on every
    # model; the picture changes each time, no request goes to /api/, no console error
    with StaticSite(shipped_site) as s:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = watch(page)
        page.goto(s.url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        assert page.inner_text("#runtime").startswith("on this device")
        assert page.locator("#run option").all_inner_texts() == ["On this device"]  # no server to offer
        for model in ("anime", "shoes", "handbags"):
            if page.input_value("#model") != model:
                changes_picture(page, lambda: page.select_option("#model", model))
            changes_picture(page, lambda: page.click("#regenerate"))
            page.click("#swatches button[title='#e8443a']")
            draw(page, [[(0.25, y), (0.5, y - 0.04), (0.75, y)] for y in (0.3, 0.4, 0.5)])
            page.check("#method-two-stage")
            changes_picture(page, lambda: page.click("#submit"))
            assert "off" in page.inner_text("#info")
            page.check("#method-latent")
            page.fill("#steps", "2")
            changes_picture(page, lambda: page.click("#submit"))
            assert page.inner_text("#runtime").startswith("on this device")
        page.close()
    assert not [r for r in s.requests if "/api/" in r], s.requests
    assert not problems, problems


@in_browser
def test_a_second_visit_starts_without_the_network(browser, site):
    with StaticSite(site) as s:
        ctx = browser.new_context()
        page = ctx.new_page()
        problems = watch(page)
        page.goto(s.url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        first = len(s.requests)
        ctx.set_offline(True)
        page.reload()
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert page.inner_text("#runtime").startswith("on this device")
        changes_picture(page, lambda: page.click("#regenerate"))
        draw(page, [[(0.2, 0.3), (0.8, 0.3)]])
        changes_picture(page, lambda: page.click("#submit"))
        assert len(s.requests) == first  # nothing reached the host
        ctx.close()
    assert not [p for p in problems if "net::ERR_INTERNET_DISCONNECTED" not in p], problems


@in_browser
def test_the_served_page_moves_to_this_device_when_its_runtime_is_ready(browser, tiny_exported, tiny_exported_empty):
    from neuedit.server.config import ServerConfig
    from neuedit.server.testing import ServerThread
    cfg = ServerConfig(bundles=(str(tiny_exported.path), str(tiny_exported_empty.path)), inference_threads=1,
                       decode_threads=1, threads=1)
    with ServerThread(cfg) as srv:
        page = browser.new_page()
        problems = watch(page)
        api = []
        page.on("request", lambda r: "/api/" in r.url and api.append(r.url.rsplit("/", 1)[1]))
        page.goto(srv.url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_function("() => document.body.dataset.runtime === 'device'", timeout=60_000)
        assert page.evaluate("() => crossOriginIsolated")  # the server's headers: WebAssembly threads
        assert "thread" in page.inner_text("#runtime") and page.locator("#load-progress").is_hidden()
        seen = list(api)
        draw(page, [[(0.2, 0.3), (0.8, 0.3)]])
        changes_picture(page, lambda: page.click("#submit"))
        assert api == seen  # the edit ran here
        page.select_option("#run", "server")  # the person can send it to the server again
        page.check("#method-latent")
        changes_picture(page, lambda: page.click("#submit"))
        assert "edit" in api[len(seen):] and page.inner_text("#runtime") == "on the server"
        page.close()
    assert not problems, problems


@in_browser
@pytest.mark.parametrize("which", ["tiny", "tiny_empty", "anime", "shoes"])
def test_browser_results_equal_the_python_engines(browser, which, tiny_exported, tiny_exported_empty, request):
    # same seed, same strokes: the browser's G1, G2 and latent edit (3 Adam steps, c chosen, pasted)
    # match ONNX Runtime in Python within 1e-3 on the [-1, 1] scale; the shipped anime and shoes models
    # are where choosing c and pasting really decide the picture (shoes: a seed's c drawn by the prior)
    if which in ("anime", "shoes"):
        path, folder = next(p for p in bundle_mod.shipped() if p.name == which), request.getfixturevalue("shipped_site")
    else:
        path = {"tiny": tiny_exported, "tiny_empty": tiny_exported_empty}[which].path
        folder = request.getfixturevalue("site")
    rgba = strokes_rgba(100 if which == "tiny_empty" else 128)  # 100 px: the resize of a fractional factor
    with StaticSite(folder) as s:
        page = browser.new_page()
        page.goto(s.url + "web.json")
        ed = Editor.load(path, threads=1)
        photo_rgba = np.concatenate([to_uint8(ed.render(seed_state(9, ed.z_dim, ed.schema)))[0],
                                     np.full((ed.resolution, ed.resolution, 1), 255, np.uint8)], -1)
        photo_rgba[: ed.resolution // 2, :, 0] //= 2  # not a picture G1 draws exactly
        got = page.evaluate(DEVICE, [which, 5, rgba.ravel().tolist(), rgba.shape[0], 3, photo_rgba.ravel().tolist()])
        page.close()
    ed = Editor.load(path, threads=1)
    st = seed_state(5, ed.z_dim, ed.schema)
    assert np.abs(np.array(got["state"]["z"]) - st.z[0]).max() < 1e-6  # the seed names the same picture
    assert got["state"]["c"] == st.c[0].tolist()
    sk, mk = (a[None] for a in from_rgba(rgba, ed.resolution))
    np.testing.assert_allclose(np.array(got["g1"]), ed.render(st).ravel(), atol=1e-3)
    assert ed.methods == ["two-stage", "latent"]
    np.testing.assert_allclose(np.array(got["g2"]), ed.two_stage(st, sk, mk).ravel(), atol=1e-3)
    ref = ed.latent(st, sk, mk, EditConfig(), steps=3)
    np.testing.assert_allclose(np.array(got["latent"]), ref.image.ravel(), atol=1e-3)
    back = EditState.from_dict(got["latent_state"])
    np.testing.assert_allclose(back.z, ref.state.z, atol=1e-4)
    np.testing.assert_allclose(back.c, ref.state.c, atol=1e-4)
    assert back.t == ref.state.t == 3 and (back.z0 is not None) == (ref.state.z0 is not None)
    photo = (photo_rgba[..., :3].astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None]
    # a photo: projected by the encoder (no steps: the same numbers), edited, then continued from
    # the browser's own state (3 steps: equal)
    ref = ed.latent_photo(photo, sk, mk, EditConfig(), steps=3)
    np.testing.assert_allclose(np.array(got["photo"]), ref.image.ravel(), atol=1e-3)
    went = EditState.from_dict(got["photo_state"])
    np.testing.assert_allclose(went.z0, ref.state.z0, atol=1e-4)
    np.testing.assert_allclose(went.r, ref.state.r, atol=1e-4)  # the photo's detail map came back
    more = ed.latent_photo(photo, sk, mk, EditConfig(), steps=3, state=went)
    np.testing.assert_allclose(np.array(got["photo2"]), more.image.ravel(), atol=1e-3)
