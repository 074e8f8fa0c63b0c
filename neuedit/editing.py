"""The editing core, written once over a small backend interface (docs/method.md §3-4).

Everything here is numpy: the two-stage edit, the latent loop (plain gradient descent or
Adam, anchor, restarts, projection of `c`) and the projection of a photo into the latent
space. A backend supplies three forward passes, all on float32 numpy arrays:

    generate(z [N, Z], c [N, C])                              -> image [N, 3, R, R]
    edit2(image, sketch [N, 3, R, R], mask [N, 1, R, R])       -> image [N, 3, R, R]  (G2)
    step(feeds)   one latent step: STEP_INPUTS -> STEP_OUTPUTS, by name

and its sizes (`resolution`, `z_dim`, `c_dim`, `schema`, `has_g2`). `neuedit.editor.TorchBackend`
runs the PyTorch networks (and `neuedit.editor.latent_step`); `neuedit.engine.Engine` runs
the exported ONNX graphs, whose latent step is that same function traced. Nothing here
imports torch, so the server stays torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import NeueditError, UsageError
from .sketch import dist as edit_dist
from .state import EditConfig, EditState, sample_z


# one latent step's feeds and results (`neuedit.editor.latent_step`; the latent_step.onnx contract)
STEP_INPUTS = ("z_t", "c_t", "sketch", "mask", "lr", "m", "v", "t", "adam", "z_anchor", "anchor", "edit_c")
STEP_OUTPUTS = ("z_t_next", "c_t_next", "image", "dist", "m_next", "v_next", "t_next")


class Backend(Protocol):
    resolution: int
    z_dim: int
    c_dim: int
    schema: object          # neuedit.schema.Schema (projection of c, sampling c for restarts)
    has_g2: bool

    def generate(self, z: np.ndarray, c: np.ndarray) -> np.ndarray: ...
    def edit2(self, image: np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> np.ndarray: ...
    def step(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass
class StepResult:
    state: EditState          # the new state
    image: np.ndarray         # [N, 3, R, R] float32 in [-1, 1], of the new state
    dist: np.ndarray          # [N] Dist of `image`
    trace: np.ndarray         # [steps + 1, N] Dist before each step and after the last
    frames: list | None = None  # [N, 3, R, R] images before each step, when asked for


# ---- inputs ------------------------------------------------------------------------------------
def broadcast(a, n: int, channels: int, r: int, what: str) -> np.ndarray:
    """[n|1, ch, R, R] or [ch, R, R] -> [n, ch, R, R] float32 (copied once, not per step)."""
    a = np.asarray(a, np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[1:] != (channels, r, r) or len(a) not in (1, n):
        raise UsageError(f"{what} must be [{n} or 1, {channels}, {r}, {r}], got {list(a.shape)}")
    return np.ascontiguousarray(np.broadcast_to(a, (n, channels, r, r)))


def check_z_c(be: Backend, z, c) -> tuple[np.ndarray, np.ndarray]:
    """z [N, Z] and c [N, C] as float32 (c may be None when C is 0)."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != be.z_dim:
        raise UsageError(f"z must be [N, {be.z_dim}], got {list(z.shape)}")
    if c is None and be.c_dim == 0:
        c = np.zeros((len(z), 0), np.float32)
    c = np.asarray(c, np.float32)
    if be.c_dim == 0 and c.size == 0:
        c = c.reshape(len(z), 0)
    if c.ndim != 2 or c.shape != (len(z), be.c_dim):
        raise UsageError(f"c must be [{len(z)}, {be.c_dim}], got {list(c.shape)}")
    return z, c


def source_image(be: Backend, source) -> np.ndarray:
    """An EditState -> G1's image; an image [N, 3, R, R] (or [3, R, R]) in [-1, 1] is checked."""
    if isinstance(source, EditState):
        source.validate(be.z_dim, be.c_dim)
        return be.generate(source.z, source.c)
    image = np.asarray(source, np.float32)
    if image.ndim == 3:
        image = image[None]
    r = be.resolution
    if image.ndim != 4 or image.shape[1:] != (3, r, r):
        raise UsageError(f"source image must be [N, 3, {r}, {r}] in [-1, 1] (use neuedit.data.image_to_model), "
                         f"got {list(image.shape)}")
    if not np.all(np.isfinite(image)):
        raise UsageError("source image contains NaN or infinity")
    return np.clip(image, -1, 1)


# ---- the two-stage edit ---------------------------------------------------------------------------
def two_stage(be: Backend, source, sketch, mask) -> np.ndarray:
    """I2 = G2(I1, sketch, mask) with I1 = G1(state) or a given image -> [N, 3, R, R]."""
    if not be.has_g2:
        raise NeueditError("this model has no stage-two generator (train one with train-stage2)")
    i1 = source_image(be, source)
    n, r = len(i1), be.resolution
    return be.edit2(i1, broadcast(sketch, n, 3, r, "sketch"), broadcast(mask, n, 1, r, "mask"))


