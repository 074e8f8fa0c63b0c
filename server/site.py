"""The page's manifest (`web.json`) and the static site of `neuedit export-web` (docs/serving.md,
"In the browser").

The manifest is everything the in-browser runtime (`static/engine/`) needs beyond the page: the
graph contract (`neuedit.runtime.graphs`: each graph's input and output names and axes), the
editing core's constants and defaults (`neuedit.runtime.state`, `neuedit.runtime.editing`), the
vendored ONNX Runtime Web files, and per model the server's own description (`/api/models`)
plus its graph files with their sizes and sha256 (the page's cache key). The server answers it
at `/web.json` with `"server": true`; `export_site` writes it beside the page, the runtime and
the graphs with `"server": false`, a folder any static file host serves.
"""
from __future__ import annotations

import asyncio
import json
import shutil
from functools import partial
from dataclasses import asdict
from pathlib import Path

from neuedit.errors import UsageError
from neuedit.runtime import editing, state
from neuedit.runtime.editor import Editor
from neuedit.runtime.engine import file_digest
from neuedit.runtime.graphs import GRAPHS
from neuedit.runtime.state import EditConfig

from neuedit.server.api import describe
from neuedit.server.headers import ISOLATION
from neuedit.server.config import PROJECT_STEPS
from neuedit.server.keys import STATIC

MANIFEST = "web.json"
FORMAT, VERSION = "neuedit-web", 1
STATIC_DIR = Path(__file__).resolve().parent / "static"
RUNTIME = {"name": "onnxruntime-web", "version": "1.30.0", "dir": "static/ort/", "entry": "ort.wasm.min.mjs",
           "wasm": "ort-wasm-simd-threaded.wasm"}
MODELS_DIR = "models/"  # graph URLs: models/<model>/<file>, relative to the page


def contract() -> dict:
    """The graph contract as JSON: graph -> file, inputs and outputs ({name, axes}) in graph order."""
    port = lambda p: {"name": p.name, "axes": list(p.axes)}  # noqa: E731
    return {g.name: {"file": g.file, "inputs": [port(p) for p in g.inputs], "outputs": [port(p) for p in g.outputs]}
            for g in GRAPHS.values()}


def constants(max_steps: int) -> dict:
    """The editing core's numbers the browser must share."""
    return {"C_EPS": state.C_EPS, "LOGIT_MAX": state.LOGIT_MAX, "Z_MAX": state.Z_MAX, "T_MAX": state.T_MAX,
            "Z_SAMPLE": state.Z_SAMPLE, "PASTE_CHANGED": editing.PASTE_CHANGED,
            "BLUR_KERNEL": list(editing.BLUR_KERNEL), "PASTE_SMOOTH": editing.PASTE_SMOOTH,
            "SRGB_TO_XYZ": [list(r) for r in editing.SRGB_TO_XYZ],
            "D65_WHITE": list(editing.D65_WHITE), "PROJECT_STEPS": PROJECT_STEPS,
            "PROJECT_LR": editing.PROJECT_LR, "PROJECT_CANDIDATES": editing.PROJECT_CANDIDATES,
            "MAX_STEPS": max_steps}


def defaults(c_dim: int) -> dict:
    """EditConfig's defaults, and its step sizes and pull per optimiser for a model with `c_dim`
    (`lr_c_follows_lr`: a step size given for z~ also steps c~)."""
    d = asdict(EditConfig())
    probe = 0.123
    d["step_sizes"] = {}
    for opt in ("adam", "gd"):
        lr, lr_c = EditConfig(optimizer=opt).step_sizes(c_dim)
        d["step_sizes"][opt] = {"lr": lr, "lr_c": lr_c, "anchor": EditConfig(optimizer=opt).pull(c_dim),
                                "lr_c_follows_lr": EditConfig(optimizer=opt, lr=probe).step_sizes(c_dim)[1] == probe}
    return d


def model_entry(ed: Editor) -> dict:
    """`/api/models`' description of one model, its EditConfig defaults and its graph files."""
    b = ed.bundle
    graphs = {}
    for name in site_graphs(ed):
        path = b.file(f"onnx:{name}")
        graphs[name] = {"url": f"{MODELS_DIR}{ed.name}/{path.name}", "bytes": path.stat().st_size,
                        "sha256": file_digest(path)}
    return {**describe(ed), "defaults": defaults(ed.c_dim), "graphs": graphs}


