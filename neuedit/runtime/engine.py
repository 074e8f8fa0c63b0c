"""The ONNX Runtime engine: both stages and the latent editor without PyTorch.

numpy + onnxruntime only (the server imports this, a deployer installs no
torch). It loads the graphs that `neuedit export` wrote into a bundle:

    g1.onnx           z [N, Z], c [N, C]                 -> image [N, 3, R, R]
    g2.onnx           image, sketch [N, 3, R, R], mask [N, 1, R, R] -> edited [N, 3, R, R]
    latent_step.onnx  one step of `neuedit.nn.backend.latent_step` (forward and backward pass
                      in the graph): z_t, c_t, sketch, mask, lr, lr_c, m, v, t, adam, z_anchor,
                      anchor, edit_c -> z_t_next, c_t_next, image, dist, m_next, v_next, t_next

For a bundle with c_dim 0 (shoes, handbags) the graphs have no `c` / `c_t` input and
latent_step no `c_t_next` output (zero-size tensors are fragile in ONNX Runtime); the
ONNX metadata says so under `neuedit_c_input` = "dropped". Each graph carries the
bundle.json it was exported from (metadata key `neuedit_bundle`), which graph it is
(`neuedit_graph`) and the SHA-256 of the safetensors weights it came from
(`neuedit_weights`); `Engine` checks all three at load, so a stale or foreign graph is
refused with an `EngineError` naming the file instead of producing wrong pictures.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime import editing
from neuedit.data.datasets import image_to_model as resize_image  # noqa: F401  (the engine's photo input)
from neuedit.runtime.editing import STEP_INPUTS, STEP_OUTPUTS, StepResult
from neuedit.runtime.schema import Schema
from neuedit.runtime.state import EditConfig, EditState, group_matrix
from neuedit.errors import NeueditError

# ---- the graph contract, shared with neuedit.export (which imports these) -----------------
G1_INPUTS = ("z", "c")
G1_OUTPUTS = ("image",)
G2_INPUTS = ("image", "sketch", "mask")
G2_OUTPUTS = ("edited",)  # ONNX names must be unique: "image" is the input
GRAPH_FILES = {"g1": "g1.onnx", "g2": "g2.onnx", "latent_step": "latent_step.onnx"}
GRAPH_NET = {"g1": "g1", "g2": "g2", "latent_step": "g1"}  # the network whose weights a graph holds
SCALARS = ("lr", "lr_c", "t", "adam", "anchor", "edit_c")  # latent_step's 0-d float inputs

META_BUNDLE = "neuedit_bundle"     # bundle.json (without "onnx") as JSON
META_GRAPH = "neuedit_graph"       # "g1", "g2" or "latent_step"
META_WEIGHTS = "neuedit_weights"   # sha256 of the safetensors file the weights came from
META_C_INPUT = "neuedit_c_input"   # "present", or "dropped" when c_dim is 0
META_EXPORT = "neuedit_export"     # JSON: opset, torch version, folded BatchNorms


class EngineError(NeueditError, RuntimeError):
    """A bundle's ONNX graphs are missing, broken, or do not belong to the bundle; or a
    call the loaded graphs cannot serve."""


def graph_inputs(graph: str, c_dim: int) -> tuple[str, ...]:
    """Input names of `graph` for a bundle with `c_dim` (the `c` inputs are dropped at 0)."""
    names = {"g1": G1_INPUTS, "g2": G2_INPUTS, "latent_step": STEP_INPUTS}[graph]
    return tuple(n for n in names if c_dim or n not in ("c", "c_t"))


def graph_outputs(graph: str, c_dim: int) -> tuple[str, ...]:
    names = {"g1": G1_OUTPUTS, "g2": G2_OUTPUTS, "latent_step": STEP_OUTPUTS}[graph]
    return tuple(n for n in names if c_dim or n != "c_t_next")


def expected_shapes(graph: str, z_dim: int, c_dim: int, r: int) -> dict[str, tuple]:
    """Input shapes of `graph`; None marks the dynamic batch axis."""
    img, msk, w = (None, 3, r, r), (None, 1, r, r), z_dim + c_dim
    table = {"z": (None, z_dim), "c": (None, c_dim), "image": img, "sketch": img, "mask": msk,
             "z_t": (None, z_dim), "c_t": (None, c_dim), "m": (None, w), "v": (None, w),
             "z_anchor": (None, z_dim), **{s: () for s in SCALARS}}
    return {n: table[n] for n in graph_inputs(graph, c_dim)}


def architecture(meta: dict, graph: str) -> dict:
    """The part of a bundle.json a graph depends on: sizes, schema and its network's spec."""
    net = meta.get(GRAPH_NET[graph]) or {}
    return {"z_dim": meta.get("z_dim"), "c_dim": meta.get("c_dim"), "resolution": meta.get("resolution"),
            "schema": meta.get("schema"), "net": {"name": net.get("name"), "kwargs": net.get("kwargs")}}


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_providers(providers: str | list = "auto") -> list[str]:
    """"auto" -> CUDA (then CPU) when onnxruntime-gpu offers it, else CPU; "cpu"/"cuda" or
    full provider names are accepted too."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    short = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
    if isinstance(providers, str):
        if providers == "auto":
            cuda = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
            return cuda + ["CPUExecutionProvider"]
        providers = [providers]
    out = [short.get(p.lower(), p) if isinstance(p, str) else p for p in providers]
    for p in out:
        name = p[0] if isinstance(p, tuple) else p
        if name not in available:
            raise EngineError(f"execution provider {name!r} is not available; this onnxruntime offers "
                              f"{', '.join(available)}")
    return out


class Engine:
    """Generation and both kinds of editing from a bundle's ONNX graphs.

    Arrays in and out are float32 numpy, images [N, 3, R, R] in [-1, 1]. `methods` lists the
    editing methods the bundle's graphs allow: "two-stage" (g2.onnx), "latent" (latent_step.onnx).
    """

    def __init__(self, bundle_dir, providers: str | list = "auto", threads: int | None = None):
        try:
            self.bundle = bundle_mod.read(bundle_dir)
        except bundle_mod.BundleError as e:
            raise EngineError(str(e)) from None
        b = self.bundle
        self.name, self.resolution, self.z_dim, self.c_dim = b.name, b.resolution, b.z_dim, b.c_dim
        self.schema: Schema = b.schema
        self.groups = group_matrix(self.schema, self.c_dim)
        self._providers = resolve_providers(providers)
        self._threads = threads
        if "g1" not in b.meta.get("onnx", {}):
            raise EngineError(f"bundle {b.path} has no ONNX graphs; run `neuedit export {b.path}` first")
        self._sessions = {g: self._load(g) for g in GRAPH_FILES if g in b.meta.get("onnx", {})}
        self.provider: str = self._sessions["g1"].get_providers()[0]
        self.methods: list[str] = ((["two-stage"] if "g2" in self._sessions else [])
                                   + (["latent"] if "latent_step" in self._sessions else []))

    # ---- loading and validation ------------------------------------------------------------
    def _load(self, graph: str):
        import onnxruntime as ort
        b = self.bundle
        try:
            path = b.file(f"onnx:{graph}")
        except bundle_mod.BundleError as e:
            raise EngineError(str(e)) from None
        opts = ort.SessionOptions()
        if self._threads:
            opts.intra_op_num_threads = int(self._threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), opts, providers=self._providers)
        except Exception as e:  # ORT raises several pybind exception types on bad files
            if self._providers == ["CPUExecutionProvider"]:
                raise EngineError(f"{path}: not a loadable ONNX graph ({type(e).__name__}: {e})") from None
            try:  # onnxruntime-gpu without a usable GPU: the CPU must still serve
                sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except Exception:
                raise EngineError(f"{path}: not a loadable ONNX graph ({type(e).__name__}: {e})") from None
        self._validate(graph, path, sess)
        return sess

    def _validate(self, graph: str, path: Path, sess) -> None:
        b = self.bundle
        meta = sess.get_modelmeta().custom_metadata_map
        if META_BUNDLE not in meta:
            raise EngineError(f"{path}: no {META_BUNDLE!r} metadata; not exported by `neuedit export`")
        if meta.get(META_GRAPH) != graph:
            raise EngineError(f"{path}: holds graph {meta.get(META_GRAPH)!r}, expected {graph!r}")
        try:
            onnx_meta = json.loads(meta[META_BUNDLE])
        except json.JSONDecodeError as e:
            raise EngineError(f"{path}: {META_BUNDLE!r} metadata is not JSON ({e})") from None
        mine, theirs = architecture(b.meta, graph), architecture(onnx_meta, graph)
        if mine != theirs:
            diff = [k for k in mine if mine[k] != theirs.get(k)]
            raise EngineError(f"{path}: exported from a different model ({', '.join(diff)} differ from "
                              f"{b.path / 'bundle.json'}); re-export the bundle")
        net = GRAPH_NET[graph]
        weights = b.path / b.meta.get(net, {}).get("weights", "")
        if weights.is_file() and meta.get(META_WEIGHTS) != file_digest(weights):
            raise EngineError(f"{path}: exported from other weights than {weights.name} "
                              f"(the bundle was retrained or the graph copied from another bundle); re-export")
        want = expected_shapes(graph, self.z_dim, self.c_dim, self.resolution)
        got = {i.name: i for i in sess.get_inputs()}
        if set(got) != set(want):
            raise EngineError(f"{path}: inputs {sorted(got)} but a {graph} graph for this bundle takes "
                              f"{sorted(want)}")
        for name, shape in want.items():
            i = got[name]
            if i.type != "tensor(float)":
                raise EngineError(f"{path}: input {name} is {i.type}, expected tensor(float)")
            have = tuple(None if not isinstance(d, int) else d for d in i.shape)
            if len(have) != len(shape) or any(s is not None and h != s for h, s in zip(have, shape)):
                raise EngineError(f"{path}: input {name} has shape {list(i.shape)}, expected "
                                  f"{['N' if s is None else s for s in shape]}")
        outs = tuple(o.name for o in sess.get_outputs())
        if outs != graph_outputs(graph, self.c_dim):
            raise EngineError(f"{path}: outputs {list(outs)}, expected {list(graph_outputs(graph, self.c_dim))}")

    # ---- helpers ---------------------------------------------------------------------------------
    def _run(self, graph: str, feeds: dict) -> dict[str, np.ndarray]:
        sess = self._sessions.get(graph)
        if sess is None:
            raise EngineError(f"bundle {self.name} has no {GRAPH_FILES[graph]}")
        names = graph_inputs(graph, self.c_dim)
        # (not ascontiguousarray: it turns the 0-d scalars into [1])
        outs = sess.run(None, {k: np.asarray(feeds[k], np.float32, order="C") for k in names})
        return dict(zip(graph_outputs(graph, self.c_dim), outs))

    # ---- the editing core's backend (`neuedit.runtime.editing.Backend`) ----------------------------------
    @property
    def has_g2(self) -> bool:
        return "g2" in self._sessions

    def edit2(self, image, sketch, mask) -> np.ndarray:
        return self._run("g2", {"image": image, "sketch": sketch, "mask": mask})["edited"]

    def step(self, feeds: dict) -> dict:
        return self._run("latent_step", feeds)  # without c (c_dim 0) the core keeps c_t itself

    # ---- public API ------------------------------------------------------------------------------
    def generate(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        """G1: z [N, Z], c [N, C] -> image [N, 3, R, R] in [-1, 1] (c may be None when C is 0)."""
        z, c = editing.check_z_c(self, z, c)
        return self._run("g1", {"z": z, "c": c})["image"]  # [N, 3, R, R]

    def render(self, state: EditState) -> np.ndarray:
        return editing.source_image(self, state)

    def two_stage_edit(self, source, sketch, mask) -> np.ndarray:
        """G2 over `source` (an EditState, rendered by G1 first, or images [N, 3, R, R] in
        [-1, 1]) with sketch [N|1, 3, R, R] and mask [N|1, 1, R, R] -> image [N, 3, R, R]."""
        if not self.has_g2:
            raise EngineError(f"bundle {self.name} has no two-stage graph (g2.onnx)")
        return editing.two_stage(self, source, sketch, mask)

    def latent_edit(self, state: EditState, sketch, mask, steps: int, cfg: EditConfig = EditConfig()) -> StepResult:
        """`steps` latent-optimisation steps, as `neuedit.nn.backend.LatentEditor.edit` takes them
        (`neuedit.runtime.editing.latent_edit`): the new state, its image [N, 3, R, R], its Dist [N] and
        the trace [steps + 1, N]. Adam moments carry over in the returned state."""
        if "latent_step" not in self._sessions:
            raise EngineError(f"bundle {self.name} has no latent-editor graph (latent_step.onnx)")
        return editing.latent_edit(self, state, sketch, mask, cfg, steps=steps)
