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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from PIL import Image

from neuedit.compare.config import CompareConfig
from neuedit.compare.tasks import SOURCE_KINDS, STROKE_KINDS, TaskConfig
from neuedit.compare.truth_draw import REAL_KINDS, TruthConfig
from neuedit.config import flags as tcli
from neuedit.runtime import bundle as bundle_mod
from neuedit.errors import UsageError, MissingFileError
from neuedit.synth.pairs import FILLS


@dataclass(frozen=True)
class CompareCommand:
    """Everything `neuedit compare` takes: the bundle and folders, the data, how a task set or a
    ground-truth set is drawn and the comparison's CompareConfig (docs/comparison.md)."""
    bundle: str                          # model bundle folder (g1; g2 for two-stage; d for realism)
    tasks: Path | None = None            # task set folder (written with --make-tasks, read otherwise)
    out: Path | None = None              # report folder (results.csv, summary.md, grid.png, ...)
    make_tasks: bool = False             # draw a task set into --tasks first
    data: tuple[str, ...] = ()           # real image folders: the pool for --make-tasks (and --truth), else
                                         # held-out images for KID
    layout: Literal["auto", "single", "pair"] = "auto"  # data layout; auto: 'pair' when the first image is
                                                        # twice as wide as high
    pair_image: Literal["left", "right"] = "left"       # pair layout: the photo's half
    labels: str | None = None            # labels CSV (default: labels.csv in the data folder or its parent)
    skip: int = 0                        # leave out the first N images of each data folder (sorted by name):
                                         # the training split
    task_set: TaskConfig = field(default_factory=TaskConfig)  # drawing a task set (--make-tasks)
    user_sketches: Path | None = None    # folder of RGBA PNG sketches to add (one task per source kind)
    truth: bool = False                  # draw (or with --tasks, load) a ground-truth set and score the editors
                                         # against its targets into OUT/truth
    truth_set: TruthConfig = field(default_factory=TruthConfig)  # drawing a ground-truth set (--truth);
                                         # --seed, --heldout, --pool and --edges are the task set's
    compare: CompareConfig = field(default_factory=CompareConfig)  # the comparison
    threads: int = 0                     # torch threads (0: torch's default)
    quiet: bool = False                  # no progress bar

    def __post_init__(self):
        # one --seed, --heldout, --pool and --edges for both kinds of set, as they have always been:
        # the truth set drawn is the one this config holds
        shared = {k: getattr(self.task_set, k) for k in SHARED}
        object.__setattr__(self, "truth_set", replace(self.truth_set, **shared))


# the truth set's fields that take the task set's values (CompareCommand.__post_init__)
SHARED = ("seed", "heldout", "pool", "edges")
# the settings `neuedit compare` has no flag for (the Python API sets them; the defaults apply), and
# the truth set's shared fields, whose flags are the task set's
SKIP = ("task_set.strokes", "task_set.donor_tries",
        *(f"truth_set.{k}" for k in SHARED), "truth_set.z_noise", "truth_set.tries", "truth_set.pair",
        "compare.project_lr", "compare.project_candidates", "compare.edge_window", "compare.edge_method",
        "compare.de_threshold", "compare.kid_subsets", "compare.kid_subset_size", "compare.boot",
        "compare.grid_chains", "compare.seed")
# the flag names `neuedit compare` has always had (docs/comparison.md uses them)
DECLARED = dict(aliases={"truth_set.real": "truth-real", "truth_set.samples": "truth-samples",
                         "truth_set.strokes": "truth-strokes", "truth_set.kinds": "truth-kinds",
                         "truth_set.fills": "truth-fills"},
                skip=SKIP,
                # the nested configs type these as str (and check them when built): the choices offered
                choices={"task_set.kinds": STROKE_KINDS, "task_set.sources": SOURCE_KINDS,
                         "task_set.edges": ("auto", "pairs", "canny", "xdog"), "truth_set.kinds": REAL_KINDS,
                         "truth_set.fills": tuple(f for f in FILLS if f != "given"), "compare.optimizer": ("gd", "adam")},
                may_be_empty=("compare.latent_steps",))  # no count at all: the two-stage editor alone
