"""`neuedit compare`: one-stage (latent optimisation) vs two-stage editing, in numbers.

    # 1. draw a task set for a bundle from real images (reproducible from --seed)
    neuedit compare --make-tasks --bundle B --data DIR [DIR ...] --tasks T [--n 32] [--seed 0]
    # 2. run every editor on it and write the report
    neuedit compare --bundle B --tasks T --out OUT [--latent-steps 1 10 50]

With both --make-tasks and --out, the set is drawn and then compared in one call. Without
--make-tasks, --data names folders of held-out real images for KID instead of the ones saved
with the task set.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from . import bundle as bundle_mod
from neuedit.errors import UsageError, MissingFileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", required=True, help="model bundle folder (g1; g2 for two-stage; d for realism)")
    p.add_argument("--tasks", type=Path, help="task set folder (written with --make-tasks, read otherwise)")
    p.add_argument("--out", type=Path, help="report folder (results.csv, summary.md, grid.png, ...)")
    p.add_argument("--make-tasks", action="store_true", help="draw a task set into --tasks first")
    p.add_argument("--data", nargs="+", default=[],
                   help="real image folders: the pool for --make-tasks, else held-out images for KID")
    p.add_argument("--layout", choices=["auto", "single", "pair"], default="auto",
                   help="data layout; auto: 'pair' when the first image is twice as wide as high")
    p.add_argument("--pair-image", choices=["left", "right"], default="left", help="pair layout: the photo's half")
    p.add_argument("--labels", help="labels CSV (default: labels.csv in the data folder or its parent)")
    g = p.add_argument_group("task set (--make-tasks)")
    g.add_argument("--n", type=int, default=32, help="synthetic tasks")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--kinds", nargs="+", default=["colour", "edge"], choices=["colour", "edge"])
    g.add_argument("--sources", nargs="+", default=["sample", "real"], choices=["sample", "real"])
    g.add_argument("--user-sketches", type=Path, help="folder of RGBA PNG sketches to add (one task per source kind)")
    g.add_argument("--chains", type=int, default=8, help="stability chains")
    g.add_argument("--rounds", type=int, default=5, help="successive edits per chain (K)")
    g.add_argument("--heldout", type=int, default=256, help="held-out real images for KID")
    g.add_argument("--pool", type=int, default=2000, help="read at most this many images per data folder")
    g.add_argument("--edges", choices=["auto", "pairs", "canny", "xdog"], default="auto",
                   help="edge lines of donors (auto: the dataset's drawings for pairs, else Canny)")
    g = p.add_argument_group("comparison")
    g.add_argument("--latent-steps", nargs="+", type=int, default=[1, 10, 50], help="latent-editor step counts")
    g.add_argument("--optimizer", choices=["gd", "adam"], default="adam", help="latent editor's optimiser")
    g.add_argument("--lr", type=float, help="latent step size (default 0.05 adam, 2.0 gd)")
    g.add_argument("--anchor", type=float, default=0.0, help="latent pull toward the starting z")
    g.add_argument("--no-two-stage", action="store_true", help="compare latent step counts only")
    g.add_argument("--project-steps", type=int, default=200, help="Adam steps projecting a photo for the latent editor")
    g.add_argument("--dilate", type=int, default=5, help="keep metrics leave out the mask dilated by k x k")
    g.add_argument("--edge-tol", type=int, default=1, help="px tolerance of the edge F1")
    g.add_argument("--grid-tasks", type=int, default=8, help="tasks shown in grid.png")
    g.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _layout(root: Path, layout: str) -> str:
    if layout != "auto":
        return layout
    from .data import list_images
    files = list_images(root)
    if not files:
        return "single"
    with Image.open(files[0]) as im:
        w, h = im.size
    return "pair" if w >= 2 * h else "single"


def _labels(root: Path, given: str | None) -> str | None:
    if given:
        return given
    for cand in (root / "labels.csv", root.parent / "labels.csv"):
        if cand.is_file():
            return str(cand)
    return None


def data_configs(args, resolution: int) -> list:
    from .data import DataConfig
    out = []
    for d in args.data:
        root = Path(d)
        if not root.is_dir():
            raise MissingFileError(f"data folder {root} not found")
        out.append(DataConfig(str(root), resolution=resolution, layout=_layout(root, args.layout),
                              pair_image=args.pair_image, labels=_labels(root, args.labels), flip=False))
    return out


def run(args) -> int:
    import torch
    from .compare import CompareConfig, compare
    from .tasks import TaskConfig, TaskSet, load_pool, make_tasks
    if args.threads:
        torch.set_num_threads(args.threads)
    b = bundle_mod.read(args.bundle)
    if args.tasks is None:
        raise UsageError("give --tasks (the task set folder)")
    if not args.make_tasks and args.out is None:
        raise UsageError("give --out (the report folder), or --make-tasks to draw a task set")
    data = data_configs(args, b.resolution)
    if args.make_tasks:
        tcfg = TaskConfig(n=args.n, seed=args.seed, kinds=tuple(args.kinds), sources=tuple(args.sources),
                          chains=args.chains, rounds=args.rounds, heldout=args.heldout, pool=args.pool,
                          edges=args.edges)
        ts = make_tasks(b, data, tcfg, args.user_sketches)
        ts.save(args.tasks)
        print(f"{len(ts.tasks)} tasks, {len(ts.chains)} chains of {tcfg.rounds}, {len(ts.heldout)} held-out "
              f"images -> {args.tasks}")
        if args.out is None:
            return 0
        heldout = None
    else:
        heldout = None
        if data:
            from .schema import empty as empty_schema
            heldout = load_pool(data, empty_schema(), args.heldout).images
    ts = TaskSet.load(args.tasks)
    cfg = CompareConfig(latent_steps=tuple(args.latent_steps), optimizer=args.optimizer, lr=args.lr,
                        anchor=args.anchor, two_stage=not args.no_two_stage, project_steps=args.project_steps,
                        dilate=args.dilate, edge_tol=args.edge_tol, grid_tasks=args.grid_tasks)
    compare(b, ts, cfg, args.out, heldout=heldout, progress=not args.quiet, tasks_dir=args.tasks)
    print(f"report -> {args.out / 'summary.md'} (results.csv, grid.png, stability.png)")
    return 0
