"""The ONNX Runtime backend of the editing core: G1, G2 and the latent step without PyTorch.

numpy + onnxruntime only (the server imports this, a deployer installs no torch). It loads
the graphs that `neuedit export` wrote into a bundle, as the graph contract
(`neuedit.runtime.graphs`) declares them, and checks each at load: the bundle.json it was
exported from (metadata `neuedit_bundle`), which graph it is (`neuedit_graph`), the SHA-256 of
the weights it came from (`neuedit_weights`), and its inputs and outputs; a stale or foreign
graph is refused with an `EngineError` naming the file instead of producing wrong pictures.
Editing goes through `neuedit.runtime.editor.Editor`, which runs the core on this backend.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.graphs import (DTYPE, GRAPHS, ORT_TYPE, META_BUNDLE, META_GRAPH, META_WEIGHTS, Detail, StepFeeds,
                                    StepOutputs)
from neuedit.runtime.schema import Schema
from neuedit.runtime.state import group_matrix
from neuedit.errors import NeueditError


class EngineError(NeueditError, RuntimeError):
    """A bundle's ONNX graphs are missing, broken, or do not belong to the bundle; or a
    call the loaded graphs cannot serve."""


def architecture(meta: dict, graph: str) -> dict:
    """The part of a bundle.json a graph depends on: sizes, schema and its network's spec."""
    net = meta.get(GRAPHS[graph].net) or {}
    return {"z_dim": meta.get("z_dim"), "c_dim": meta.get("c_dim"), "resolution": meta.get("resolution"),
            "schema": meta.get("schema"), "net": {"name": net.get("name"), "kwargs": net.get("kwargs")},
            "detail": (meta.get("e") or {}).get("kwargs", {}).get("detail") if graph == "g1_detail" else None}


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


class OnnxBackend:
    """The editing core's backend (`neuedit.runtime.editing.Backend`) over a bundle's ONNX graphs.

    Arrays in and out are float32 numpy, images [N, 3, R, R] in [-1, 1]; `graphs` lists the
    graphs loaded (g1 always; g2 and latent_step when exported).
    """

    def __init__(self, bundle_dir, providers: str | list = "auto", threads: int | None = None):
        try:
            self.bundle = bundle_dir if isinstance(bundle_dir, bundle_mod.Bundle) else bundle_mod.read(bundle_dir)
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
        self._sessions = {g: self._load(g) for g in GRAPHS if g in b.meta.get("onnx", {})}
        self.provider: str = self._sessions["g1"].get_providers()[0]
        self.graphs: tuple[str, ...] = tuple(self._sessions)
        self.has_g2, self.has_step = "g2" in self._sessions, "latent_step" in self._sessions
        self.has_encoder = "encoder" in self._sessions and "g1_detail" in self._sessions
        self.detail = Detail.of(b.meta) if self.has_encoder else None

    @classmethod
    def from_bundle(cls, bundle, providers: str | list = "auto", threads: int | None = None) -> "OnnxBackend":
        return cls(bundle, providers, threads)

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
        contract = GRAPHS[graph]
        net = contract.net
        weights = b.path / b.meta.get(net, {}).get("weights", "")
        if weights.is_file() and meta.get(META_WEIGHTS) != file_digest(weights):
            raise EngineError(f"{path}: exported from other weights than {weights.name} "
                              f"(the bundle was retrained or the graph copied from another bundle); re-export")
        want = contract.input_shapes(self.z_dim, self.c_dim, self.resolution, Detail.of(b.meta))
        got = {i.name: i for i in sess.get_inputs()}
        if set(got) != set(want):
            raise EngineError(f"{path}: inputs {sorted(got)} but a {graph} graph for this bundle takes "
                              f"{sorted(want)}")
        for name, shape in want.items():
            i = got[name]
            if i.type != ORT_TYPE:
                raise EngineError(f"{path}: input {name} is {i.type}, expected a {DTYPE} tensor")
            have = tuple(None if not isinstance(d, int) else d for d in i.shape)
            if len(have) != len(shape) or any(s is not None and h != s for h, s in zip(have, shape)):
                raise EngineError(f"{path}: input {name} has shape {list(i.shape)}, expected "
                                  f"{['N' if s is None else s for s in shape]}")
        outs = tuple(o.name for o in sess.get_outputs())
        if outs != contract.output_names(self.c_dim):
            raise EngineError(f"{path}: outputs {list(outs)}, expected {list(contract.output_names(self.c_dim))}")

    # ---- running --------------------------------------------------------------------------------
    def _run(self, graph: str, feeds: dict) -> dict[str, np.ndarray]:
        sess = self._sessions.get(graph)
        if sess is None:
            raise EngineError(f"bundle {self.name} has no {GRAPHS[graph].file}")
        contract = GRAPHS[graph]
        # (not ascontiguousarray: it turns the 0-d scalars into [1])
        outs = sess.run(None, {k: np.asarray(feeds[k], np.float32, order="C") for k in contract.input_names(self.c_dim)})
        return dict(zip(contract.output_names(self.c_dim), outs))

    def generate(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self._run("g1", {"z": z, "c": c})["image"]

    def edit2(self, image, sketch, mask) -> np.ndarray:
        return self._run("g2", {"image": image, "sketch": sketch, "mask": mask})["edited"]

    def encode(self, image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self._run("encoder", {"image": image})
        return out["z_t"], out.get("c_t", np.zeros((len(image), 0), np.float32)), out["r"]

    def generate_detail(self, z: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        return self._run("g1_detail", {"z": z, "c": c, "r": r})["image"]

    def step(self, feeds: StepFeeds) -> StepOutputs:
        # without c (c_dim 0) the graph has no c_t / c_t_next; the core keeps c_t itself
        return StepOutputs.from_dict(self._run("latent_step", feeds.as_dict(self.c_dim)))