def runtime_entry(static: Path = STATIC_DIR) -> dict:
    folder = static / "ort"
    files = {f.name: f.stat().st_size for f in sorted(folder.iterdir()) if f.suffix in (".mjs", ".wasm")}
    if RUNTIME["wasm"] not in files or RUNTIME["entry"] not in files:
        raise UsageError(f"{folder} lacks the ONNX Runtime Web files (bash scripts/vendor_onnxruntime_web.sh)")
    return {**RUNTIME, "files": files}


def shell(static: Path = STATIC_DIR) -> list[str]:
    """The page's own files, relative to it, that the service worker keeps for an offline visit
    (the .wasm and the graphs the runtime caches itself)."""
    keep = (".js", ".mjs", ".css")
    return sorted(f"static/{f.relative_to(static).as_posix()}" for f in static.rglob("*")
                  if f.is_file() and f.suffix in keep and f.name != "sw.js")


def manifest(editors: list[Editor], server: bool, max_steps: int, static: Path = STATIC_DIR) -> dict:
    return {"format": FORMAT, "version": VERSION, "server": server, "runtime": runtime_entry(static),
            "shell": shell(static), "contract": contract(), "constants": constants(max_steps),
            "models": [model_entry(e) for e in editors]}


def graph_file(editors: dict[str, Editor], model: str, file: str) -> Path | None:
    """The path of `models/<model>/<file>` when it is one of that model's graphs, else None."""
    ed = editors.get(model)
    if ed is None:
        return None
    for name in GRAPHS:
        if name in ed.bundle.info.onnx and Path(ed.bundle.info.onnx[name]).name == file:
            return ed.bundle.file(f"onnx:{name}")
    return None


# ---- the server's routes ---------------------------------------------------------------------------
async def web_manifest(request):
    """GET /web.json: the manifest with `"server": true` (built once, in the decode pool: it hashes the graphs)."""
    from aiohttp import web

    from neuedit.server.keys import CONFIG, DECODE_POOL, ENGINES, RUNTIME
    app, runtime = request.app, request.app[RUNTIME]
    if runtime.web is None:
        build = partial(manifest, list(app[ENGINES].values()), True, app[CONFIG].max_steps, app[STATIC])
        runtime.web = json.dumps(await asyncio.get_running_loop().run_in_executor(app[DECODE_POOL], build))
    return web.Response(text=runtime.web, content_type="application/json")


async def graph(request):
    """GET /models/{model}/{file}: one of a served model's graphs (404 for anything else)."""
    from aiohttp import web

    from neuedit.server.errors import ApiError
    from neuedit.server.keys import ENGINES
    path = graph_file(request.app[ENGINES], request.match_info["model"], request.match_info["file"])
    if path is None:
        raise ApiError(404, "not_found", "no such graph")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


def export_site(out: str | Path, bundles: list[str], max_steps: int = 50, static: Path = STATIC_DIR) -> dict:
    """Write the static site into `out` (created; an existing non-empty folder must hold an earlier
    site: its web.json): index.html, static/ (page, engine, runtime), models/<name>/ (graphs),
    web.json. -> the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UsageError(f"{out} is not empty and holds no earlier site ({MANIFEST}); choose an empty folder")
    editors = [Editor.load(b, threads=1) for b in bundles]
    names = [e.name for e in editors]
    if len(set(names)) != len(names):
        raise UsageError(f"two bundles share a model name: {', '.join(names)}")
    for e in editors:
        if "latent_step" not in e.bundle.info.onnx and "g2" not in e.bundle.info.onnx:
            raise UsageError(f"{e.bundle.path} has no editing graph (g2.onnx or latent_step.onnx); re-export it")
    site = manifest(editors, server=False, max_steps=max_steps, static=static)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "static").exists():
        shutil.rmtree(out / "static")
    shutil.copytree(static, out / "static", ignore=shutil.ignore_patterns("__pycache__", "*.py", "README.md"))
    for page in ("index.html", "sw.js"):  # at the site's root, as the server has them
        shutil.copy2(static / page, out / page)
    if (out / "models").exists():
        shutil.rmtree(out / "models")
    for e in editors:
        folder = out / MODELS_DIR / e.name
        folder.mkdir(parents=True)
        for name in site_graphs(e):
            shutil.copy2(e.bundle.file(f"onnx:{name}"), folder)
    (out / MANIFEST).write_text(json.dumps(site, indent=1))
    # hosts that read a _headers file (Netlify, Cloudflare Pages) then send the isolation headers
    # that let the page's WebAssembly use threads; elsewhere it runs on one
    (out / "_headers").write_text("/*\n" + "".join(f"  {k}: {v}\n" for k, v in ISOLATION.items()))
    return site


def site_graphs(ed: Editor) -> list[str]:
    return [g for g in GRAPHS if g in ed.bundle.info.onnx]

