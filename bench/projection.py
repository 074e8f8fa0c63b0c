"""Projection of held-out photos into a bundle's latent space, variant against variant, in one run.

Variants: the projection without an encoder (the best of 16 random z, then K Adam steps), the
encoder's (z, c) drawn by G1 alone (no detail map), the encoder with its detail map r (the
default), and encoder + K refinement steps of (z, c) with r held; all through `Editor.project`
on ONNX Runtime (1 thread). Per variant: reconstruction mean absolute error and PSNR ([-1, 1] scale),
face-centre SSIM, the learned-feature distance (the evaluation classifier's features, L2), the
photo's hair colour kept (anime: the evaluation classifier's hair-colour call on the
reconstruction equals its call on the photo), and ms per photo (batch 1).

    python bench/projection.py anime --bundle runs/anime-encoder/exported --n 200
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402
from semantic_edits import DOMAINS, held_out, judge_and_features  # noqa: E402

from neuedit.compare.semantic import centre_ssim  # noqa: E402
from neuedit.runtime.editor import Editor  # noqa: E402

# name -> (use the encoder, refinement steps, draw with the detail map)
VARIANTS = {"random start + 100 steps (no encoder)": (False, 100, False), "encoder (z, c) only": (True, 0, False),
            "encoder + detail (default)": (True, 0, True), "encoder + detail + 10 steps": (True, 10, True),
            "encoder + detail + 30 steps": (True, 30, True)}


def reconstruct(ed: Editor, photos: np.ndarray, encoder: bool, steps: int, detail: bool) -> np.ndarray:
    res = ed.project(photos, steps, encoder=encoder)
    return res.image if detail or not encoder else ed.generate(res.state.z, res.state.c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=list(DOMAINS))
    ap.add_argument("--bundle", help="an exported bundle with an encoder (default: the shipped one)")
    ap.add_argument("--n", type=int, default=200, help="held-out photos")
    ap.add_argument("--timed", type=int, default=8, help="photos timed one by one")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--json", default=None)
    ap.add_argument("--figure", default=None, help="PNG: the first 8 photos (top row) and each variant's reconstructions")
    args = ap.parse_args()
    d = DOMAINS[args.domain]
    ed = Editor.load(args.bundle or d["bundle"], threads=1)
    photos = held_out(args.domain, d, ed.schema)[: args.n]
    logits, features, _ = judge_and_features(args.domain, d, ed.schema) if ed.c_dim else (None, None, None)
    hair = next((s for g, s in ed.schema.slices() if g.name == "hair_colour"), None)
    rows, shown = [], [photos[:8]]
    for name in args.variants:
        rec = np.concatenate([reconstruct(ed, photos[i:i + 50], *VARIANTS[name]) for i in range(0, len(photos), 50)])
        t = time.perf_counter()
        for i in range(args.timed):
            reconstruct(ed, photos[i:i + 1], *VARIANTS[name])
        ms = 1e3 * (time.perf_counter() - t) / args.timed
        shown.append(rec[:8])
        err = np.abs(rec - photos).mean((1, 2, 3))
        row = {"variant": name, "MAE": float(err.mean()),
               "PSNR dB": float(np.mean(10 * np.log10(4.0 / ((rec - photos) ** 2).mean((1, 2, 3))))),
               "centre SSIM": float(centre_ssim(rec, photos).mean())}
        if logits is not None:
            row["feature dist"] = float(np.linalg.norm(features(rec) - features(photos), axis=1).mean())
            if hair is not None:
                row["hair kept %"] = 100 * float(np.mean(logits(rec)[:, hair].argmax(1) == logits(photos)[:, hair].argmax(1)))
        row["ms/photo"] = ms
        rows.append(row)
        print(row, flush=True)
    report(rows, f"projection of {len(photos)} held-out {args.domain} photos, ONNX Runtime 1 thread",
           args.json or f"bench/results/projection-{args.domain}.json")
    if args.figure:
        from PIL import Image
        from neuedit.data.datasets import to_uint8
        grid = np.concatenate([np.concatenate(list(to_uint8(x)), 1) for x in shown], 0)
        Image.fromarray(grid).save(args.figure)
        print(f"rows: photos, then {', '.join(args.variants)} -> {args.figure}")


if __name__ == "__main__":
    main()
