"""In-browser editing speed and first-load size (docs/benchmarks.md, "In the browser").

    python bench/browser.py [--models anime shoes handbags] [--reps 10]

Exports the shipped models as a static site (`neuedit export-web`) into a temporary folder,
serves it with a plain static server (one WebAssembly thread: no cross-origin isolation) and
with the isolation headers (two threads, whatever the page would choose), and measures in headless Chromium: ms per graph
call with the runtime alone (G1, G2, latent step), ms per two-stage edit and per latent Submit
of one step through the page's runtime (worker round trip, stroke decoding, PNG of the result
included), the marginal ms of each further latent step, first-load megabytes (runtime + the graphs a
generated picture needs; the photo encoder's come with the first photo),
seconds to the first picture on a fresh visit and on a second one (from the cache), and whether
the browser offers WebGPU. Native ONNX Runtime (1 thread) on the same graphs sits beside it.
Prints one table; rows go to bench/results/browser.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

from neuedit.runtime import bundle as bundle_mod  # noqa: E402
from neuedit.runtime.editor import Editor  # noqa: E402
from neuedit.runtime.graphs import example_inputs  # noqa: E402
from neuedit.runtime.sketch import from_rgba  # noqa: E402
from neuedit.runtime.state import EditConfig, seed_state  # noqa: E402
from neuedit.server.site import export_site  # noqa: E402
from neuedit.server.testing import CHROMIUM, CHROMIUM_ARGS, StaticSite  # noqa: E402

CANVAS = 512

PAGE = """<!doctype html><html><body><script type="module">
import {Device} from "./static/engine/device.js";
import {ON_DEMAND} from "./static/engine/core.js";  // graphs that come with the first photo, not the first load
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
async function timed(fn, reps) { const ms = []; for (let i = 0; i < reps; i++) { const t = performance.now(); await fn(); ms.push(performance.now() - t); } return median(ms); }
window.bench = async (model, reps, threads) => {
  const t0 = performance.now();
  const manifest = await (await fetch("web.json")).json();
  const d = await Device.start(manifest, location.href, () => {}, threads);
  await d.load(model);
  const g = await d.api("/api/generate", {model, seed: 3});
  const first_s = (performance.now() - t0) / 1000;
  const m = manifest.models.find((x) => x.name === model), out = {first_s, threads: d.info.threads};
  out.mb = (manifest.runtime.files[manifest.runtime.wasm] + manifest.runtime.files[manifest.runtime.entry]
            + Object.entries(m.graphs).filter(([g]) => !ON_DEMAND.includes(g)).reduce((a, [, f]) => a + f.bytes, 0)) / 1e6;
  for (const graph of Object.keys(m.graphs)) out[graph] = median((await d.call("time", {body: {model, graph, reps}})).ms);
  const W = %(canvas)d, rgba = new Uint8ClampedArray(W * W * 4);
  for (let y = 60; y < 90; y++) for (let x = 100; x < 400; x++) rgba.set([232, 68, 58, 255], 4 * (y * W + x));
  const sketch = {rgba, width: W, height: W};
  if (m.methods.includes("two-stage"))
    out.two_stage = await timed(() => d.api("/api/edit", {model, method: "two-stage", state: g.state, sketch}), reps);
  if (m.methods.includes("latent")) {
    out.latent1 = await timed(() => d.api("/api/edit", {model, method: "latent", state: g.state, sketch, steps: 1}), reps);
    const l11 = await timed(() => d.api("/api/edit", {model, method: "latent", state: g.state, sketch, steps: 11}), 3);
    out.per_step = (l11 - out.latent1) / 10;
  }
  let adapter = null;
  try { adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null; } catch (e) { adapter = null; }
  out.webgpu = adapter ? "adapter" : (navigator.gpu ? "no adapter" : "absent");
  return out;
};
window.ready = true;
</script></body></html>
"""


def browser_rows(site: Path, models: list[str], reps: int) -> list[dict]:
    from playwright.sync_api import sync_playwright
    (site / "bench.html").write_text(PAGE % {"canvas": CANVAS})
    rows = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for isolated in (False, True):
            with StaticSite(site, isolated=isolated) as s:
                for model in models:
                    ctx = b.new_context()  # a fresh visit: empty caches
                    page = ctx.new_page()
                    page.goto(s.url + "bench.html")
                    page.wait_for_function("window.ready === true")
                    r = page.evaluate("([m, n, t]) => bench(m, n, t)", [model, reps, 2 if isolated else 1])
                    page.goto(s.url + "bench.html")  # a second visit: the runtime and graphs from the cache
                    page.wait_for_function("window.ready === true")
                    again = page.evaluate("([m, n, t]) => bench(m, 1, t)", [model, 1, 2 if isolated else 1])
                    ctx.close()
                    rows.append(row(model, f"WebAssembly, {r['threads']} thread{'s' if r['threads'] > 1 else ''}",
                                    r, again["first_s"]))
        b.close()
    return rows


def row(model: str, runtime: str, r: dict, second_s: float | None) -> dict:
    f = lambda k: round(r[k], 1) if r.get(k) is not None else "–"  # noqa: E731
    return {"model": model, "runtime": runtime, "G1 ms": f("g1"), "G2 ms": f("g2"), "step graph ms": f("latent_step"),
            "two-stage edit ms": f("two_stage"), "latent Submit (1 step) ms": f("latent1"),
            "each further step ms": f("per_step"), "first load MB": f("mb"),
            "first picture s": f("first_s"), "second visit s": round(second_s, 2) if second_s is not None else "–",
            "WebGPU": r.get("webgpu", "–")}


def native_rows(models: list[str], reps: int) -> list[dict]:
    rows = []
    for model in models:
        path = next(p for p in bundle_mod.shipped() if p.name == model)
        ed = Editor.load(path, threads=1)
        be = ed.backend
        r = {}
        for graph in be.graphs:
            feeds = example_inputs(graph, ed.z_dim, ed.c_dim, ed.resolution, n=1)
            r[graph] = median_ms(lambda: be._run(graph, feeds), reps)
        st = seed_state(3, ed.z_dim, ed.schema)
        rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
        rgba[60:90, 100:400] = [232, 68, 58, 255]
        if "g2" in be.graphs:
            r["two_stage"] = median_ms(lambda: ed.two_stage(st, *[a[None] for a in from_rgba(rgba, ed.resolution)]), reps)
        if "latent_step" in be.graphs:
            lat = lambda k: ed.latent(st, *[a[None] for a in from_rgba(rgba, ed.resolution)], EditConfig(), steps=k)  # noqa: E731
            r["latent1"] = median_ms(lambda: lat(1), reps)
            r["per_step"] = (median_ms(lambda: lat(11), 3) - r["latent1"]) / 10
        rows.append(row(model, "native ONNX Runtime, 1 thread", r, None))
    return rows


def median_ms(fn, reps: int) -> float:
    fn()
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["anime", "shoes", "handbags"])
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        export_site(site, [str(p) for p in bundle_mod.shipped() if p.name in args.models])
        rows = browser_rows(site, args.models, args.reps)
    rows += native_rows(args.models, args.reps)
    rows.sort(key=lambda r: (args.models.index(r["model"]), r["runtime"]))
    report(rows, "In-browser editing (headless Chromium, this CPU) beside native ONNX Runtime",
           Path(__file__).resolve().parent / "results" / "browser.json")


if __name__ == "__main__":
    main()
