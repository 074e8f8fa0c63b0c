"""Editing cost in PyTorch eager on this CPU: milliseconds per latent-optimisation step
(the one-stage editor) and per single-pass two-stage edit (G1 + G2), batch 1 and 8, for
the `demo` and `report128` presets (random weights: cost does not depend on their values).

    python bench/bench_edit.py [--presets demo report128]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import report, timeit  # noqa: E402

from neuedit.nn.testing import make_random_bundle  # noqa: E402
from neuedit.runtime.editor import Editor  # noqa: E402
from neuedit.runtime.state import EditConfig, sample_state  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["demo", "report128"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--json", default="bench/results/edit.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            b = make_random_bundle(Path(tmp) / name, preset=name, schema="anime34", z_dim=128)
            ed = Editor.load(b, backend="torch")
            r = b.resolution
            for n in args.batches:
                st = sample_state(n, 128, b.schema, np.random.default_rng(0))
                sketch = np.zeros((3, r, r), np.float32)
                mask = np.zeros((1, r, r), np.float32)
                mask[:, : r // 3, : r // 3] = 1
                cfg = EditConfig(optimizer="adam", steps=5)
                # per step: 5 steps per call, plus the final render; divide by 5
                t_step = timeit(lambda: ed.latent(st, sketch, mask, cfg), repeat=3) / 5
                t_two = timeit(lambda: ed.two_stage(st, sketch, mask), repeat=5)
                with torch.no_grad():
                    t_g1 = timeit(lambda: ed.render(st), repeat=5)
                rows.append({"preset": name, "batch": n, "latent ms/step": 1e3 * t_step,
                             "two-stage ms/edit (G1+G2)": 1e3 * t_two, "G1 ms": 1e3 * t_g1,
                             "two-stage vs 1 latent step": t_two / t_step,
                             "threads": torch.get_num_threads()})
                print(rows[-1], flush=True)
    report(rows, "editing cost, PyTorch eager, CPU", args.json)


if __name__ == "__main__":
    main()
