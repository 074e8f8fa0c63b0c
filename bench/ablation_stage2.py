"""Which stage-two loss terms matter: train a tiny G2 with each term switched off and measure,
on held-out real faces with synthesised strokes, Dist (follow the strokes) and L1 outside the
dilated mask (keep the rest). Realism needs a trained D and is left to `neuedit compare`.

    python bench/ablation_stage2.py [--iterations 300] [--res 16]
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
from common import print_table, write_json  # noqa: E402

from neuedit.data import DataConfig, load_dataset, to_unit_range  # noqa: E402
from neuedit.losses import edit_distance, masked_l1  # noqa: E402
from neuedit.schema import empty  # noqa: E402
from neuedit.stage1.runner import RunConfig  # noqa: E402
from neuedit.stage2.train import SketchSource, Stage2Config, Stage2LossConfig, dilate, fit  # noqa: E402
from neuedit.strokes import StrokeConfig  # noqa: E402
from neuedit.testing import make_random_bundle  # noqa: E402

VARIANTS = {"all terms": {}, "no adversarial": {"l_adv": 0.0}, "no keep": {"l_keep": 0.0},
            "no reconstruction": {"l_rec": 0.0}, "Dist only": {"l_adv": 0.0, "l_keep": 0.0, "l_rec": 0.0}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/anime-faces/images")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--json", default="bench/results/ablation_stage2.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(DataConfig(args.data, 16, limit=1064), empty())
    train_set = replace(data, images=data.images[:1000], c=data.c[:1000])
    held = np.arange(1000, 1064)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        s1 = make_random_bundle(Path(tmp) / "s1", preset="tiny", with_g2=False)
        for name, kw in VARIANTS.items():
            cfg = Stage2Config(stage1=str(s1.path), preset="tiny", p_real=1.0,
                               data=DataConfig(args.data, 16, limit=1000),
                               run=RunConfig(out=str(Path(tmp) / name), iterations=args.iterations, batch=16,
                                             seed=0, log_every=100, sample_every=10**6, ckpt_every=10**6,
                                             progress=False, tensorboard=False),
                               loss=Stage2LossConfig(**kw))
            _, modules = fit(cfg, train_set)
            source = SketchSource(data, cfg, False)
            rng = np.random.default_rng(11)
            sk, mk = (torch.from_numpy(a) for a in source.sketches(held[::-1].copy(), rng, StrokeConfig(p_empty=0.0), 16))
            i1 = torch.from_numpy(to_unit_range(data.images[held]))
            with torch.no_grad():
                i2 = modules["G2"].eval()(i1, sk, mk)
            rows.append({"variant": name, "Dist (lower: follows strokes)": edit_distance(i2, sk, mk).mean().item(),
                         "L1 outside mask (lower: keeps rest)": masked_l1(i2, i1, 1 - dilate(mk, 5)).mean().item(),
                         "Dist of the unedited image": edit_distance(i1, sk, mk).mean().item()})
            print(rows[-1], flush=True)
    print_table(rows, f"stage-two loss ablation (tiny G2, {args.iterations} iterations, 64 held-out faces)")
    write_json(rows, args.json)


if __name__ == "__main__":
    main()
