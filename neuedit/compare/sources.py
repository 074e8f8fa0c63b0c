"""What the editors start from: a stage-one sample's state and image, or a photo and its projection."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from neuedit.data.datasets import to_unit_range
from neuedit.runtime.state import EditState
from neuedit.compare.tasks import Source
from neuedit.compare.config import CompareConfig
from neuedit.runtime.editing import project


@dataclass
class Prepared:
    """Everything the editors start from, for a list of sources."""
    before: np.ndarray        # [N, 3, R, R] the image before the edit (G1's sample or the photo)
    starts: list[EditState]   # the latent editor's start (the sample's state or the projection)
    start_images: np.ndarray  # [N, 3, R, R] G1(start): the latent editor's image before the edit
    start_l1: np.ndarray      # [N] mean |G1(start) - before| (the projection's error; 0 for samples)
    project_ms: float         # projection time per real image (batched), nan without real sources
    projections: list[dict]   # per real source: file, state, dist, l1


def prepare_sources(backend, sources: list[Source], cfg: CompareConfig) -> Prepared:
    """Render the samples with G1 and project the photos (all at once, timed) -> Prepared.
    `backend`: the editing core's (`neuedit.runtime.editing.Backend`)."""
    r = backend.resolution
    before = np.zeros((len(sources), 3, r, r), np.float32)
    starts: list[EditState | None] = [None] * len(sources)
    samples = [i for i, s in enumerate(sources) if s.kind == "sample"]
    reals = [i for i, s in enumerate(sources) if s.kind == "real"]
    if samples:
        z = np.concatenate([sources[i].state.z for i in samples])
        c = np.concatenate([sources[i].state.c for i in samples])
        before[samples] = backend.generate(z, c)
        for i in samples:
            starts[i] = EditState(sources[i].state.z, sources[i].state.c)
    start_l1 = np.zeros(len(sources), np.float32)
    start_images = before.copy()
    projections, project_ms = [], float("nan")
    if reals:
        imgs = np.stack([to_unit_range(sources[i].image) for i in reals])
        before[reals] = imgs
    if reals and cfg.latent_steps:  # only the latent editor starts from a projection
        known = [sources[i].c for i in reals]
        c0 = np.stack(known) if backend.c_dim and all(k is not None for k in known) else None
        t = time.perf_counter()
        res = project(backend, imgs, cfg.project_steps, rng=np.random.default_rng([cfg.seed, 7]), c0=c0,
                      lr=cfg.project_lr, candidates=cfg.project_candidates)
        st, rec = res.state, res.image
        project_ms = 1e3 * (time.perf_counter() - t) / len(reals)
        for j, i in enumerate(reals):
            starts[i] = st.row(j)
            start_images[i] = rec[j]
            start_l1[i] = float(np.abs(rec[j] - imgs[j]).mean())
            projections.append({"file": sources[i].file, "dist": float(res.dist[j]), "l1": float(start_l1[i]),
                                "state": st.row(j).to_dict()})
    return Prepared(before, starts, start_images, start_l1, project_ms, projections)
