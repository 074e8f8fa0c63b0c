"""Quality per CPU minute: train stage-one recipes for the same budget (same data, seed and
threads) and print `neuedit evaluate`'s numbers at several points of the budget.

    python bench/budget_curve.py [--minutes 40] [--every 5] [--threads 2] [--out runs/budget]

Recipes: `old-demo` (the first demo recipe: the `demo` preset with Jin et al.'s DRAGAN +
ACGAN losses) and `cpu64` (recipes/anime.toml, what ships). A recipe's step time is measured
first (the fastest of a few short windows, so other work on the machine does not count against
it); each budget point is then the iteration count that time affords, trained by resuming the
run's checkpoint, and the bundle is copied aside there. Re-running resumes: finished
snapshots are kept. Prints one table; writes bench/results/budget_curve.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from neuedit.config import recipes as cfg_mod  # noqa: E402
from neuedit.data.datasets import DataConfig, load_dataset  # noqa: E402
from neuedit.evaluation.evaluate import EvalConfig, Reference, evaluate_bundle  # noqa: E402
from neuedit.runtime.schema import Schema  # noqa: E402
from neuedit.stage1.train import Stage1Config, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def recipes(data: str, out: Path) -> dict[str, dict]:
    shipped = cfg_mod.read(REPO / "recipes" / "anime.toml")
    old = {"preset": "demo", "schema": "anime_faces", "name": "anime",
           "data": {"root": data, "limit": 16000, "resolution": 64}, "run": {"batch": 32}}
    new = cfg_mod.merge(shipped, {"data": {"root": data, "resolution": 64}})
    common = {"run": {"iterations": 1_000_000, "progress": False, "tensorboard": False, "sample_every": 10**9,
                      "ckpt_every": 10**9, "log_every": 50}}
    out_runs = {name: cfg_mod.merge(cfg_mod.merge(d, common), {"run": {"out": str(out / name)}})
                for name, d in [("old-demo", old), ("cpu64", new)]}
    for d in out_runs.values():
        d["optim"] = {**d.get("optim", {}), "decay_start": 1.0}  # constant lr: the budget, not a schedule, ends the run
    return out_runs


def step_seconds(name: str, d: dict, images, out: Path, window: int = 25, windows: int = 6) -> dict:
    """Seconds per training step of a recipe on this machine: the fastest `window`-step window of
    a short scratch run (its log's time column, so start-up and checkpoints do not count, and a
    busy moment elsewhere on the machine does not count against a recipe). The first two
    windows warm up. Cached in <out>/<name>-timing.json."""
    path = out / f"{name}-timing.json"
    if path.exists():
        return json.loads(path.read_text())
    scratch = out / f"{name}-timing"
    cfg = cfg_mod.from_dict(Stage1Config, cfg_mod.merge(d, {"run": {"out": str(scratch), "log_every": window}}))
    cpu = time.process_time()
    t = time.perf_counter()
    train(cfg, images, stop_at=window * windows)
    cpu_per_wall = (time.process_time() - cpu) / (time.perf_counter() - t)
    with open(scratch / "log.csv") as f:
        times = [float(r["time"]) for r in csv.DictReader(f)]
    timing = {"s_per_step": min(np.diff(times)[1:]) / window, "cpu_per_wall": cpu_per_wall}
    shutil.rmtree(scratch, ignore_errors=True)
    path.write_text(json.dumps(timing, indent=2))
    return timing


def train_for(name: str, d: dict, images, minutes: float, every: float, out: Path) -> list[dict]:
    """Train a recipe to the iteration counts its measured step time affords at each budget point
    (every `every` minutes up to `minutes`), copying the bundle aside at each; resumable."""
    timing = step_seconds(name, d, images, out)
    cfg = cfg_mod.from_dict(Stage1Config, d)
    points = []
    for i in range(int(minutes / every)):
        m = every * (i + 1)
        step = max(1, int(round(m * 60 / timing["s_per_step"])))
        snap = out / name / f"snap-{m:g}min"
        if not (snap / "bundle.json").exists():
            train(cfg, images, stop_at=step)  # resumes from the run's checkpoint
            shutil.copytree(out / name / "bundle", snap, dirs_exist_ok=True)
            print(f"{name}: {step} it = {m:g} min at {timing['s_per_step'] * 1000:.0f} ms/it -> {snap}", flush=True)
        points.append({"minutes": m, "step": step, "bundle": str(snap), "ms_per_step": round(timing["s_per_step"] * 1000),
                       "cpu_per_wall": round(timing["cpu_per_wall"], 2)})
    return points


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "anime-faces"))
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--recipes", nargs="+", default=["old-demo", "cpu64"])
    ap.add_argument("--classifier", default="runs/eval/anime-classifier.safetensors")
    ap.add_argument("--out", default="runs/budget")
    ap.add_argument("--json", default="bench/results/budget_curve.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    all_recipes = recipes(args.data, out)
    schema = Schema.load("anime_faces")
    images = load_dataset(DataConfig(args.data, 64, limit=16000), schema)
    for name in args.recipes:  # all timings first, so they can be taken while the machine is quiet
        step_seconds(name, all_recipes[name], images, out)
    points = {name: train_for(name, all_recipes[name], images, args.minutes, args.every, out)
              for name in args.recipes}
    held_out = DataConfig(args.data, 64, skip=16000, flip=False)
    ecfg = EvalConfig(real=held_out, train=DataConfig(args.data, 64, limit=16000, flip=False), out=str(out / "eval"),
                      samples=args.samples, classifier_path=args.classifier)
    ref = Reference(ecfg, schema, progress=False)
    rows = []
    for name in args.recipes:
        for p in points[name]:
            r = evaluate_bundle(p["bundle"], ref, ecfg, f"{name}@{p['minutes']:.0f}min")
            rows.append({"recipe": name, "minutes": p["minutes"], "iterations": p["step"], "ms/it": p["ms_per_step"], "cpu/wall": p["cpu_per_wall"],
                         "KID hand": r["kid_handcrafted"], "KID learned": r["kid_learned"],
                         "dup share": r["duplicate_share"], "pairwise/real": r["pairwise_ratio"],
                         **{f"agree {g}": v for g, v in r["agreement"].items()}})
    acc = {f"agree {g}": v["accuracy"] for g, v in ref.accuracy.items()}
    rows.append({"recipe": "real (classifier accuracy)", "minutes": "", "iterations": "", "ms/it": "", "cpu/wall": "", "KID hand": "",
                 "KID learned": "", "dup share": 0.01, "pairwise/real": 1.0, **acc})  # 1 % by construction
    report(rows, f"Stage one, quality per CPU minute ({args.threads} threads, anime faces, held-out KID)", args.json)


if __name__ == "__main__":
    main()
