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
from neuedit.runtime.sketch import from_rgba
from neuedit.runtime.state import EditConfig, EditState, seed_state, seed_uniforms
from neuedit.server.site import MANIFEST, export_site
from neuedit.server.testing import StaticSite

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
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
    assert set(tiny["graphs"]) == {"g1", "g2", "latent_step", "encoder"}
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
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


DEVICE = """async ([model, seed, rgba, W, steps]) => {
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
  }
  return out;
}"""


def strokes_rgba(w: int = 128) -> np.ndarray:
    """Two antialiased-free bars in two colours, [w, w, 4] uint8, with a half-transparent edge."""
    a = np.zeros((w, w, 4), np.uint8)
    a[w // 8: w // 8 + w // 10, w // 5: 4 * w // 5] = [232, 68, 58, 255]
    a[w // 2: w // 2 + 3, w // 4: 3 * w // 4] = [47, 111, 222, 128]
    return a


@in_browser
@pytest.mark.parametrize("which", ["tiny", "tiny_empty"])
def test_browser_results_equal_the_python_engines(browser, site, which, tiny_exported, tiny_exported_empty, request):
    # same seed, same strokes: the browser's G1, G2 and latent edit (3 Adam steps, c chosen, pasted)
    # match ONNX Runtime in Python within 1e-3 on the [-1, 1] scale
    path = {"tiny": tiny_exported, "tiny_empty": tiny_exported_empty}[which].path
    rgba = strokes_rgba()
    with StaticSite(site) as s:
        page = browser.new_page()
        page.goto(s.url + "web.json")
        got = page.evaluate(DEVICE, [which, 5, rgba.ravel().tolist(), rgba.shape[0], 3])
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
