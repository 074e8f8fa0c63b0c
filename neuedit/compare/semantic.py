"""The semantic tasks and their judge: did the edit happen, and what did it keep? (docs/comparison.md,
"Edits that do what the strokes ask")

PSNR against a target rewards an editor that changes nothing; this benchmark asks what a person
asks. Each task is a source picture (a stage-one sample or a held-out real photo) and strokes a
person would draw for one request:

- **hair** (anime): three brush strokes across the top of the head in a hair colour;
- **eyes** (anime, stage-one samples): a short stroke on each eye in an eye colour (the eyes are
  found where G1 redraws them when only the eye colour changes);
- **object** (shoes, handbags): two strokes across the object in a colour.

Stroke colours come from a palette: for hair, the median colour of the top of the head in real
training faces labelled with that colour; for eyes, the median colour G1 gives eyes of that colour;
for objects, a fixed list of colours a person picks. Scores per task:

- **success**: for anime, the evaluation classifier (trained on real labelled faces, not D) names the
  requested value on the edited picture with the stroke pixels (dilated by 1 px) put back from the
  source, so only a change of the *rest* counts; for objects, the object's mean CIEDE2000 to the
  stroke colour (stroke pixels left out) at most half of what it was;
- **kept**: face-centre SSIM of the grey image (rows 22-60, columns 12-52 of a 64 px face), the other
  attribute groups predicted as before; for objects the F1 of the source's Canny edges in the result;
- **real**: the learned-feature KID of the edited pictures against held-out real ones, beside the
  sources' own.

Everything is numpy. The comparison's semantic kind (`neuedit.compare.kind_semantic`) draws the batches,
runs the editors on them and reports.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuedit.runtime.schema import PALETTE
from neuedit.data.datasets import to_uint8, to_unit_range
from neuedit.errors import UsageError
from neuedit.evaluation.metrics import dilate, edge_f1, kid, result_edges
from neuedit.runtime.sketch import from_rgba
from neuedit.synth.strokes import free_form_mask

KINDS = ("hair", "eyes", "object")
HAIR_TARGETS = ("blonde", "brown", "black", "blue", "pink", "purple", "green", "red")
EYE_TARGETS = ("blue", "red", "brown", "green", "purple", "yellow")
# the stroke colours: the first eight of the product models' colour palette
OBJECT_COLOURS = {k: PALETTE[k] for k in ("red", "blue", "green", "yellow", "pink", "purple", "orange", "black")}
HAIR_PATCH = (slice(5, 13), slice(20, 44))  # top of the head in a 64 px aligned face: hair in most crops
UPPER = 0.4                                  # hair strokes stay in the top 40 % of the face
CENTRE = (slice(22, 60), slice(12, 52))      # the face centre at 64 px (eyes, nose, mouth)


@dataclass
class Tasks:
    """A batch of one kind of task, all arrays row-aligned.

    source [N, 3, R, R] in [-1, 1]; sketch [N, 3, R, R]; mask [N, 1, R, R]; colour uint8 [N, 3];
    target: the requested attribute index within its group (anime) or colour name; state: the
    (z, c) of stage-one sources (None for photos); origin: "sample" or "real"."""
    kind: str
    origin: str
    source: np.ndarray
    sketch: np.ndarray
    mask: np.ndarray
    colour: np.ndarray
    target: list
    state: object = None
    extra: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.source)


# ---- strokes ------------------------------------------------------------------------------------
def hair_strokes(r: int, rng: np.random.Generator, n: int = 3) -> np.ndarray:
    """n brush strokes (2.5-4 px at 64 px) started across the top of the head, cut to the top 40 %
    -> bool [R, R]."""
    band = np.zeros((r, r), bool)
    band[: int(UPPER * r)] = True
    m = np.zeros((r, r), bool)
    for _ in range(n):
        start = (rng.uniform(0.15, 0.85) * (r - 1), rng.uniform(0.05, 0.25) * (r - 1))
        m |= free_form_mask(r, r, rng, vertices=(2, 3), width=(0.04, 0.06), length=(0.1, 0.2), start=start)
    return m & band


def eye_strokes(changed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A short stroke (2.5-3.5 px wide) at the centre of each of the two largest changed blobs in the
    eye band (rows 35-75 %, columns 10-90 %) of `changed` bool [R, R] -> bool [R, R] (empty when no
    blob is found)."""
    import cv2
    r = changed.shape[0]
    band = np.zeros_like(changed)
    band[int(0.35 * r):int(0.75 * r), int(0.1 * r):int(0.9 * r)] = True
    n, cc, stats, cent = cv2.connectedComponentsWithStats((changed & band).astype(np.uint8), connectivity=8)
    out = np.zeros((r, r), bool)
    for i in (1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA]))[:2]:
        if stats[i, cv2.CC_STAT_AREA] < 3:
            continue
        m = free_form_mask(r, r, rng, vertices=(2, 2), width=(0.04, 0.055), length=(0.05, 0.08),
                           start=(float(cent[i][0]), float(cent[i][1])))
        out |= m & dilate(cc == i, 3)
    return out


