"""Does a colour stroke on the hair recolour the hair? Three strokes of one colour across the top
of held-out real anime faces (the hair), edited by each bundle's two-stage editor (ONNX Runtime);
scored by the mean CIEDE2000 between the upper face and the stroke colour, the stroke pixels
themselves left out, before and after the edit. Prints a table, writes JSON and a figure
(photo | strokes | each bundle's result).

    python bench/hair_recolour.py neuedit/models/anime OLD_BUNDLE [--n 48] [--figure docs/hair-recolour-anime.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from neuedit.data.datasets import DataConfig, load_dataset, to_uint8, to_unit_range  # noqa: E402
from neuedit.runtime.editor import Editor  # noqa: E402
from neuedit.runtime.schema import empty  # noqa: E402
from neuedit.compare import semantic as S  # noqa: E402

COLOURS = {"red": (220, 30, 40), "blue": (40, 80, 230), "green": (40, 170, 60), "pink": (250, 120, 200)}
UPPER = S.UPPER  # the top 40 % of an aligned face crop: mostly hair
strokes = S.hair_strokes  # 3 brush strokes across the top of the head (the semantic benchmark's)


def upper_delta_e(images: np.ndarray, colours: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean ΔE00 between the upper band (stroke pixels excluded) and each image's stroke colour -> [N]."""
    r = images.shape[1]
    out = []
    for im, c, m in zip(images, colours, masks):
        keep = np.zeros((r, r), bool)
        keep[: int(UPPER * r)] = True
        keep &= ~m
        lab = rgb2lab(im[keep][None].astype(np.float64) / 255)[0]
        ref = rgb2lab(np.asarray(c, np.float64)[None, None] / 255)[0, 0]
        out.append(deltaE_ciede2000(lab, np.broadcast_to(ref, lab.shape)).mean())
    return np.array(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundles", nargs="+", help="bundle folders (ONNX), e.g. the shipped one and a previous one")
    ap.add_argument("--names", nargs="+", help="a label per bundle")
    ap.add_argument("--data", default="../shared/data/anime-faces/images")
    ap.add_argument("--skip", type=int, default=16000, help="held-out faces start here")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--figure", default="docs/hair-recolour-anime.png")
    ap.add_argument("--json", default="bench/results/hair_recolour.json")
    args = ap.parse_args()
    names = args.names or [Path(b).name for b in args.bundles]
    engines = [Editor.load(b) for b in args.bundles]  # ONNX Runtime
    r = engines[0].resolution
    faces = load_dataset(DataConfig(args.data, r, skip=args.skip, limit=args.n, flip=False), empty()).images
    rng = np.random.default_rng(0)
    keys = list(COLOURS)
    colours = np.array([COLOURS[keys[i % len(keys)]] for i in range(len(faces))], np.uint8)
    masks = np.stack([strokes(r, rng) for _ in faces])
    sketch = np.zeros((len(faces), 3, r, r), np.float32)
    sketch[:] = (colours.astype(np.float32) / 127.5 - 1)[:, :, None, None]
    mask = masks[:, None].astype(np.float32)
    source = to_unit_range(faces)
    results = [to_uint8(e.two_stage(source, sketch * mask, mask)) for e in engines]
    before = upper_delta_e(faces, colours, masks)
    rows = [{"image": "photo (before the edit)", "ΔE00 upper face to stroke colour": float(before.mean()),
             "change": 0.0, "faces closer": ""}]
    for name, res in zip(names, results):
        after = upper_delta_e(res, colours, masks)
        rows.append({"image": name, "ΔE00 upper face to stroke colour": float(after.mean()),
                     "change": float((after - before).mean()), "faces closer": f"{(after < before).mean():.0%}"})
    report(rows, f"hair recolour: 3 strokes across the top of {len(faces)} held-out faces", args.json)
    over = faces.copy()
    over[masks] = colours[np.nonzero(masks)[0]]
    show = np.arange(8)
    tiles = [np.concatenate([faces[i], over[i]] + [res[i] for res in results], 1) for i in show]
    grid = np.concatenate(tiles, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(args.figure)
    print(f"figure (photo | strokes | {' | '.join(names)}) -> {args.figure}")


if __name__ == "__main__":
    main()
