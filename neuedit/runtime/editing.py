"""The editing core, written once over a small backend interface (docs/method.md §3-4).

Everything here is numpy: the two-stage edit, the latent loop (plain gradient descent or
Adam, anchor, restarts, projection of `c`) and the projection of a photo into the latent
space. A backend supplies these passes, all on float32 numpy arrays:

    generate(z [N, Z], c [N, C])                              -> image [N, 3, R, R]
    edit2(image, sketch [N, 3, R, R], mask [N, 1, R, R])       -> image [N, 3, R, R]  (G2)
    step(StepFeeds) -> StepOutputs                             one latent step (the graph contract)
    encode(image) -> (z_t, c_t, r [N, F, S, S])                the photo encoder, when it has one
    generate_detail(z, c, r)                                   -> image: G1 with a photo's detail r

and its sizes (`resolution`, `z_dim`, `c_dim`, `schema`, `groups`, `has_g2`, `has_step`,
`has_encoder`, `detail`). A state with a detail `r` (a projected photo) is drawn by
`generate_detail`; the latent step moves its (z, c) on G1 alone, and r rides along, so the
picture stays the photo where (z, c)'s change leaves it alone (docs/method.md, "Photos").
`neuedit.nn.backend.TorchBackend` runs the PyTorch networks (and `neuedit.nn.backend.latent_step`);
`neuedit.runtime.engine.OnnxBackend` runs the exported ONNX graphs, whose latent step is that same
function traced. Callers go through `neuedit.runtime.editor.Editor`, which checks that a method
exists once. Nothing here imports torch, so the server stays torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from neuedit.errors import UsageError
from neuedit.runtime.sketch import dist as edit_dist
from neuedit.runtime.graphs import StepFeeds, StepOutputs
from neuedit.runtime.state import EditConfig, EditState, sample_z, seed_state


class Backend(Protocol):
    resolution: int
    z_dim: int
    c_dim: int
    schema: object          # neuedit.runtime.schema.Schema (projection of c, sampling c for restarts)
    groups: np.ndarray      # [C, C] the schema's group matrix (`neuedit.runtime.state.group_matrix`)
    has_g2: bool            # edit2 works
    has_step: bool          # step works
    has_encoder: bool       # encode and generate_detail work
    detail: object          # neuedit.runtime.graphs.Detail of the encoder's r (None without an encoder)

    def generate(self, z: np.ndarray, c: np.ndarray) -> np.ndarray: ...
    def edit2(self, image: np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> np.ndarray: ...
    def step(self, feeds: StepFeeds) -> StepOutputs: ...
    def encode(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...  # (z_t, c_t, r)
    def generate_detail(self, z: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray: ...


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


def draw(be: Backend, z: np.ndarray, c: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
    """G1's picture of (z, c), with a photo's detail r (flat [N, F * S * S], as states hold it) when there is one."""
    if r is None:
        return be.generate(z, c)
    d = be.detail
    return be.generate_detail(z, c, np.ascontiguousarray(r).reshape(len(z), d.channels, d.size, d.size))


def source_image(be: Backend, source) -> np.ndarray:
    """An EditState -> its picture (`draw`); an image [N, 3, R, R] (or [3, R, R]) in [-1, 1] is checked."""
    if isinstance(source, EditState):
        source.validate(be.z_dim, be.c_dim, be.detail)
        return draw(be, source.z, source.c, source.r)
    image = np.asarray(source, np.float32)
    if image.ndim == 3:
        image = image[None]
    r = be.resolution
    if image.ndim != 4 or image.shape[1:] != (3, r, r):
        raise UsageError(f"source image must be [N, 3, {r}, {r}] in [-1, 1] (use neuedit.data.datasets.image_to_model), "
                         f"got {list(image.shape)}")
    if not np.all(np.isfinite(image)):
        raise UsageError("source image contains NaN or infinity")
    return np.clip(image, -1, 1)


# ---- the two-stage edit ---------------------------------------------------------------------------
def two_stage(be: Backend, source, sketch, mask) -> np.ndarray:
    """I2 = G2(I1, sketch, mask) with I1 = G1(state) or a given image -> [N, 3, R, R]."""
    i1 = source_image(be, source)
    n, r = len(i1), be.resolution
    return be.edit2(i1, broadcast(sketch, n, 3, r, "sketch"), broadcast(mask, n, 1, r, "mask"))


# ---- the latent editor ----------------------------------------------------------------------------
PASTE_CHANGED = 0.1  # `paste_region`: a pixel G1 moved by more than this (max over RGB, [-1, 1]) may take the change
BLUR_KERNEL = (1, 4, 6, 4, 1)  # `_blur`'s separable kernel, over its sum
PASTE_SMOOTH = 2  # `paste` adds G1's change smoothed by `_blur` this many times (sigma ~1.4 px): the new
#                   colour, not G1's redrawing of strands and lines, so the picture keeps its own detail
SRGB_TO_XYZ = ((0.4124, 0.2126, 0.0193), (0.3576, 0.7152, 0.1192), (0.1805, 0.0722, 0.9505))  # `_lab`: linear RGB @ this
D65_WHITE = (0.95047, 1.0, 1.08883)


def _lab(x: np.ndarray) -> np.ndarray:
    """[N, 3, R, R] in [-1, 1] (sRGB) -> CIELAB [N, R, R, 3] (D65), numpy: the server has no scikit-image."""
    rgb = np.clip((x.transpose(0, 2, 3, 1) + 1.0) / 2.0, 0.0, 1.0).astype(np.float64)
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = lin @ np.array(SRGB_TO_XYZ)
    xyz /= np.array(D65_WHITE)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _blur(a: np.ndarray) -> np.ndarray:
    """[N, R, R] smoothed by the separable kernel [1, 4, 6, 4, 1] / 16 (a Gaussian of sigma ~1 px), edges clamped."""
    k = np.array(BLUR_KERNEL, np.float64) / sum(BLUR_KERNEL)
    for axis in (1, 2):
        p = np.pad(a, [(0, 0)] + [(2, 2) if ax == axis else (0, 0) for ax in (1, 2)], mode="edge")
        a = sum(k[i] * np.take(p, np.arange(i, i + a.shape[axis]), axis=axis) for i in range(5))
    return a


def paste_region(source: np.ndarray, mask: np.ndarray, edited: np.ndarray, tol: float,
                 changed: float = PASTE_CHANGED, reference: np.ndarray | None = None) -> np.ndarray:
    """Where the picture may change -> weights [N, 1, R, R] in [0, 1]: the pixels of `source` whose
    colour lies within `tol` (CIE76 ΔE) of the median colour under the strokes (mask [N, 1, R, R])
    and that `edited` changed by more than `changed` (max over RGB, [-1, 1] scale) from `reference`
    (default: `source`), softened by ~1 px; the stroke pixels themselves always take the change.
    Three strokes on the hair: the hair, not the face that G1's condition redraws with it."""
    lab = _lab(source)
    on = mask[:, 0] > 0
    w = np.zeros(on.shape, np.float64)
    for i in range(len(source)):
        if on[i].any():
            ref = np.median(lab[i][on[i]], 0)
            w[i] = np.clip(1.5 - np.sqrt(((lab[i] - ref) ** 2).sum(-1)) / tol, 0.0, 1.0)
    before = source if reference is None else reference
    moved = _blur((np.abs(edited - before).max(1) > changed).astype(np.float64))
    w = np.clip(1.5 * _blur(w) * np.clip(2 * moved, 0, 1), 0.0, 1.0)
    return np.maximum(w, mask[:, 0] > 0)[:, None].astype(np.float32)  # the stroke pixels: what was asked there