# ---- the latent editor ----------------------------------------------------------------------------
def latent_edit(be: Backend, state: EditState, sketch, mask, cfg: EditConfig = EditConfig(),
                steps: int | None = None, frames: bool = False) -> StepResult:
    """`steps` (default `cfg.steps`) steps from `state` toward sketch [N|1, 3, R, R] / mask.

    One step is the report's interactive "submit"; Adam moments carry over in the returned
    state, so successive calls continue one optimisation."""
    steps = cfg.steps if steps is None else steps
    if steps < 0:
        raise UsageError("steps must be >= 0")
    state.validate(be.z_dim, be.c_dim)
    n, width, r = len(state), be.z_dim + be.c_dim, be.resolution
    sk, mk = broadcast(sketch, n, 3, r, "sketch"), broadcast(mask, n, 1, r, "mask")
    adam = cfg.optimizer == "adam"
    z_t, c_t = state.z_tilde(), state.c_tilde()
    if adam and state.m is not None:
        m, v, t = state.m, state.v, np.float32(state.t)
    else:
        m, v, t = np.zeros((n, width), np.float32), np.zeros((n, width), np.float32), np.float32(0)
    scal = lambda x: np.asarray(x, np.float32)  # noqa: E731  0-d inputs
    fixed = {"sketch": sk, "mask": mk, "lr": scal(cfg.step_size), "adam": scal(float(adam)),
             "z_anchor": z_t, "anchor": scal(cfg.anchor), "edit_c": scal(float(cfg.edit_c))}
    trace, imgs = [], []
    for _ in range(steps):
        out = be.step({**fixed, "z_t": z_t, "c_t": c_t, "m": m, "v": v, "t": scal(t)})
        z_t, m, v, t = out["z_t_next"], out["m_next"], out["v_next"], out["t_next"]
        if be.c_dim:
            c_t = out["c_t_next"]
        trace.append(out["dist"])
        if frames:
            imgs.append(out["image"])
    new = EditState.from_tilde(z_t, c_t, m if adam else None, v if adam else None,
                               int(round(float(t))) if adam else 0)
    if cfg.project_c and be.c_dim and be.schema is not None:
        new.c = be.schema.project(new.c)
    image = be.generate(new.z, new.c)
    d = edit_dist(image, sk, mk).astype(np.float32)
    trace.append(d)
    if frames:
        imgs.append(image)
    return StepResult(new, image, d, np.stack(trace), imgs if frames else None)


def latent_edit_restarts(be: Backend, state: EditState, sketch, mask, cfg: EditConfig, rng: np.random.Generator,
                         frames: bool = False) -> StepResult:
    """Batch mode with `cfg.restarts` starts: the given state plus random z's (same c); keeps
    the start whose final Dist, averaged over the batch, is lowest."""
    best = latent_edit(be, state, sketch, mask, cfg, frames=frames)
    for _ in range(cfg.restarts - 1):
        alt = EditState(sample_z(len(state), be.z_dim, rng), state.c.copy())
        res = latent_edit(be, alt, sketch, mask, cfg, frames=frames)
        if res.dist.mean() < best.dist.mean():
            best = res
    return best


def project(be: Backend, image, steps: int = 200, *, rng: np.random.Generator | None = None,
            c0: np.ndarray | None = None, lr: float = 0.05, candidates: int = 16) -> StepResult:
    """Project photos into G1's latent space (iGAN-style), so the latent editor can start from them.

    The best of `candidates` random z (c: `c0` [N, C] when the labels are known, else sampled
    from the schema), then `steps` Adam steps of the latent editor with the photo as the
    sketch over the whole image: the edit distance is then the mean L1 reconstruction error.
    image [N, 3, R, R] in [-1, 1] -> StepResult (state with N rows, reconstruction, error [N]).
    Images are projected independently (a batch changes nothing but speed)."""
    x = source_image(be, image)
    n, r = len(x), be.resolution
    rng = np.random.default_rng(0) if rng is None else rng
    zs = sample_z(candidates, be.z_dim, rng)
    if c0 is None:
        cs = (be.schema.sample(candidates, rng) if (be.schema is not None and be.c_dim)
              else np.full((candidates, be.c_dim), 0.5, np.float32))
        cs = np.broadcast_to(cs, (n, candidates, be.c_dim))
    else:
        cs = np.repeat(np.asarray(c0, np.float32)[:, None], candidates, 1)
    whole = np.ones((candidates, 1, r, r), np.float32)
    z0, c_start = np.empty((n, be.z_dim), np.float32), np.empty((n, be.c_dim), np.float32)
    for i in range(n):
        rec = be.generate(zs, np.ascontiguousarray(cs[i], np.float32))
        k = int(edit_dist(rec, np.broadcast_to(x[i:i + 1], rec.shape), whole).argmin())
        z0[i], c_start[i] = zs[k], cs[i, k]
    return latent_edit(be, EditState(z0, c_start), x, np.ones((n, 1, r, r), np.float32),
                       EditConfig(optimizer="adam", lr=lr), steps=steps)
