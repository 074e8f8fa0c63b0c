"""Edit pairs with a known answer: (source, strokes, target) for training and scoring stage two.

An edit pair says what a user's strokes *mean*: starting from `source`, the strokes ask for
`target`. Stage two learns from such pairs (`neuedit.stage2`), and the ground-truth
comparison scores editors against their targets (`neuedit compare`). Four kinds
(docs/method.md, "Edit pairs"):

- **recolour**: the target is a real image; the source is the same image with one
  colour-coherent region (a k-means colour cluster in Lab, one connected component, small
  holes filled) moved to another colour of the domain, its shading kept; the strokes are a
  few brush strokes inside the region in the target's colours. The region, not only the
  stroke pixels, changes between source and target.
- **reshape**: the source has a region of the target replaced (by another image's pixels,
  a blur, or a given fill such as a stage-one sample); the strokes are the target's own
  1-px edge lines in that region (longest fragments first), optionally with a colour stroke.
- **differ**: two given images (stage-one samples with another attribute or a nearby z):
  the strokes are drawn where they differ most, in the target's colours.
- **empty**: no strokes; the target is the source.
- **attribute**: a stage-one sample and the same z with one exclusive attribute changed
  (`G1(z, c)` -> `G1(z, c')`, e.g. another hair colour): the region is everything the change
  touched, the target is `G1(z, c')` there and the source elsewhere (so the background stays),
  and the strokes are a few brush strokes there in the target's colours. This is what a stroke
  on the hair means: the whole hair changes (docs/method.md, "Where an edit's meaning lives").
- **object**: a real photo of an object on a plain background with the whole object moved to
  another colour (its shading kept), in either direction; strokes on the object.

Every function is numpy/OpenCV/scikit-image (no torch) and a pure function of its
arguments and `rng`. Images are uint8 [H, W, 3]; sketches are RGBA uint8 [H, W, 4] as the
web client sends them (`neuedit.runtime.sketch`); regions are bool [H, W] (what the edit changes).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from neuedit.errors import UsageError
from neuedit.synth.strokes import drop_fragments, default_min_fragment, free_form_mask, random_region, \
    stroke_colour, StrokeConfig

KINDS = ("recolour", "reshape", "differ", "empty", "attribute", "object")
FILLS = ("donor", "blur", "given")


@dataclass(frozen=True)
class PairConfig:
    """How edit pairs are drawn; sizes are fractions of the shorter side or of the image area."""
    clusters: tuple[int, int] = (3, 6)            # k-means colour clusters for a recolour region (inclusive)
    region_area: tuple[float, float] = (0.05, 0.5)  # recolour region's area, fraction of the image
    min_shift: float = 25.0                       # smallest Lab distance between a region's old and new colour
    width: tuple[float, float] = (0.03, 0.08)     # colour brush width, fraction of the side
    vertices: tuple[int, int] = (2, 5)            # vertices of a colour stroke's random walk
    length: tuple[float, float] = (0.08, 0.25)    # segment length of a colour stroke, fraction of the side
    p_line_colour: float = 0.3                    # reshape: probability of one colour stroke beside the lines
    differ_quantile: float = 0.8                  # differ: the region is where the difference is above this quantile
    feather: float = 0.7                          # Gaussian sigma (px) of the blend at a region's border
    attribute_delta: float = 15.0                 # attribute: Lab distance above which a pixel changed

    def __post_init__(self):
        if not 2 <= self.clusters[0] <= self.clusters[1]:
            raise UsageError(f"clusters must be (lo, hi) with 2 <= lo <= hi, not {self.clusters}")
        if not 0.0 < self.region_area[0] <= self.region_area[1] <= 1.0:
            raise UsageError(f"region_area must be (lo, hi) in (0, 1], not {self.region_area}")
        if not 0.0 <= self.p_line_colour <= 1.0 or not 0.0 < self.differ_quantile < 1.0:
            raise UsageError("p_line_colour must be in [0, 1] and differ_quantile in (0, 1)")


@dataclass
class Pair:
    """One edit with its answer: source, target uint8 [H, W, 3], sketch RGBA uint8 [H, W, 4],
    region bool [H, W] (where target differs from source by construction), kind (one of KINDS),
    lines bool [H, W] (the strokes that are edge lines; empty for colour-only sketches)."""
    source: np.ndarray
    sketch: np.ndarray
    target: np.ndarray
    region: np.ndarray
    kind: str
    lines: np.ndarray


def _check(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UsageError(f"{name} must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    return image


def to_lab(image: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float32 CIE Lab (L in 0..100)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- regions

def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin
    return (centres ** 2).sum(1)[None] - 2.0 * x @ centres.T


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 8, fit: int = 1024) -> np.ndarray:
    """Lloyd's k-means of x [P, D] -> labels int [P] (numpy, so the result depends on rng
    alone, unlike cv2.kmeans' global generator). Centres start at k distinct points and are
    fitted on at most `fit` points drawn by rng; every point is then labelled."""
    x = x.astype(np.float32)
    sub = x[rng.choice(len(x), fit, replace=False)] if len(x) > fit else x
    uniq = np.unique(sub, axis=0)
    centres = uniq[rng.choice(len(uniq), min(k, len(uniq)), replace=False)]
    for _ in range(iters):
        labels = _nearest(sub, centres).argmin(1)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, sub)
        counts = np.bincount(labels, minlength=len(centres))[:, None]
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    return _nearest(x, centres).argmin(1)


def colour_region(image: np.ndarray, rng: np.random.Generator, cfg: PairConfig = PairConfig()) -> np.ndarray:
    """A colour-coherent region of `image` -> bool [H, W], one 8-connected component.

    The image (median-blurred, so texture and lines do not split it) is clustered in Lab
    with k-means; among the connected components of all clusters, one whose area is within
    `cfg.region_area` is drawn with probability proportional to its area (large regions
    such as hair or a shoe's upper teach the edit to spread). Holes smaller than a quarter
    of it are filled. With no component in range, the one nearest the range is taken.
    """
    image = _check(image, "image")
    h, w = image.shape[:2]
    lab = to_lab(cv2.medianBlur(image, 3)).reshape(-1, 3)
    labels = kmeans(lab * np.array([0.5, 1.0, 1.0], np.float32), int(rng.integers(*cfg.clusters, endpoint=True)), rng)
    labels = labels.reshape(h, w)
    comps, areas = [], []
    for j in np.unique(labels):
        n, cc, stats, _ = cv2.connectedComponentsWithStats((labels == j).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            comps.append((j, i, cc))
            areas.append(stats[i, cv2.CC_STAT_AREA] / (h * w))
    areas = np.array(areas)
    lo, hi = cfg.region_area
    ok = (areas >= lo) & (areas <= hi)
    if ok.any():
        p = np.where(ok, areas, 0.0)
        pick = int(rng.choice(len(areas), p=p / p.sum()))
    else:
        pick = int(np.argmin(np.maximum(lo - areas, areas - hi)))
    _, i, cc = comps[pick]
    region = cc == i
    return fill_holes(region, int(region.sum() // 4))


def fill_holes(region: np.ndarray, max_area: int) -> np.ndarray:
    """bool [H, W] with its holes (background components not touching the border) of at most
    `max_area` pixels filled."""
    n, cc, stats, _ = cv2.connectedComponentsWithStats((~region).astype(np.uint8), connectivity=4)
    h, w = region.shape
    border = np.unique(np.concatenate([cc[0], cc[-1], cc[:, 0], cc[:, -1]]))
    small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] <= max_area and i not in border]
    return region | np.isin(cc, small)


def feathered(region: np.ndarray, sigma: float) -> np.ndarray:
    """bool [H, W] -> float32 [H, W, 1] blend weight, 1 inside, soft over ~1 px at the border."""
    m = region.astype(np.float32)
    if sigma > 0:
        m = np.maximum(m, cv2.GaussianBlur(m, (0, 0), sigma))  # soft outside, exact 1 inside
    return m[..., None]


def recoloured(image: np.ndarray, region: np.ndarray, colour_lab: np.ndarray, feather: float = 0.7) -> np.ndarray:
    """`image` with `region`'s mean Lab colour moved to `colour_lab` [3], its shading (the
    deviations from the mean) kept -> uint8 [H, W, 3]."""
    lab = to_lab(image)
    mean = lab[region].mean(0)
    moved = lab + (np.asarray(colour_lab, np.float32) - mean)
    moved[..., 0] = np.clip(moved[..., 0], 0, 100)
    out = from_lab(moved).astype(np.float32)
    a = feathered(region, feather)
    return np.clip(np.rint(image * (1 - a) + out * a), 0, 255).astype(np.uint8)


def new_colour(region_lab_mean: np.ndarray, donors: np.ndarray, rng: np.random.Generator,
               min_shift: float, tries: int = 20) -> np.ndarray:
    """A colour of the domain (a random pixel of a random donor image [K, H, W, 3]) at least
    `min_shift` away in Lab from the region's mean; failing that, the mean's hue turned half way."""
    for _ in range(tries):
        d = donors[rng.integers(len(donors))]
        y, x = rng.integers(d.shape[0]), rng.integers(d.shape[1])
        c = to_lab(d[y:y + 1, x:x + 1])[0, 0]
        if np.linalg.norm(c - region_lab_mean) >= min_shift:
            return c
    L, a, b = region_lab_mean
    return np.array([np.clip(100 - L, 20, 80), -a - 30 * np.sign(a or 1), -b - 30 * np.sign(b or 1)], np.float32)


# --------------------------------------------------------------------------- strokes

def _blank(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w, 4), np.uint8)


def _paint(rgba: np.ndarray, mask: np.ndarray, colour) -> None:
    rgba[mask, :3] = colour
    rgba[mask, 3] = 255


def strokes_inside(target: np.ndarray, region: np.ndarray, n: int, rng: np.random.Generator,
                   cfg: PairConfig = PairConfig(), weight: np.ndarray | None = None,
                   rgba: np.ndarray | None = None) -> np.ndarray:
    """n brush strokes inside `region`, each coloured from `target` under it -> RGBA [H, W, 4].

    Each stroke starts at a region pixel (drawn uniformly, or proportionally to `weight`
    [H, W] when given) and is cut to the region, so its colour is the target's there.
    """
    h, w = region.shape
    rgba = _blank(h, w) if rgba is None else rgba
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return rgba
    p = None
    if weight is not None:
        p = weight[ys, xs].astype(np.float64) + 1e-9
        p /= p.sum()
    for _ in range(n):
        i = int(rng.choice(len(ys), p=p))
        m = free_form_mask(h, w, rng, vertices=cfg.vertices, width=cfg.width, length=cfg.length,
                           start=(xs[i], ys[i])) & region
        if m.any():
            _paint(rgba, m, stroke_colour(target, m, rng))
    return rgba


def line_strokes(edges: np.ndarray, region: np.ndarray, n: int, colour=(0, 0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """The n longest 8-connected fragments of edge lines `edges` bool [H, W] inside `region`
    (fragments shorter than `default_min_fragment`/2 dropped) -> (RGBA [H, W, 4], lines bool [H, W])."""
    h, w = edges.shape
    cut = drop_fragments(edges & region, max(2, default_min_fragment(h, w) // 2))
    lines = np.zeros((h, w), bool)
    if cut.any():
        k, cc, stats, _ = cv2.connectedComponentsWithStats(cut.astype(np.uint8), connectivity=8)
        order = 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")
        lines = np.isin(cc, order[:n])
    rgba = _blank(h, w)
    _paint(rgba, lines, colour)
    return rgba, lines


# --------------------------------------------------------------------------- the four kinds

def recolour_pair(target: np.ndarray, donors: np.ndarray, n: int, rng: np.random.Generator,
                  cfg: PairConfig = PairConfig()) -> Pair:
    """Target: the real image; source: one colour region of it moved to a donor's colour;
    strokes: n strokes inside the region in the target's colours."""
    return _recolour(target, donors, n, rng, cfg, ask=False)