def smooth_change(edited: np.ndarray, before: np.ndarray, passes: int = PASTE_SMOOTH) -> np.ndarray:
    """`edited - before` [N, 3, R, R], each channel smoothed by `_blur` `passes` times."""
    d = (edited - before).astype(np.float64)
    n, ch, r, _ = d.shape
    d = d.reshape(n * ch, r, r)
    for _ in range(passes):
        d = _blur(d)
    return d.reshape(n, ch, r, r)


def paste(source: np.ndarray, edited: np.ndarray, mask: np.ndarray, tol: float,
          reference: np.ndarray | None = None) -> np.ndarray:
    """The change the edit made, smoothed (`smooth_change`), added to `source` inside `paste_region`;
    `source`'s own pixels exactly elsewhere (Neural Photo Editor's masked change) -> [N, 3, R, R].
    The change is `edited - source`, or with `reference` (G1's picture the edit started from, when
    `source` is a photo it only resembles) `edited - reference`. Smoothed, it carries the new colour
    and leaves the picture its own strands, lines and eyes (docs/comparison.md, "Edits that do what
    the strokes ask"). tol <= 0 without a reference: `edited` itself."""
    if reference is None and tol <= 0:
        return edited
    before = source if reference is None else reference
    w = paste_region(source, mask, edited, tol, reference=reference) if tol > 0 else np.ones_like(mask)
    return np.where(w > 0, np.clip(source + w * smooth_change(edited, before), -1, 1), source).astype(np.float32)