def _paint(mask: np.ndarray, colour) -> tuple[np.ndarray, np.ndarray]:
    """bool [R, R] and an RGB colour -> (sketch [3, R, R], mask [1, R, R]) as the page sends them."""
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[mask, :3] = colour
    rgba[mask, 3] = 255
    return from_rgba(rgba, mask.shape[0])


def with_group(c: np.ndarray, schema, group: str, values) -> np.ndarray:
    """A copy of c [N, C] with the exclusive group `group` set one-hot to `values` [N] (indices
    within the group)."""
    _, s = next((g, s) for g, s in schema.slices() if g.name == group)
    out = np.array(c, np.float32, copy=True)
    out[:, s] = 0.0
    out[np.arange(len(out)), s.start + np.asarray(values)] = 1.0
    return out


# ---- palettes -------------------------------------------------------------------------------------
def hair_palette(images: np.ndarray, c: np.ndarray, schema) -> dict[str, np.ndarray]:
    """Hair colour -> RGB uint8 [3]: the median over real faces labelled with it (uint8 [N, 64, 64, 3])
    of each face's median colour over the top of the head."""
    g, s = next((g, s) for g, s in schema.slices() if g.name == "hair_colour")
    patch = images[:, HAIR_PATCH[0], HAIR_PATCH[1]].reshape(len(images), -1, 3)
    per_face = np.median(patch, 1)
    out = {}
    for k, name in enumerate(g.attributes):
        sel = c[:, s.start + k] > 0.5
        if sel.sum() >= 10:
            out[name] = np.median(per_face[sel], 0).astype(np.uint8)
    return out


def eye_palette(generate, schema, z_dim: int, rng: np.random.Generator, n: int = 32) -> dict[str, np.ndarray]:
    """Eye colour -> RGB uint8 [3]: the median colour G1 gives the pixels that change when only the
    eye colour is set to it (n samples each, from another eye colour)."""
    from neuedit.runtime.state import sample_state
    g = next(g for g in schema.groups if g.name == "eye_colour")
    out = {}
    for k, name in enumerate(g.attributes):
        st = sample_state(n, z_dim, schema, rng)
        others = (k + 1 + rng.integers(len(g.attributes) - 1, size=n)) % len(g.attributes)
        st.c = with_group(st.c, schema, "eye_colour", others)
        _, b, diff = eye_changes(generate, schema, st.z, st.c, np.full(n, k))
        band = np.zeros_like(diff)
        band[:, int(0.35 * diff.shape[1]):int(0.75 * diff.shape[1])] = True
        px = to_uint8(b).reshape(n, -1, 3)[(diff & band).reshape(n, -1)]
        if len(px) >= 20:  # the more saturated half: an eye's colour, not its dark pupil or white glint
            sat = px.max(1).astype(int) - px.min(1)
            out[name] = np.median(px[sat >= np.median(sat)], 0).astype(np.uint8)
    return out


