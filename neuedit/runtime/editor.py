"""`Editor`: the one editing API over either backend (docs/api.md).

    ed = Editor.load("neuedit/models/anime")                # ONNX Runtime, torch-free
    ed = Editor.load("runs/anime/bundle", backend="torch")  # the PyTorch networks, no export needed
    state = ed.sample(4, seed=0)
    out = ed.two_stage(state, sketch, mask)                 # [4, 3, R, R] in [-1, 1]
    res = ed.latent(state, sketch, mask, steps=30)          # StepResult: state, image, dist, trace

The server, the CLI, the comparison and Python users call this object; it checks its inputs
once and runs the editing core (`neuedit.runtime.editing`) on the backend. Backends are named in
`BACKENDS` and imported when first loaded, so the torch-free runtime never imports PyTorch.
"""
from __future__ import annotations

import importlib
from dataclasses import replace

import numpy as np

from neuedit.errors import NeueditError, UsageError
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime import editing
from neuedit.runtime.editing import Backend, StepResult
from neuedit.runtime.state import EditConfig, EditState, sample_state

__all__ = ["Editor", "EditConfig", "MethodError", "StepResult", "TWO_STAGE", "LATENT"]  # EditConfig: the editor's settings
# backend name -> "module:class" with a `from_bundle(bundle, **options)` constructor
BACKENDS = {"onnx": "neuedit.runtime.engine:OnnxBackend", "torch": "neuedit.nn.backend:TorchBackend"}
TWO_STAGE, LATENT = "two-stage", "latent"


class MethodError(NeueditError, ValueError):
    """An editing method the loaded model does not have."""


class Editor:
    """Generation, the two-stage edit, latent edits and photo projection of one model.

    Arrays are float32 numpy; images [N, 3, R, R] in [-1, 1]; sketch [N|1, 3, R, R] and mask
    [N|1, 1, R, R] (`neuedit.runtime.sketch.decode_png` makes both from an RGBA PNG).
    """

    def __init__(self, backend: Backend, bundle: bundle_mod.Bundle | None = None):
        self.backend, self.bundle = backend, bundle
        self.name = bundle.name if bundle is not None else ""
        self.provider: str = getattr(backend, "provider", "pytorch")  # where it runs, for /api/models
        self.resolution, self.z_dim, self.c_dim = backend.resolution, backend.z_dim, backend.c_dim
        self.schema, self.groups = backend.schema, backend.groups
        self.has_encoder = backend.has_encoder  # photos: the encoder's (z, c) and detail map r
        self.detail = backend.detail            # neuedit.runtime.graphs.Detail of r, None without an encoder
        self.methods: list[str] = ([TWO_STAGE] if backend.has_g2 else []) + ([LATENT] if backend.has_step else [])

    @classmethod
    def load(cls, bundle, backend: str = "onnx", **options) -> "Editor":
        """A bundle folder (or a read `Bundle`) on backend "onnx" (options: providers, threads) or
        "torch" (options: device, g2)."""
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        b = bundle if isinstance(bundle, bundle_mod.Bundle) else bundle_mod.read(bundle)
        module, _, name = BACKENDS[backend].partition(":")
        return cls(getattr(importlib.import_module(module), name).from_bundle(b, **options), b)

    # ---- states and pictures ------------------------------------------------------------------
    def sample(self, n: int, seed: int | None = None, c=None, rng: np.random.Generator | None = None) -> EditState:
        """n random states: z uniform in (-1, 1), c from the schema unless given ([n|1, C])."""
        rng = np.random.default_rng(seed) if rng is None else rng
        return sample_state(n, self.z_dim, self.schema, rng, c)

    def generate(self, z, c=None) -> np.ndarray:
        """G1: z [N, Z], c [N, C] (None when C is 0) -> image [N, 3, R, R]."""
        z, c = editing.check_z_c(self.backend, z, c)
        return self.backend.generate(z, c)

    def render(self, state: EditState) -> np.ndarray:
        return editing.source_image(self.backend, state)

    # ---- the two methods --------------------------------------------------------------------------
    def require(self, method: str) -> None:
        """MethodError unless this model offers `method` ("two-stage" or "latent")."""
        if method not in (TWO_STAGE, LATENT):
            raise UsageError(f"unknown method {method!r}; choose {TWO_STAGE!r} or {LATENT!r}")
        if method not in self.methods:
            why = ("no stage-two generator (train one with train-stage2)" if method == TWO_STAGE
                   else "no latent-editor graph (latent_step.onnx; re-export the bundle)")
            raise MethodError(f"model {self.name or '?'} has {why}")

    def two_stage(self, source, sketch, mask) -> np.ndarray:
        """G2 over `source` (an EditState, drawn by G1 first, or images [N, 3, R, R]) -> [N, 3, R, R]."""
        self.require(TWO_STAGE)
        return editing.two_stage(self.backend, source, sketch, mask)

    def latent(self, state: EditState, sketch, mask, cfg: EditConfig = EditConfig(), steps: int | None = None,
               frames: bool = False, rng: np.random.Generator | None = None) -> StepResult:
        """`steps` (default `cfg.steps`) latent-optimisation steps from `state`; with `cfg.restarts`
        > 1 the best of that many starts (`rng` draws them). Adam moments carry over in the
        returned state, so successive calls continue one optimisation."""
        self.require(LATENT)
        if cfg.restarts > 1:
            if steps is not None:
                cfg = replace(cfg, steps=steps)
            return editing.latent_edit_restarts(self.backend, state, sketch, mask, cfg,
                                                np.random.default_rng(0) if rng is None else rng, frames)
        return editing.latent_edit(self.backend, state, sketch, mask, cfg, steps=steps, frames=frames)

    def latent_photo(self, photo, sketch, mask, cfg: EditConfig = EditConfig(), steps: int | None = None,
                     state: EditState | None = None, project_steps: int | None = None) -> StepResult:
        """A latent edit of photos [N, 3, R, R] that returns the edited photos: their projection edited,
        G1's change carried onto each photo where the strokes concern it, the photo's own pixels
        elsewhere (`neuedit.runtime.editing.latent_photo_edit`). `state`: the one an earlier call
        returned, to continue."""
        self.require(LATENT)
        return editing.latent_photo_edit(self.backend, photo, sketch, mask, cfg, steps, state, project_steps)

    def project(self, image, steps: int | None = None, **kw) -> StepResult:
        """Photos [N, 3, R, R] into the latent space (`neuedit.runtime.editing.project`; steps None:
        its default, none after an encoder)."""
        self.require(LATENT)
        return editing.project(self.backend, image, steps, **kw)
