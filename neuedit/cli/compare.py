"""`neuedit compare`: one-stage (latent optimisation) vs two-stage editing, in numbers.

    # 1. draw a task set for a bundle from real images (reproducible from --seed)
    neuedit compare --make-tasks --bundle B --data DIR [DIR ...] --tasks T [--n 32] [--seed 0]
    # 2. run every editor on it and write the report
    neuedit compare --bundle B --tasks T --out OUT [--latent-steps 1 10 50]

With both --make-tasks and --out, the set is drawn and then compared in one call. Without
--make-tasks, --data names folders of held-out real images for KID instead of the ones saved
with the task set.

Ground truth (--truth): edits whose answer is known, scored against it.

    # draw a ground-truth set from held-out real images (and G1 samples), run every editor, report
    neuedit compare --truth --bundle B --data DIR [DIR ...] --out OUT [--truth-real 16] [--truth-samples 8]
                    [--truth-strokes 1 3 10] [--seed 0]
    # run again on a set drawn before (e.g. OUT/truth/set)
    neuedit compare --truth --bundle B --tasks OUT/truth/set --out OUT2

Each held-out photo is the target of a recolour or reshape edit pair (the source is the photo
with a region changed, the strokes ask for the photo back); each G1 sample G1(z, c) is the
source of a differ pair with target G1(z', c'), one attribute group of c changed (a nearby z
for unconditional bundles); every source and target goes with 1, 3 and 10 strokes. The set is
drawn into --tasks (default OUT/truth/set) unless --tasks names one and --make-tasks is not
given; --data, the layout options, --seed, --heldout, --pool and --edges work as for task sets.
The report goes into OUT/truth/: results.csv (one row per editor and task, with the `source`
and `target` reference rows), summary.md (means with 95% intervals, tables by stroke count and
task kind, paired differences), summary.json, psnr_vs_strokes.png (PSNR against the target,
whole image and inside the changed region, vs strokes, one line per editor) and grid.png
(source | strokes | target | each editor); how each metric is measured: summary.md's Metrics section.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from neuedit.runtime import bundle as bundle_mod
from neuedit.errors import UsageError, MissingFileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    # defaults come from the configs, so the CLI and the Python API cannot disagree
    from neuedit.compare.config import CompareConfig as C
    from neuedit.compare.truth_draw import REAL_KINDS, TruthConfig as R
    from neuedit.compare.tasks import SOURCE_KINDS, STROKE_KINDS, TaskConfig as T
    p.add_argument("--bundle", required=True, help="model bundle folder (g1; g2 for two-stage; d for realism)")
    p.add_argument("--tasks", type=Path, help="task set folder (written with --make-tasks, read otherwise)")
    p.add_argument("--out", type=Path, help="report folder (results.csv, summary.md, grid.png, ...)")
    p.add_argument("--make-tasks", action="store_true", help="draw a task set into --tasks first")
    p.add_argument("--data", nargs="+", default=[],
                   help="real image folders: the pool for --make-tasks (and --truth), else held-out images for KID")
    p.add_argument("--layout", choices=["auto", "single", "pair"], default="auto",
                   help="data layout; auto: 'pair' when the first image is twice as wide as high")
    p.add_argument("--pair-image", choices=["left", "right"], default="left", help="pair layout: the photo's half")
    p.add_argument("--labels", help="labels CSV (default: labels.csv in the data folder or its parent)")
    p.add_argument("--skip", type=int, default=0,
                   help="leave out the first N images of each data folder (sorted by name): the training split")
    g = p.add_argument_group("task set (--make-tasks)")
    g.add_argument("--n", type=int, default=T.n, help="synthetic tasks")
    g.add_argument("--seed", type=int, default=T.seed)
    g.add_argument("--kinds", nargs="+", default=list(T.kinds), choices=STROKE_KINDS)
    g.add_argument("--sources", nargs="+", default=list(T.sources), choices=SOURCE_KINDS)
    g.add_argument("--user-sketches", type=Path, help="folder of RGBA PNG sketches to add (one task per source kind)")
    g.add_argument("--chains", type=int, default=T.chains, help="stability chains")
    g.add_argument("--rounds", type=int, default=T.rounds, help="successive edits per chain (K)")
    g.add_argument("--heldout", type=int, default=T.heldout, help="held-out real images for KID")
    g.add_argument("--pool", type=int, default=T.pool, help="read at most this many images per data folder")
    g.add_argument("--edges", choices=["auto", "pairs", "canny", "xdog"], default=T.edges,
                   help="edge lines of donors (auto: the dataset's drawings for pairs, else Canny)")
    g = p.add_argument_group("ground truth (--truth)")
    g.add_argument("--truth", action="store_true",
                   help="draw (or with --tasks, load) a ground-truth set and score the editors against its targets "
                        "into OUT/truth")
    g.add_argument("--truth-real", type=int, default=R.real, help="sources on held-out photos (recolour, reshape pairs)")
    g.add_argument("--truth-samples", type=int, default=R.samples, help="sources on G1 samples (differ pairs)")
    g.add_argument("--truth-strokes", nargs="+", type=int, default=list(R.strokes), help="strokes per task")
    g.add_argument("--truth-kinds", nargs="+", default=list(R.kinds), choices=REAL_KINDS,
                   help="photo pair kinds, cycled over sources")
    g.add_argument("--truth-fills", nargs="+", default=list(R.fills), choices=["donor", "blur"],
                   help="what replaces a reshape pair's region in the source, cycled")
    g = p.add_argument_group("comparison")
    g.add_argument("--latent-steps", nargs="*", type=int, default=list(C.latent_steps),
                   help="latent-editor step counts (none: the two-stage editor alone, no projection)")
    g.add_argument("--optimizer", choices=["gd", "adam"], default=C.optimizer, help="latent editor's optimiser")
    g.add_argument("--lr", type=float, help="latent step size (default 0.05 adam, 2.0 gd)")
    g.add_argument("--anchor", type=float, default=C.anchor, help="latent pull toward the starting z")
    g.add_argument("--no-two-stage", action="store_true", help="compare latent step counts only")
    g.add_argument("--project-steps", type=int, default=C.project_steps, help="Adam steps projecting a photo for the latent editor")
    g.add_argument("--dilate", type=int, default=C.dilate, help="keep metrics leave out the mask dilated by k x k")
    g.add_argument("--edge-tol", type=int, default=C.edge_tol, help="px tolerance of the edge F1")
    g.add_argument("--grid-tasks", type=int, default=C.grid_tasks,
                   help="tasks shown in grid.png (--truth: at least this many, whole sources, every kind)")
    g.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _layout(root: Path, layout: str) -> str:
    if layout != "auto":
        return layout
    from neuedit.data.datasets import list_images
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
    from neuedit.data.datasets import DataConfig
    out = []
    for d in args.data:
        root = Path(d)
        if not root.is_dir():
            raise MissingFileError(f"data folder {root} not found")
        out.append(DataConfig(str(root), resolution=resolution, layout=_layout(root, args.layout),
                              pair_image=args.pair_image, labels=_labels(root, args.labels), flip=False,
                              skip=args.skip))
    return out


def compare_config(args):
    from neuedit.compare import CompareConfig
    return CompareConfig(latent_steps=tuple(args.latent_steps), optimizer=args.optimizer, lr=args.lr,
                         anchor=args.anchor, two_stage=not args.no_two_stage, project_steps=args.project_steps,
                         dilate=args.dilate, edge_tol=args.edge_tol, grid_tasks=args.grid_tasks)


def _draw_tasks(args, b, data, set_dir: Path) -> None:
    """--make-tasks: draw a task set into `set_dir`."""
    from neuedit.compare.tasks import TaskConfig, make_tasks
    cfg = TaskConfig(n=args.n, seed=args.seed, kinds=tuple(args.kinds), sources=tuple(args.sources), chains=args.chains,
                     rounds=args.rounds, heldout=args.heldout, pool=args.pool, edges=args.edges)
    ts = make_tasks(b, data, cfg, args.user_sketches)
    ts.save(set_dir)
    print(f"{len(ts.tasks)} tasks, {len(ts.chains)} chains of {cfg.rounds}, {len(ts.heldout)} held-out "
          f"images -> {set_dir}")


def _draw_truth(args, b, data, set_dir: Path) -> None:
    """--truth without a set named: draw a ground-truth set into `set_dir`."""
    from neuedit.compare.truth_draw import TruthConfig, make_truth
    if not data and args.truth_real:
        raise UsageError("give --data (held-out real images for the photo tasks), or --tasks (a ground-truth set)")
    cfg = TruthConfig(real=args.truth_real, samples=args.truth_samples, strokes=tuple(args.truth_strokes),
                      seed=args.seed, kinds=tuple(args.truth_kinds), fills=tuple(args.truth_fills),
                      heldout=args.heldout, pool=args.pool, edges=args.edges)
    ts = make_truth(b, data, cfg)
    ts.save(set_dir)
    skipped = ts.tasks.meta["skipped_groups"]
    print(f"{len(ts.answers)} ground-truth tasks ({len({a.group for a in ts.answers})} sources x "
          f"{len(cfg.strokes)} stroke counts), {len(ts.tasks.heldout)} held-out images -> {set_dir}"
          + (f"; left out for want of strokes: {', '.join(skipped)}" if skipped else ""))


def run(args) -> int:
    """Draw a set (--make-tasks, or --truth without --tasks) and/or compare on it: one path for both kinds."""
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.truth and args.out is None:
        raise UsageError("give --out (the report goes into OUT/truth)")
    if not args.truth and args.tasks is None:
        raise UsageError("give --tasks (the task set folder)")
    if not args.truth and not args.make_tasks and args.out is None:
        raise UsageError("give --out (the report folder), or --make-tasks to draw a task set")
    b = bundle_mod.read(args.bundle)
    data = data_configs(args, b.resolution)
    if args.truth:
        from neuedit.compare.kind_truth import compare_truth as compare
        from neuedit.compare.truth import TruthSet as Set
        out, draw, files = args.out / "truth", args.tasks is None or args.make_tasks, "psnr_vs_strokes.png"
        set_dir = args.tasks or out / "set"
        if draw:
            _draw_truth(args, b, data, set_dir)
    else:
        from neuedit.compare.kind_strokes import compare
        from neuedit.compare.tasks import TaskSet as Set
        out, draw, files, set_dir = args.out, args.make_tasks, "stability.png", args.tasks
        if draw:
            _draw_tasks(args, b, data, set_dir)
        if out is None:
            return 0
    heldout = None  # a set drawn now holds its own held-out images; else --data may replace the saved ones
    if data and not draw:
        from neuedit.compare.tasks import load_pool
        from neuedit.runtime.schema import empty as empty_schema
        heldout = load_pool(data, empty_schema(), args.heldout).images
    compare(b, Set.load(set_dir), compare_config(args), out, heldout=heldout, progress=not args.quiet,
            tasks_dir=set_dir)
    print(f"report -> {out / 'summary.md'} (results.csv, grid.png, {files})")
    return 0
