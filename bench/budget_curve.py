"""Quality per CPU minute: train stage-one recipes for the same wall-clock budget (same data,
seed and threads) and print `neuedit evaluate`'s numbers at several points of the budget.

    python bench/budget_curve.py [--minutes 40] [--every 5] [--threads 2] [--out runs/budget]

Recipes: `old-demo` (the first demo recipe: the `demo` preset with the report's DRAGAN +
ACGAN losses) and `cpu64` (recipes/anime.toml, what ships). Each trains in chunks of
`--chunk` iterations (a chunk ends with a checkpoint, resumed exactly by the next), and the
bundle is copied aside each time training time crosses a point. Re-running resumes: finished
snapshots are kept. Prints one table; writes bench/results/budget_curve.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, write_json  # noqa: E402

from neuedit import config as cfg_mod  # noqa: E402
from neuedit.data import DataConfig, load_dataset  # noqa: E402
from neuedit.evaluate import EvalConfig, Reference, evaluate_bundle  # noqa: E402
from neuedit.schema import Schema  # noqa: E402
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


def train_for(name: str, d: dict, images, minutes: float, every: float, chunk: int, out: Path) -> list[dict]:
    cfg = cfg_mod.from_dict(Stage1Config, d)
    state_path = out / name / "budget_state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"seconds": 0.0, "step": 0, "points": []}
    points = [every * (i + 1) for i in range(int(minutes / every))]
    while len(state["points"]) < len(points):
        t = time.perf_counter()
        train(cfg, images, stop_at=state["step"] + chunk)
        state["seconds"] += time.perf_counter() - t
        state["step"] += chunk
        while len(state["points"]) < len(points) and state["seconds"] >= points[len(state["points"])] * 60:
            snap = out / name / f"snap-{points[len(state['points'])]:g}min"
            shutil.copytree(out / name / "bundle", snap, dirs_exist_ok=True)
            state["points"].append({"minutes": round(state["seconds"] / 60, 2), "step": state["step"], "bundle": str(snap)})
            print(f"{name}: {state['step']} it in {state['seconds'] / 60:.1f} min -> {snap}", flush=True)
        state_path.write_text(json.dumps(state, indent=2))
    return state["points"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "anime-faces"))
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=50)
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
    points = {name: train_for(name, all_recipes[name], images, args.minutes, args.every, args.chunk, out)
              for name in args.recipes}
    held_out = DataConfig(args.data, 64, skip=16000, flip=False)
    ecfg = EvalConfig(real=held_out, train=DataConfig(args.data, 64, limit=16000, flip=False), out=str(out / "eval"),
                      samples=args.samples, classifier_path=args.classifier)
    ref = Reference(ecfg, schema, progress=False)
    rows = []
    for name in args.recipes:
        for p in points[name]:
            r = evaluate_bundle(p["bundle"], ref, ecfg, f"{name}@{p['minutes']:.0f}min")
            rows.append({"recipe": name, "minutes": p["minutes"], "iterations": p["step"],
                         "KID hand": r["kid_handcrafted"], "KID learned": r["kid_learned"],
                         "dup share": r["duplicate_share"], "pairwise/real": r["pairwise_ratio"],
                         **{f"agree {g}": v for g, v in r["agreement"].items()}})
    acc = {f"agree {g}": v["accuracy"] for g, v in ref.accuracy.items()}
    rows.append({"recipe": "real (classifier accuracy)", "minutes": "", "iterations": "", "KID hand": "",
                 "KID learned": "", "dup share": 0.01, "pairwise/real": 1.0, **acc})  # 1 % by construction
    print_table(rows, f"Stage one, quality per CPU minute ({args.threads} threads, anime faces, held-out KID)")
    write_json(rows, args.json)


if __name__ == "__main__":
    main()