def latent_photo_edit(be: Backend, photo, sketch, mask, cfg: EditConfig = EditConfig(), steps: int | None = None,
                      state: EditState | None = None, project_steps: int | None = None) -> StepResult:
    """A latent edit of a photo [N, 3, R, R]: its projection (`project`, unless `state` continues an
    earlier photo edit: the state it returned) is edited by `latent_edit`, and the change G1 made
    (`G1(new) - G1(projection)`, G1's own pictures: through the photo's detail map the same change
    comes out at about half its strength, docs/benchmarks.md) is carried onto the photo where the
    strokes concern it (`paste` with G1's projection picture as reference); everywhere else the
    result is the photo itself. The returned state keeps the projection as its z0, c0 (and its
    detail r): send it back with the same photo to continue."""
    x = source_image(be, photo)
    start = project(be, x, project_steps).state if state is None else state
    # edited without its detail, so res.image is G1's own picture of the new (z, c)
    res = latent_edit(be, replace(start, r=None), sketch, mask, replace(cfg, paste=0.0), steps=steps)
    z0, c0 = (start.z0, start.c0) if start.z0 is not None else (start.z, start.c)
    res.state.z0, res.state.c0, res.state.r = z0.copy(), c0.copy(), start.r
    n, r = len(x), be.resolution
    mk = broadcast(mask, n, 1, r, "mask")
    image = paste(x, res.image, mk, cfg.paste, reference=be.generate(z0, c0))
    d = edit_dist(image, broadcast(sketch, n, 3, r, "sketch"), mk).astype(np.float32)
    return StepResult(res.state, image, d, np.concatenate([res.trace[:-1], d[None]]))


def choose_c(be: Backend, state: EditState, sketch: np.ndarray, mask: np.ndarray, chunk: int = 64) -> np.ndarray:
    """c [N, C] per row: the state's own c or one of its single swaps (one exclusive group set to one
    of its values), whichever G1 draws nearest the strokes (Dist). A colour stroke on the hair then
    picks the hair colour it names in one batched pass, before any step refines it."""
    n, c_dim = len(state), be.c_dim
    swaps = [(s, k) for g, s in be.schema.slices() if g.exclusive and len(g.attributes) > 1
             for k in range(s.start, s.stop)]
    cands = np.repeat(state.c[:, None], 1 + len(swaps), 1)  # [N, K, C]
    for j, (s, k) in enumerate(swaps, 1):
        cands[:, j, s] = 0.0
        cands[:, j, k] = 1.0
    kk = cands.shape[1]
    z = np.repeat(state.z, kk, 0)
    flat = cands.reshape(n * kk, c_dim)
    sk, mk = np.repeat(sketch, kk, 0), np.repeat(mask, kk, 0)
    d = np.concatenate([edit_dist(be.generate(z[i:i + chunk], flat[i:i + chunk]), sk[i:i + chunk], mk[i:i + chunk])
                        for i in range(0, n * kk, chunk)]).reshape(n, kk)
    return cands[np.arange(n), d.argmin(1)].astype(np.float32)


