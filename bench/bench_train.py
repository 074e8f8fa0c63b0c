"""Stage-one training speed: iterations/s of full DRAGAN + ACGAN steps (D phase + G phase)
for the `demo` and `report128` presets at batch 64, on this machine's CPU (and CUDA when
present). Random tensors stand in for data: the step's cost does not depend on pixel values.

    python bench/bench_train.py [--presets demo report128] [--batch 64] [--steps 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import report, timeit  # noqa: E402

from neuedit.nn import presets  # noqa: E402
from neuedit.nn.nets import build, count_params  # noqa: E402
from neuedit.training import LossConfig, d_loss_terms, g_loss_terms  # noqa: E402


def one_step(G, D, opt_G, opt_D, batch, alpha, cfg):
    with torch.no_grad():
        x_fake = G(batch["z"], batch["c_fake"])
    d = d_loss_terms(D, batch["x_real"], x_fake, batch["c_real"], batch["c_fake"], alpha, cfg)
    opt_D.zero_grad()
    d["L_D"].backward()
    opt_D.step()
    D.requires_grad_(False)
    g = g_loss_terms(G, D, batch["z"], batch["c_fake"], cfg)
    opt_G.zero_grad()
    g["L_G"].backward()
    opt_G.step()
    D.requires_grad_(True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["demo", "report128"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--c-dim", type=int, default=34)
    ap.add_argument("--json", default="bench/results/train.json")
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dev in devices:
        for name in args.presets:
            p = presets.get(name)
            torch.manual_seed(0)
            G = build(presets.g_spec(p, 128, args.c_dim)).to(dev)
            D = build(presets.d_spec(p, args.c_dim)).to(dev)
            opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
            n, r = args.batch, p.resolution
            batch = {"x_real": torch.randn(n, 3, r, r, device=dev).tanh(), "c_real": torch.zeros(n, args.c_dim, device=dev),
                     "z": torch.randn(n, 128, device=dev), "c_fake": torch.zeros(n, args.c_dim, device=dev)}
            alpha = torch.rand(n, 3, r, r, device=dev)

            def step():
                one_step(G, D, opt_G, opt_D, batch, alpha, LossConfig())
                if dev == "cuda":
                    torch.cuda.synchronize()
            s = timeit(step, warmup=1, repeat=args.steps)
            rows.append({"device": dev, "preset": name, "resolution": r, "batch": n,
                         "G params (M)": count_params(G) / 1e6, "D params (M)": count_params(D) / 1e6,
                         "s/iteration": s, "iterations/s": 1 / s, "images/s": n / s,
                         "threads": torch.get_num_threads()})
            print(rows[-1], flush=True)
    report(rows, "stage-one training step (DRAGAN + ACGAN, D and G phases)", args.json)


if __name__ == "__main__":
    main()
