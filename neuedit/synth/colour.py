"""A colour condition derived from the pixels, for product photos without labels (shoes, handbags;
docs/method.md, "A colour condition from the pixels").

Each photo is labelled with the palette colour nearest (in Lab) to the mean colour of its object
(`neuedit.synth.pairs.object_region`: everything but the white background). The photos are mostly
black, grey and brown, so G1 would never learn a blue shoe from them alone: `recoloured_copies`
adds copies of the photos with the object moved to another palette colour, shading kept (the
same recolour stage two's object pairs are made with), labelled with that colour.

OpenCV: the `[train]` extra.
"""
from __future__ import annotations

import numpy as np

from neuedit.runtime.schema import PALETTE, Schema
from neuedit.synth.pairs import object_region, recoloured, to_lab

JITTER = 6.0  # Lab units: a recoloured copy's colour is its palette colour give or take this


def palette_lab() -> np.ndarray:
    """The palette in CIE Lab, [K, 3] float32, in PALETTE's order."""
    rgb = np.array(list(PALETTE.values()), np.uint8)[None]
    return to_lab(rgb)[0]


def _nearest(image: np.ndarray, region: np.ndarray, pal: np.ndarray) -> int:
    """Index of the palette colour nearest (Lab) the mean of `image`'s `region`; -1 for no region."""
    if not region.any():
        return -1
    return int(np.argmin(((pal - to_lab(image)[region].mean(0)) ** 2).sum(1)))


def object_colours(images: np.ndarray) -> list[str]:
    """uint8 [N, H, W, 3] product photos -> the palette name nearest each object's mean Lab colour
    ("" where no object is found)."""
    names, pal = list(PALETTE), palette_lab()
    return [names[k] if k >= 0 else "" for k in (_nearest(im, object_region(im), pal) for im in images)]


def recoloured_copies(images: np.ndarray, copies: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """`copies` recoloured versions of each photo uint8 [N, H, W, 3] -> (uint8 [N * copies, H, W, 3]
    in the order image-major, their palette names). Each copy's object takes a random palette colour
    other than its own (jittered by JITTER in Lab, shading kept); a photo without an object is copied as is."""
    names, pal = list(PALETTE), palette_lab()
    out, labels = [], []
    for im in images:
        region = object_region(im)
        own = _nearest(im, region, pal)
        others = [k for k in range(len(names)) if k != own]
        for k in rng.choice(others, size=copies, replace=copies > len(others)):
            if region.any():
                out.append(recoloured(im, region, pal[k] + rng.uniform(-JITTER, JITTER, 3).astype(np.float32)))
                labels.append(names[k])
            else:
                out.append(im)
                labels.append("")
    return np.stack(out) if out else images[:0], labels


def derive_labels(images, schema: Schema, copies: int = 0, seed: int = 0):
    """An `ImageSet` loaded for a derived schema (`schema.derive`, c all zero) -> the same with each
    photo's c from its pixels and, with `copies`, that many recoloured copies of each photo appended
    (labelled with their colour; `ImageSet.copies` counts them; the pair layout's edge halves are
    dropped then). Other schemas: `images` as it is."""
    from dataclasses import replace
    if not schema.derive:
        return images
    tag = lambda name: [f"{name}_object"] if name else []  # noqa: E731  (the object_colour schema's tags)
    c, report = schema.encode_rows([tag(n) for n in object_colours(images.images)])
    if not copies:
        return replace(images, c=c, label_report=report)
    extra, names = recoloured_copies(images.images, copies, np.random.default_rng(seed))
    c_extra, _ = schema.encode_rows([tag(n) for n in names])
    return replace(images, images=np.concatenate([images.images, extra]), c=np.concatenate([c, c_extra]),
                   files=images.files + [f"{f}#recoloured{k}" for f in images.files for k in range(copies)],
                   label_report=report, copies=len(extra), edges=None)  # (stage one reads no edges)