COMMAND = tcli.Command(CompareCommand, DECLARED)
build_config = COMMAND.build_config


add_arguments = COMMAND.add_arguments


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


def data_configs(cmd: CompareCommand, resolution: int) -> list:
    from neuedit.data.datasets import DataConfig
    out = []
    for d in cmd.data:
        root = Path(d)
        if not root.is_dir():
            raise MissingFileError(f"data folder {root} not found")
        out.append(DataConfig(str(root), resolution=resolution, layout=_layout(root, cmd.layout),
                              pair_image=cmd.pair_image, labels=_labels(root, cmd.labels), flip=False,
                              skip=cmd.skip))
    return out


def _draw_tasks(cmd: CompareCommand, b, data, set_dir: Path) -> None:
    """--make-tasks: draw a task set into `set_dir`."""
    from neuedit.compare.tasks import make_tasks
    cfg = cmd.task_set
    ts = make_tasks(b, data, cfg, cmd.user_sketches)
    ts.save(set_dir)
    print(f"{len(ts.tasks)} tasks, {len(ts.chains)} chains of {cfg.rounds}, {len(ts.heldout)} held-out "
          f"images -> {set_dir}")


def _draw_truth(cmd: CompareCommand, b, data, set_dir: Path) -> None:
    """--truth without a set named: draw a ground-truth set into `set_dir`."""
    from neuedit.compare.truth_draw import make_truth
    cfg = cmd.truth_set
    if not data and cfg.real:
        raise UsageError("give --data (held-out real images for the photo tasks), or --tasks (a ground-truth set)")
    ts = make_truth(b, data, cfg)
    ts.save(set_dir)
    skipped = ts.tasks.meta["skipped_groups"]
    print(f"{len(ts.answers)} ground-truth tasks ({len({a.group for a in ts.answers})} sources x "
          f"{len(cfg.strokes)} stroke counts), {len(ts.tasks.heldout)} held-out images -> {set_dir}"
          + (f"; left out for want of strokes: {', '.join(skipped)}" if skipped else ""))


def run(args) -> int:
    """Draw a set (--make-tasks, or --truth without --tasks) and/or compare on it: one path for both kinds."""
    cmd = build_config(args)
    import torch
    if cmd.threads:
        torch.set_num_threads(cmd.threads)
    if cmd.truth and cmd.out is None:
        raise UsageError("give --out (the report goes into OUT/truth)")
    if not cmd.truth and cmd.tasks is None:
        raise UsageError("give --tasks (the task set folder)")
    if not cmd.truth and not cmd.make_tasks and cmd.out is None:
        raise UsageError("give --out (the report folder), or --make-tasks to draw a task set")
    b = bundle_mod.read(cmd.bundle)
    data = data_configs(cmd, b.resolution)
    if cmd.truth:
        from neuedit.compare.kind_truth import compare_truth as compare
        from neuedit.compare.truth import TruthSet as Set
        out, draw, files = cmd.out / "truth", cmd.tasks is None or cmd.make_tasks, "psnr_vs_strokes.png"
        set_dir = cmd.tasks or out / "set"
        if draw:
            _draw_truth(cmd, b, data, set_dir)
    else:
        from neuedit.compare.kind_strokes import compare
        from neuedit.compare.tasks import TaskSet as Set
        out, draw, files, set_dir = cmd.out, cmd.make_tasks, "stability.png", cmd.tasks
        if draw:
            _draw_tasks(cmd, b, data, set_dir)
        if out is None:
            return 0
    heldout = None  # a set drawn now holds its own held-out images; else --data may replace the saved ones
    if data and not draw:
        from neuedit.compare.tasks import load_pool
        from neuedit.runtime.schema import empty as empty_schema
        heldout = load_pool(data, empty_schema(), cmd.task_set.heldout).images
    compare(b, Set.load(set_dir), cmd.compare, out, heldout=heldout, progress=not cmd.quiet,
            tasks_dir=set_dir)
    print(f"report -> {out / 'summary.md'} (results.csv, grid.png, {files})")
    return 0
