"""What one edit costs a deployer: the shipped bundles on ONNX Runtime (the torch-free engine),
1 thread, batch 1, milliseconds per two-stage edit and per latent edit of 1, 10 and 30 steps at
the defaults (choose_c + paste) and without them, so the cost of each default is in the table.

    python bench/edit_latency.py [--models anime shoes handbags] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report, timeit  # noqa: E402

from neuedit.runtime import bundle as bundle_mod  # noqa: E402
from neuedit.runtime.editor import Editor  # noqa: E402
from neuedit.runtime.state import EditConfig  # noqa: E402

VARIANTS = {"defaults": EditConfig(), "no choose_c": EditConfig(choose_c=False),
            "no choose_c, no paste": EditConfig(choose_c=False, paste=0.0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[p.name for p in bundle_mod.shipped()])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="bench/results/edit_latency.json")
    args = ap.parse_args()
    paths = {p.name: p for p in bundle_mod.shipped()}
    rows = []
    for name in args.models:
        e = Editor.load(paths[name], threads=args.threads)
        st = e.sample(1, seed=0)
        r = e.resolution
        mask = np.zeros((1, 1, r, r), np.float32)
        mask[..., r // 8:r // 4, r // 4:3 * r // 4] = 1  # a stroke band across the top
        sketch = np.array([0.8, -0.6, -0.6], np.float32)[None, :, None, None] * mask
        src = e.generate(st.z, st.c)
        rows.append({"model": name, "edit": "two-stage", "ms": 1000 * timeit(lambda: e.two_stage(src, sketch, mask),
                                                                           repeat=20)})
        for v, cfg in VARIANTS.items():
            for steps in (1, 10, 30):
                ms = 1000 * timeit(lambda: e.latent(st, sketch, mask, cfg, steps), repeat=5 if steps > 1 else 20)
                rows.append({"model": name, "edit": f"latent, {steps} steps, {v}", "ms": ms})
    report(rows, f"ms per edit, ONNX Runtime, {args.threads} thread(s), batch 1", args.json)


if __name__ == "__main__":
    main()