def latent_edit(be: Backend, state: EditState, sketch, mask, cfg: EditConfig = EditConfig(),
                steps: int | None = None, frames: bool = False) -> StepResult:
    """`steps` (default `cfg.steps`) steps from `state` toward sketch [N|1, 3, R, R] / mask.

    One step is the page's Submit; Adam moments carry over in the returned
    state, so successive calls continue one optimisation. With `cfg.paste` the returned picture
    is the one the edit started from (the state's z0, c0, else its own z, c; kept in the returned
    state) with G1's change pasted where the strokes concern it (`paste`)."""
    steps = cfg.steps if steps is None else steps
    if steps < 0:
        raise UsageError("steps must be >= 0")
    state.validate(be.z_dim, be.c_dim, be.detail)
    n, width, r = len(state), be.z_dim + be.c_dim, be.resolution
    detail = state.r  # a photo's detail rides along: the steps move (z, c) on G1 alone
    sk, mk = broadcast(sketch, n, 3, r, "sketch"), broadcast(mask, n, 1, r, "mask")
    adam = cfg.optimizer == "adam"
    origin = (state.z0, state.c0) if state.z0 is not None else (state.z, state.c)
    if cfg.choose_c and cfg.edit_c and steps and be.c_dim and be.schema is not None:
        state = EditState(state.z, choose_c(be, state, sk, mk), state.m, state.v, state.t)
    z_t, c_t = state.z_tilde(), state.c_tilde(be.groups)
    if adam and state.m is not None:
        m, v, t = state.m, state.v, np.float32(state.t)
    else:
        m, v, t = np.zeros((n, width), np.float32), np.zeros((n, width), np.float32), np.float32(0)
    scal = lambda x: np.asarray(x, np.float32)  # noqa: E731  0-d inputs
    lr, lr_c = cfg.step_sizes(be.c_dim)
    feeds = StepFeeds(z_t=z_t, c_t=c_t, sketch=sk, mask=mk, lr=scal(lr), lr_c=scal(lr_c), m=m, v=v, t=scal(t),
                      adam=scal(float(adam)), z_anchor=z_t, anchor=scal(cfg.pull(be.c_dim)), edit_c=scal(float(cfg.edit_c)))
    trace, imgs = [], []
    for _ in range(steps):
        out = be.step(feeds)
        feeds.z_t, feeds.m, feeds.v, feeds.t = out.z_t_next, out.m_next, out.v_next, out.t_next
        if be.c_dim:
            feeds.c_t = out.c_t_next
        trace.append(out.dist)
        if frames:
            imgs.append(out.image)
    z_t, c_t, m, v, t = feeds.z_t, feeds.c_t, feeds.m, feeds.v, feeds.t
    new = EditState.from_tilde(z_t, c_t, be.groups, m if adam else None, v if adam else None,
                               int(round(float(t))) if adam else 0)
    if not (cfg.edit_c and steps):
        new.c = state.c.copy()  # c did not move: keep it exactly (the logits clamp one-hot values)
    if cfg.project_c and be.c_dim and be.schema is not None:
        new.c = be.schema.project(new.c)
    new.r = detail
    if cfg.paste > 0 and steps:  # against the picture the edit started from, over all its calls
        z0, c0 = origin
        g1 = be.generate(new.z, new.c)
        if detail is None:
            image = paste(be.generate(z0, c0), g1, mk, cfg.paste)
        else:  # a photo's state: G1's own change carried onto the photo's picture (docs/method.md, "Photos")
            image = paste(draw(be, z0, c0, detail), g1, mk, cfg.paste, reference=be.generate(z0, c0))
        new.z0, new.c0 = z0.copy(), c0.copy()
    else:
        image = draw(be, new.z, new.c, detail)
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
        alt = EditState(sample_z(len(state), be.z_dim, rng), state.c.copy(), r=state.r)
        res = latent_edit(be, alt, sketch, mask, cfg, frames=frames)
        if res.dist.mean() < best.dist.mean():
            best = res
    return best


