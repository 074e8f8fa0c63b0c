"""The editors under comparison (latent editor at each step count, two-stage editor) and the stage-one D:
`neuedit.runtime.editor.Editor` on the PyTorch backend, each call timed."""
from __future__ import annotations

import time

import numpy as np
import torch

from neuedit.nn.weights import load_module
from neuedit.runtime.editor import Editor
from neuedit.runtime.state import EditConfig, EditState
from neuedit.compare.config import TWO_STAGE, CompareConfig


class Editors:
    """The editors under comparison, each called on one image and timed."""

    def __init__(self, bundle, cfg: CompareConfig):
        self.editor = Editor.load(bundle, backend="torch", g2=cfg.two_stage)
        self.backend = self.editor.backend
        self.D = load_module(bundle, "d") if "d" in bundle.meta else None
        self.cfg = cfg

    @property
    def methods(self) -> list[str]:
        return self.cfg.methods(self.backend.has_g2)

    def edit(self, method: str, state: EditState | None, image: np.ndarray, from_state: bool,
             sketch: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, EditState | None, float]:
        """One edit -> (result [3, R, R], the latent editor's new state or None, milliseconds).

        The latent editor starts from `state`; the two-stage editor from G1(state) when
        `from_state` (G1 runs inside the timed call, as when serving a sample), else from
        `image` [3, R, R]. sketch [3, R, R], mask [1, R, R].
        """
        t = time.perf_counter()
        if method == TWO_STAGE:
            out = self.editor.two_stage(state if from_state else image[None], sketch[None], mask[None])
            return out[0], None, 1e3 * (time.perf_counter() - t)
        steps = int(method.split("-")[1])
        ec = EditConfig(optimizer=self.cfg.optimizer, lr=self.cfg.lr, steps=steps, anchor=self.cfg.anchor)
        r = self.editor.latent(state, sketch[None], mask[None], ec)
        ms = 1e3 * (time.perf_counter() - t)
        return r.image[0], EditState(r.state.z, r.state.c), ms

    def discriminate(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """D on images [N, 3, R, R] -> (score sigmoid(logit) [N], c_logits [N, c_dim]); nan without D."""
        if self.D is None:
            return np.full(len(images), np.nan), np.full((len(images), self.backend.c_dim), np.nan)
        scores, cls = [], []
        with torch.no_grad():
            for i in range(0, len(images), chunk):
                logit, c_logits = self.D(torch.from_numpy(np.ascontiguousarray(images[i:i + chunk], np.float32)))
                scores.append(torch.sigmoid(logit).numpy())
                cls.append(c_logits.numpy())
        return np.concatenate(scores), np.concatenate(cls)
