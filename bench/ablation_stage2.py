"""Which stage-two choices matter: train G2 with each objective, loss term and architecture for
the same iterations and score it on held-out edit pairs against their targets (PSNR over the
image and over the changed region, Dist on the colour strokes).

    python bench/ablation_stage2.py [--iterations 300]                 # tiny G2 at 16 px, random G1
    python bench/ablation_stage2.py --stage1 neuedit/models/anime --iterations 400   # the 64 px demo

Held-out pairs: recolour and reshape (blur fill) pairs on images the run never sees, 3 strokes;
on the reshape pairs, the chamfer distance (px) from the line strokes to the result's Canny edges.
`--only SUBSTRING` (repeatable) trains only the variants whose names contain one of them.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from neuedit.runtime import bundle as bundle_mod  # noqa: E402
from neuedit.synth import pairs as P  # noqa: E402
from neuedit.data.datasets import DataConfig, load_dataset  # noqa: E402
from neuedit.nn.losses import edit_distance, masked_l1  # noqa: E402
from neuedit.evaluation.metrics import chamfer, result_edges  # noqa: E402
from neuedit.runtime.schema import empty  # noqa: E402
from neuedit.training import RunConfig  # noqa: E402
from neuedit.stage2.batches import PairMix, pair_tensors  # noqa: E402
from neuedit.stage2.train import Stage2Config, Stage2LossConfig, fit  # noqa: E402
from neuedit.synth.strokes import edge_map  # noqa: E402
from neuedit.nn.testing import make_random_bundle  # noqa: E402

# name -> (objective, architecture preset at 16 px / at 64 px, loss overrides, pair-mix overrides)
VARIANTS = {
    "pairs, U-Net (what ships)": ("pairs", ("tiny_cpu", "cpu64"), {}, {}),
    "pairs without recolour": ("pairs", ("tiny_cpu", "cpu64"), {}, {"recolour": 0.0}),
    "pairs without reshape": ("pairs", ("tiny_cpu", "cpu64"), {}, {"reshape": 0.0}),
    "pairs without differ (G1 pairs)": ("pairs", ("tiny_cpu", "cpu64"), {}, {"differ": 0.0}),
    "pairs, no adversarial/FM": ("pairs", ("tiny_cpu", "cpu64"), {"l_adv": 0.0, "l_fm": 0.0}, {}),
    "pairs, no region L1": ("pairs", ("tiny_cpu", "cpu64"), {"l_region": 0.0}, {}),
    "pairs, no Dist on lines (before)": ("pairs", ("tiny_cpu", "cpu64"), {"l_line": 0.0}, {}),
    "pairs, Dist on lines 0.25": ("pairs", ("tiny_cpu", "cpu64"), {"l_line": 0.25}, {}),
    "pairs, Dist on lines 1": ("pairs", ("tiny_cpu", "cpu64"), {"l_line": 1.0}, {}),
    "pairs, no Dist on lines, edge loss 5": ("pairs", ("tiny_cpu", "cpu64"), {"l_line": 0.0, "l_edge": 5.0}, {}),
    "pairs, no Dist on lines, edge loss 20": ("pairs", ("tiny_cpu", "cpu64"), {"l_line": 0.0, "l_edge": 20.0}, {}),
    "pairs, first G2 (stride-2, PixelShuffle)": ("pairs", ("tiny", "demo"), {}, {}),
    "strokes (first recipe), U-Net": ("strokes", ("tiny_cpu", "cpu64"), {}, {}),
}


def psnr(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor | None = None) -> float:
    """PSNR in dB of images in [-1, 1] (over the pixels where w [N, 1, R, R] is 1)."""
    err = (a - b) ** 2 / 4.0
    mse = err.mean() if w is None else (err * w).sum() / (w.sum() * 3).clamp_min(1)
    return float(10 * torch.log10(1.0 / mse.clamp_min(1e-10)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/anime-faces/images")
    ap.add_argument("--stage1", help="stage-one bundle (default: random tiny weights at 16 px)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", action="append", default=[], help="train only variants whose name contains this")
    ap.add_argument("--json", default="bench/results/ablation_stage2.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = bundle_mod.read(args.stage1).resolution if args.stage1 else 16
    data = load_dataset(DataConfig(args.data, res, limit=1064), empty())
    train_set = replace(data, images=data.images[:1000], c=data.c[:1000])
    held = data.images[1000:1064]
    rng = np.random.default_rng(11)
    triples = [P.recolour_pair(im, held[::-1], 3, rng) if i % 2 else
               P.reshape_pair(im, edge_map(im), 3, rng, fill="blur") for i, im in enumerate(held)]
    b = pair_tensors(triples, res, "cpu")

    def scores(i2: torch.Tensor) -> dict:
        reshaped = [(t.lines, im) for t, im in zip(triples, i2.numpy()) if t.lines.any()]
        return {"PSNR": psnr(i2, b["target"]), "PSNR region": psnr(i2, b["target"], b["region"]),
                "Dist colour": edit_distance(i2, b["sketch"], b["colour"]).mean().item(),
                "L1 outside": masked_l1(i2, b["target"], 1 - b["region"]).mean().item(),
                "chamfer px": float(np.mean([chamfer(lines, result_edges(im)) for lines, im in reshaped]))}

    rows = [{"variant": "unedited source", **scores(b["source"])}, {"variant": "target", **scores(b["target"])}]
    chosen = {k: v for k, v in VARIANTS.items() if not args.only or any(o in k for o in args.only)}
    with tempfile.TemporaryDirectory() as tmp:
        s1 = args.stage1 or str(make_random_bundle(Path(tmp) / "s1", preset="tiny", with_g2=False).path)
        for name, (objective, arch, kw, mix) in chosen.items():
            cfg = Stage2Config(stage1=s1, preset=arch[res == 64], objective=objective, mix=PairMix(**mix),
                               data=DataConfig(args.data, res, limit=1000),
                               run=RunConfig(out=str(Path(tmp) / name), iterations=args.iterations, batch=16,
                                             seed=0, log_every=100, sample_every=10**6, ckpt_every=10**6,
                                             progress=False, tensorboard=False),
                               loss=Stage2LossConfig(**kw))
            _, modules = fit(cfg, train_set)
            with torch.no_grad():
                i2 = modules["G2"].eval()(b["source"], b["sketch"], b["mask"])
            rows.append({"variant": name, **scores(i2)})
            print(rows[-1], flush=True)
    report(rows, f"stage-two ablation ({res} px, {args.iterations} iterations, 64 held-out pairs against their targets)", args.json)


if __name__ == "__main__":
    main()