PROJECT_LR = 0.05       # a projection's Adam step size (z~ and c~)
PROJECT_CANDIDATES = 16  # random starts a projection without an encoder picks the nearest of
PROJECT_STEPS = 100     # a projection's default refinement steps without an encoder (with one: none)


def default_project_steps(has_encoder: bool) -> int:
    """A projection's refinement steps when none are asked for: none after the encoder (its detail r
    draws the photo; steps on (z, c) alone, r held, move away from it: docs/benchmarks.md,
    "Projection of photos"), else `PROJECT_STEPS` from the best random start."""
    return 0 if has_encoder else PROJECT_STEPS


def project(be: Backend, image, steps: int | None = None, *, rng: np.random.Generator | None = None,
            c0: np.ndarray | None = None, lr: float = PROJECT_LR, candidates: int = PROJECT_CANDIDATES, encoder: bool = True) -> StepResult:
    """Project photos into G1's latent space, so the latent editor can start from them.

    The start is the bundle's encoder's guess (iGAN's hybrid projection, Zhu et al. 2016) and the
    photo's detail r when it has one and `encoder` is on, else the best of `candidates` random z
    (c: `c0` [N, C] when the labels are known, else sampled from the schema); then `steps`
    (default `default_project_steps`) Adam steps of the latent editor with the photo as the sketch
    over the whole image: the edit distance is then the mean L1 reconstruction error.
    image [N, 3, R, R] in [-1, 1] -> StepResult (state with N rows, reconstruction, error [N]).
    Images are projected independently (a batch changes nothing but speed)."""
    x = source_image(be, image)
    n, r = len(x), be.resolution
    use_encoder = encoder and be.has_encoder
    steps = default_project_steps(use_encoder) if steps is None else steps
    if use_encoder:
        z_t, c_t, detail = be.encode(x)
        start = EditState.from_tilde(z_t, c_t, be.groups)
        start.r = detail.reshape(n, -1)
        if c0 is not None:
            start.c = np.asarray(c0, np.float32)
    else:
        start = _best_random_start(be, x, rng, c0, candidates)
    return latent_edit(be, start, x, np.ones((n, 1, r, r), np.float32),
                       EditConfig(optimizer="adam", lr=lr, lr_c=lr, anchor=0.0, paste=0.0), steps=steps)


def _best_random_start(be: Backend, x: np.ndarray, rng, c0, candidates: int) -> EditState:
    """Per photo, the one of `candidates` random (z, c) whose G1 picture is nearest it (L1). The
    candidates are the pictures seeds 0, 1, ... name (`seed_state`, the same in the browser), or
    draws of `rng` when one is given."""
    n, r = len(x), be.resolution
    with_c = be.schema is not None and be.c_dim
    if rng is None:
        seeded = [seed_state(j, be.z_dim, be.schema) if with_c else seed_state(j, be.z_dim, None, np.zeros(0))
                  for j in range(candidates)]
        zs = np.concatenate([s.z for s in seeded])
        cs = np.concatenate([s.c for s in seeded]) if with_c else None
    else:
        zs = sample_z(candidates, be.z_dim, rng)
        cs = be.schema.sample(candidates, rng) if with_c else None
    if c0 is None:
        cs = cs if cs is not None else np.full((candidates, be.c_dim), 0.5, np.float32)
        cs = np.broadcast_to(cs, (n, candidates, be.c_dim))
    else:
        cs = np.repeat(np.asarray(c0, np.float32)[:, None], candidates, 1)
    whole = np.ones((candidates, 1, r, r), np.float32)
    z0, c_start = np.empty((n, be.z_dim), np.float32), np.empty((n, be.c_dim), np.float32)
    for i in range(n):
        rec = be.generate(zs, np.ascontiguousarray(cs[i], np.float32))
        k = int(edit_dist(rec, np.broadcast_to(x[i:i + 1], rec.shape), whole).argmin())
        z0[i], c_start[i] = zs[k], cs[i, k]
    return EditState(z0, c_start)