def eye_changes(generate, schema, z: np.ndarray, c: np.ndarray, targets: np.ndarray) -> tuple:
    """G1(z, c) and G1(z, c') with the eye colour set to `targets` -> (source, changed, changed pixels bool)."""
    a, b = generate(z, c), generate(z, with_group(c, schema, "eye_colour", targets))
    diff = np.abs(a - b).max(1) > 0.25
    return a, b, diff


# ---- task sets ------------------------------------------------------------------------------------
def anime_tasks(kind: str, origin: str, n: int, generate, z_dim: int, schema, palette: dict,
                rng: np.random.Generator, photos: np.ndarray | None = None, eye_palette: dict | None = None) -> Tasks:
    """n hair- or eye-colour tasks on stage-one samples (z, c drawn, the group set to another value
    than the target) or on `photos` [>= n, 3, R, R]."""
    from neuedit.runtime.state import sample_state
    group = "hair_colour" if kind == "hair" else "eye_colour"
    g = next(g for g in schema.groups if g.name == group)
    names = [t for t in (HAIR_TARGETS if kind == "hair" else EYE_TARGETS) if t in (palette if kind == "hair" else eye_palette)]
    target = np.array([g.attributes.index(names[i % len(names)]) for i in range(n)])
    colours = np.stack([(palette if kind == "hair" else eye_palette)[g.attributes[t]] for t in target])
    state, extra = None, {}
    if origin == "sample":
        state = sample_state(n, z_dim, schema, rng)
        others = [(t + 1 + rng.integers(len(g.attributes) - 1)) % len(g.attributes) for t in target]
        state.c = with_group(state.c, schema, group, others)
        source = generate(state.z, state.c)
    else:
        source = np.asarray(photos[:n], np.float32)
    r = source.shape[-1]
    if kind == "hair":
        masks = [hair_strokes(r, rng) for _ in range(n)]
    else:
        if origin != "sample":
            raise UsageError("eye tasks need stage-one sources (the eyes are found through G1)")
        _, ideal, diff = eye_changes(generate, schema, state.z, state.c, target)
        masks = [eye_strokes(d, rng) for d in diff]
        extra["ideal"] = ideal
    sk, mk = zip(*(_paint(m, col) for m, col in zip(masks, colours)))
    return Tasks(kind, origin, source, np.stack(sk), np.stack(mk), colours, list(target), state, extra)


def object_tasks(origin: str, n: int, source: np.ndarray, rng: np.random.Generator, state=None) -> Tasks:
    """n object-colour tasks: two strokes across the object (`neuedit.synth.pairs.object_region`) of each
    source [>= n, 3, R, R], colours cycled over OBJECT_COLOURS."""
    from neuedit.synth.pairs import object_region
    source = np.asarray(source[:n], np.float32)
    r = source.shape[-1]
    names = list(OBJECT_COLOURS)
    masks, regions = [], []
    for im in to_uint8(source):
        region = object_region(im)
        ys, xs = np.nonzero(region)
        m = np.zeros((r, r), bool)
        for _ in range(2):
            if len(ys):
                i = int(rng.integers(len(ys)))
                m |= free_form_mask(r, r, rng, vertices=(2, 3), width=(0.05, 0.07), length=(0.12, 0.2),
                                    start=(float(xs[i]), float(ys[i]))) & region
        masks.append(m)
        regions.append(region)
    colours = np.array([OBJECT_COLOURS[names[i % len(names)]] for i in range(n)], np.uint8)
    sk, mk = zip(*(_paint(m, col) for m, col in zip(masks, colours)))
    return Tasks("object", origin, source, np.stack(sk), np.stack(mk), colours,
                 [names[i % len(names)] for i in range(n)], state, {"region": np.stack(regions)})