def recolour_request(image: np.ndarray, donors: np.ndarray, n: int, rng: np.random.Generator,
                     cfg: PairConfig = PairConfig()) -> Pair:
    """A recolour asked of a real image: the source is the image, the target is one colour
    region of it moved to a donor's colour (what a perfect edit would give), and the strokes are
    n strokes inside the region in the new colours (`recolour_pair` the other way round)."""
    return _recolour(image, donors, n, rng, cfg, ask=True)


def _recolour(image: np.ndarray, donors: np.ndarray, n: int, rng: np.random.Generator, cfg: PairConfig,
              ask: bool) -> Pair:
    image = _check(image, "image")
    region = colour_region(image, rng, cfg)
    colour = new_colour(to_lab(image)[region].mean(0), np.asarray(donors), rng, cfg.min_shift)
    moved = recoloured(image, region, colour, cfg.feather)
    source, target = (image, moved) if ask else (moved, image)
    sketch = strokes_inside(target, region, n, rng, cfg)
    return Pair(source, sketch, target, _changed(source, target, region), "recolour", np.zeros_like(region))


def reshape_pair(target: np.ndarray, edges: np.ndarray, n: int, rng: np.random.Generator,
                 cfg: PairConfig = PairConfig(), donor: np.ndarray | None = None, fill: str = "donor",
                 given: np.ndarray | None = None, tries: int = 8) -> Pair:
    """Target: the real image; source: a region of it replaced by `fill` ("donor": the donor
    image's pixels, "blur": a strong blur of the target, "given": the image `given`, e.g. a
    stage-one sample); strokes: the target's n longest edge fragments in the region (1 px),
    plus one colour stroke with probability `cfg.p_line_colour`. Regions are redrawn (up to
    `tries`) until one holds edge lines."""
    target = _check(target, "target")
    if fill not in FILLS:
        raise UsageError(f"fill must be one of {FILLS}, not {fill!r}")
    h, w = target.shape[:2]
    edges = np.asarray(edges, bool)
    for _ in range(tries):
        region = random_region(h, w, rng, StrokeConfig())
        sketch, lines = line_strokes(edges, region, n)
        if lines.any():
            break
    if fill == "blur":
        other = cv2.GaussianBlur(target, (0, 0), 0.12 * min(h, w))
    else:
        other = _check(donor if fill == "donor" else given, fill)
    a = feathered(region, cfg.feather)
    source = np.clip(np.rint(target * (1 - a) + other.astype(np.float32) * a), 0, 255).astype(np.uint8)
    if lines.any() and rng.random() < cfg.p_line_colour:
        colour = strokes_inside(target, region & ~lines, 1, rng, cfg)
        keep = colour[..., 3] > 0
        sketch[keep] = colour[keep]
    return Pair(source, sketch, target, _changed(source, target, region), "reshape", lines)


