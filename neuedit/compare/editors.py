"""The editors under comparison (latent editor at each step count, two-stage editor) and the stage-one D."""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import bundle as bundle_mod
from ..editor import LatentEditor
from ..state import EditConfig, EditState
from .config import TWO_STAGE, CompareConfig


class Editors:
    """The editors under comparison, each called on one image and timed."""

    def __init__(self, bundle, cfg: CompareConfig):
        self.G1 = bundle_mod.load_module(bundle, "g1")
        self.latent = LatentEditor(self.G1, bundle.schema)
        self.G2 = bundle_mod.load_module(bundle, "g2") if (cfg.two_stage and bundle.has_g2) else None
        self.D = bundle_mod.load_module(bundle, "d") if "d" in bundle.meta else None
        self.cfg = cfg

    @property
    def methods(self) -> list[str]:
        return self.cfg.methods(self.G2 is not None)

    def edit(self, method: str, state: EditState | None, image: np.ndarray, from_state: bool,
             sketch: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, EditState | None, float]:
        """One edit -> (result [3, R, R], the latent editor's new state or None, milliseconds).

        The latent editor starts from `state`; the two-stage editor from G1(state) when
        `from_state` (G1 runs inside the timed call, as when serving a sample), else from
        `image` [3, R, R]. sketch [3, R, R], mask [1, R, R].
        """
        t = time.perf_counter()
        if method == TWO_STAGE:
            with torch.no_grad():
                i1 = (self.G1(torch.from_numpy(state.z), torch.from_numpy(state.c)) if from_state
                      else torch.from_numpy(np.ascontiguousarray(image[None], np.float32)))
                out = self.G2(i1, torch.from_numpy(sketch[None]), torch.from_numpy(mask[None]))[0].numpy()
            return out, None, 1e3 * (time.perf_counter() - t)
        steps = int(method.split("-")[1])
        ec = EditConfig(optimizer=self.cfg.optimizer, lr=self.cfg.lr, steps=steps, anchor=self.cfg.anchor)
        r = self.latent.edit(state, sketch[None], mask[None], ec)
        ms = 1e3 * (time.perf_counter() - t)
        return r.image[0], EditState(r.state.z, r.state.c), ms

    def discriminate(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """D on images [N, 3, R, R] -> (score sigmoid(logit) [N], c_logits [N, c_dim]); nan without D."""
        if self.D is None:
            return np.full(len(images), np.nan), np.full((len(images), self.G1.c_dim), np.nan)
        scores, cls = [], []
        with torch.no_grad():
            for i in range(0, len(images), chunk):
                logit, c_logits = self.D(torch.from_numpy(np.ascontiguousarray(images[i:i + chunk], np.float32)))
                scores.append(torch.sigmoid(logit).numpy())
                cls.append(c_logits.numpy())
        return np.concatenate(scores), np.concatenate(cls)