def ideal_recolour(t: Tasks) -> np.ndarray:
    """Object tasks -> each source [N, 3, R, R] with its object region's mean Lab colour moved to the
    stroke colour, shading kept (`neuedit.synth.pairs.recoloured`, the target of stage two's object
    pairs): the edit a person asks for, as a reference row."""
    from neuedit.synth.pairs import recoloured, to_lab
    out = [recoloured(im, reg, to_lab(col[None, None])[0, 0]) if reg.any() else im
           for im, reg, col in zip(to_uint8(t.source), t.extra["region"], t.colour)]
    return to_unit_range(np.stack(out))


# ---- scores ---------------------------------------------------------------------------------------
def restore_strokes(edited: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`edited` with the stroke pixels, dilated by 1 px, put back from `source` (all [N, C, R, R])."""
    m = np.stack([dilate(x[0] > 0, 3) for x in mask])[:, None]
    return np.where(m, source, edited)


def centre_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of the grey face centre (rows 22-60, columns 12-52 at 64 px, scaled) of a vs b [N, 3, R, R] -> [N]."""
    from skimage.metrics import structural_similarity
    r = a.shape[-1]
    sl = tuple(slice(int(x.start * r / 64), int(x.stop * r / 64)) for x in CENTRE)
    grey = lambda x: (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[sl]  # noqa: E731
    return np.array([structural_similarity(grey(x), grey(y), data_range=2.0) for x, y in zip(a, b)])


def object_delta_e(images: np.ndarray, colours: np.ndarray, regions: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean CIEDE2000 between each image's object (`regions` bool [N, R, R], stroke pixels left out)
    and its stroke colour -> [N]."""
    from skimage.color import deltaE_ciede2000, rgb2lab
    out = []
    for im, col, reg, m in zip(to_uint8(images), colours, regions, masks):
        sel = reg & ~dilate(m[0] > 0, 3)
        if not sel.any():
            out.append(np.nan)
            continue
        lab = rgb2lab(im[sel][None].astype(np.float64) / 255)[0]
        ref = rgb2lab(np.asarray(col, np.float64)[None, None] / 255)[0, 0]
        out.append(float(deltaE_ciede2000(lab, np.broadcast_to(ref, lab.shape)).mean()))
    return np.array(out)


def edges_kept(images: np.ndarray, source: np.ndarray) -> np.ndarray:
    """F1 of the source's Canny edges found again in each result (1 px tolerance) -> [N]."""
    return np.array([edge_f1(result_edges(x), result_edges(s))[2] for x, s in zip(images, source)])


def score(tasks: Tasks, edited: np.ndarray, judge=None, schema=None) -> dict[str, np.ndarray]:
    """Per-task scores of `edited` [N, 3, R, R] for `tasks` -> {name: [N]}. `judge(images) -> logits
    [N, C]` is the evaluation classifier (anime kinds)."""
    if tasks.kind == "object":
        reg = tasks.extra["region"]
        before = object_delta_e(tasks.source, tasks.colour, reg, tasks.mask)
        after = object_delta_e(edited, tasks.colour, reg, tasks.mask)
        return {"success": (after <= 0.5 * before).astype(float), "de_before": before, "de_after": after,
                "edge_f1": edges_kept(edited, tasks.source)}
    group = "hair_colour" if tasks.kind == "hair" else "eye_colour"
    logits_after = judge(restore_strokes(edited, tasks.source, tasks.mask))
    logits_before = judge(tasks.source)
    out = {}
    same = []
    for g, s in schema.slices():
        if not g.exclusive:
            continue
        a, b = logits_after[:, s].argmax(1), logits_before[:, s].argmax(1)
        if g.name == group:
            out["success"] = (a == np.asarray(tasks.target)).astype(float)
        else:
            same.append(a == b)
    out["others_kept"] = np.mean(same, 0) if same else np.full(len(tasks), np.nan)
    out["centre_ssim"] = centre_ssim(edited, tasks.source)
    return out


def learned_kid(features, edited: np.ndarray, reference_features: np.ndarray) -> float:
    """KID of `edited` against the held-out reference in the classifier's feature space."""
    f = features(edited)
    return float(kid(f, reference_features, subsets=50, subset_size=min(len(f), len(reference_features)), seed=0)[0])