def differ_pair(source: np.ndarray, target: np.ndarray, n: int, rng: np.random.Generator,
                cfg: PairConfig = PairConfig(), edges: np.ndarray | None = None) -> Pair:
    """Two images that differ (stage-one samples with a changed attribute or a nearby z): the
    region is where their Lab difference is above its `cfg.differ_quantile`; the strokes are n
    brush strokes there in the target's colours, started where the difference is largest, or,
    with `edges` (the target's edge map bool [H, W]), the n longest of its lines there (a shape edit)."""
    source, target = _check(source, "source"), _check(target, "target")
    diff = np.linalg.norm(to_lab(cv2.GaussianBlur(source, (0, 0), 1.0)) - to_lab(cv2.GaussianBlur(target, (0, 0), 1.0)), axis=-1)
    region = diff > max(np.quantile(diff, cfg.differ_quantile), 5.0)
    region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    if edges is not None:
        sketch, lines = line_strokes(np.asarray(edges, bool), region, n)
    else:
        sketch, lines = strokes_inside(target, region, n, rng, cfg, weight=diff ** 2), np.zeros_like(region)
    return Pair(source, sketch, target, region, "differ", lines)


def changed_region(source: np.ndarray, target: np.ndarray, delta: float, min_area: float = 0.004) -> np.ndarray:
    """Where two images of one z differ: Lab distance of the lightly blurred images above `delta`,
    opened, small components (below `min_area` of the image) dropped, holes filled -> bool [H, W]."""
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), 0.8)  # noqa: E731
    diff = np.linalg.norm(to_lab(blur(source)) - to_lab(blur(target)), axis=-1)
    region = cv2.morphologyEx((diff > delta).astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    n, cc, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    h, w = region.shape
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area * h * w]
    return fill_holes(np.isin(cc, big), h * w // 50)


def attribute_pair(source: np.ndarray, changed: np.ndarray, n: int, rng: np.random.Generator,
                   cfg: PairConfig = PairConfig()) -> Pair:
    """`source` = G1(z, c) and `changed` = G1(z, c') (one attribute changed): the target is `changed`
    over the region where the two differ (feathered) and `source` elsewhere; n strokes in the
    region, started where the change is largest, in the target's colours."""
    source, changed = _check(source, "source"), _check(changed, "changed")
    region = changed_region(source, changed, cfg.attribute_delta)
    if not region.any():
        return empty_pair(source)
    a = feathered(cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, cfg.feather)
    target = np.clip(np.rint(source * (1 - a) + changed.astype(np.float32) * a), 0, 255).astype(np.uint8)
    diff = np.linalg.norm(to_lab(source) - to_lab(target), axis=-1)
    sketch = strokes_inside(target, region, n, rng, cfg, weight=diff)
    return Pair(source, sketch, target, _changed(source, target, region), "attribute", np.zeros_like(region))


def object_region(image: np.ndarray, white: float = 90.0, chroma: float = 10.0) -> np.ndarray:
    """The object of a product photo on a plain light background -> bool [H, W]: everything but
    the near-white pixels (L above `white`, Lab chroma below `chroma`) connected to the border,
    holes filled; empty when nothing is left."""
    image = _check(image, "image")
    lab = to_lab(cv2.medianBlur(image, 3))
    light = (lab[..., 0] > white) & (np.hypot(lab[..., 1], lab[..., 2]) < chroma)
    n, cc = cv2.connectedComponents(light.astype(np.uint8), connectivity=4)
    border = np.setdiff1d(np.unique(np.concatenate([cc[0], cc[-1], cc[:, 0], cc[:, -1]])), [0])
    background = np.isin(cc, border) & light
    obj = cv2.morphologyEx((~background).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    return fill_holes(obj, obj.size // 4)


def random_colour(avoid_lab: np.ndarray, rng: np.random.Generator, min_shift: float, tries: int = 20) -> np.ndarray:
    """A colour a person might pick for an object, Lab [3], at least `min_shift` from `avoid_lab`:
    a chromatic one (L 25-75, chroma 25-70, any hue) or, one time in five, a grey from black to white."""
    for _ in range(tries):
        if rng.random() < 0.2:
            c = np.array([rng.uniform(12, 92), rng.normal(0, 2), rng.normal(0, 2)], np.float32)
        else:
            h, ch = rng.uniform(0, 2 * np.pi), rng.uniform(25, 70)
            c = np.array([rng.uniform(25, 75), ch * np.cos(h), ch * np.sin(h)], np.float32)
        if np.linalg.norm(c - avoid_lab) >= min_shift:
            break
    return c


def object_pair(image: np.ndarray, donors: np.ndarray, n: int, rng: np.random.Generator,
                cfg: PairConfig = PairConfig(), ask: bool | None = None) -> Pair:
    """A whole-object recolour of a real product photo: the object (`object_region`) moved to a
    random colour (`random_colour`; `donors` unused, kept for the kinds' common signature) with
    its shading kept. `ask` (default: a coin): the photo is the source and the
    recoloured one the target (what a user asks), else the other way round (the target is real);
    n strokes on the object in the target's colours."""
    image = _check(image, "image")
    region = object_region(image)
    if region.sum() < 0.02 * region.size:
        return empty_pair(image)
    colour = random_colour(to_lab(image)[region].mean(0), rng, cfg.min_shift)
    moved = recoloured(image, region, colour, cfg.feather)
    ask = bool(rng.random() < 0.5) if ask is None else ask
    source, target = (image, moved) if ask else (moved, image)
    sketch = strokes_inside(target, region, n, rng, cfg)
    return Pair(source, sketch, target, _changed(source, target, region), "object", np.zeros_like(region))


def empty_pair(image: np.ndarray) -> Pair:
    """No strokes: the target is the source."""
    image = _check(image, "image")
    h, w = image.shape[:2]
    none = np.zeros((h, w), bool)
    return Pair(image, _blank(h, w), image.copy(), none, "empty", none)


def _changed(source: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The region plus the feathered border pixels that the blend touched."""
    return region | (source != target).any(-1)


# --------------------------------------------------------------------------- stage-one pairs

def nearby_z(z: np.ndarray, rng: np.random.Generator, scale: float = 0.5) -> np.ndarray:
    """(z + scale * noise) / sqrt(1 + scale^2): a neighbour of z [N, z_dim] with the prior's spread;
    entries outside |z| < 0.999 get new noise, as `neuedit.runtime.state.sample_z` redraws them."""
    z = np.asarray(z, np.float64)
    k = np.sqrt(1.0 + scale ** 2)
    noise = rng.standard_normal(z.shape)
    out = (z + scale * noise) / k
    bad = np.abs(out) >= 0.999
    while bad.any():
        noise[bad] = rng.standard_normal(int(bad.sum()))
        out = (z + scale * noise) / k
        bad = np.abs(out) >= 0.999
    return out.astype(np.float32)


def changed_attribute(schema, c: np.ndarray, rng: np.random.Generator,
                      among: tuple[str, ...] = ()) -> tuple[np.ndarray, str]:
    """c [c_dim] (one row) with one exclusive group (of `among` when given, by name) set to another
    of its attributes (none -> one, one -> another, or off for a one-attribute group); with no
    exclusive group, one free attribute flipped -> (c', what changed)."""
    c = np.array(c, np.float32).ravel()
    groups = [(g, s) for g, s in schema.slices() if g.exclusive and (not among or g.name in among)]
    if not groups:
        k = int(rng.integers(len(c)))
        c[k] = 1.0 - float(c[k] > 0.5)
        return c, f"{schema.attributes[k]}: {'on' if c[k] else 'off'}"
    g, s = groups[int(rng.integers(len(groups)))]
    on = np.flatnonzero(c[s] > 0.5)
    cur = int(on[0]) if len(on) else -1
    choices = [k for k in range(len(g.attributes)) if k != cur] or [-1]
    new = choices[int(rng.integers(len(choices)))]
    c[s] = 0.0
    if new >= 0:
        c[s.start + new] = 1.0
    name = lambda k: g.attributes[k] if k >= 0 else "none"  # noqa: E731
    return c, f"{g.name}: {name(cur)} -> {name(new)}"
