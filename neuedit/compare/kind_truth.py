"""The known-target kind (`neuedit.compare.truth`): every editor on every task of a ground-truth set, scored
against the target, per source (its stroke counts averaged) and per stroke count.

Writes results.csv (one row per editor and task, with the `source` and `target` reference rows),
summary.md, summary.json, psnr_vs_strokes.png, grid.png, projections.json and config.json."""
from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.config import REAL, SOURCE, TARGET, TRUTH_METRICS, CompareConfig, pick
from neuedit.compare.figures import band, write_bands, write_edit_grid
from neuedit.compare.harness import run_tasks
from neuedit.compare.report import (diff_section, fmt, grouped_table, jsonable, kid_cell, opening, section,
                                    stat_table)
from neuedit.compare.run import Kind, Report, run, run_config, run_info, set_up
from neuedit.compare.scoring import score_realism, target_scorer, targets_of
from neuedit.compare.stats import per_group, split, summarise
from neuedit.compare.truth import TruthSet

HEAD = ["method", "task", "group", "kind", "fill", "source", "strokes", "stroke_px"]  # results.csv's first columns
DROP = ("sketch_from",)  # always "pair" here
CURVES = [("psnr", "PSNR vs target, whole image (dB)"), ("psnr_in", "PSNR vs target, inside the region (dB)")]

TRUTH_NOTES = """\
## Metrics

Every task has a known answer: the target. **Real photos**: the target is a held-out photo; the source is the photo
with one region changed (`recolour`: a colour-coherent region moved to another colour of the domain, its shading kept;
`reshape`: a region replaced by a donor photo's pixels or a blur); the strokes are brush strokes in the target's
colours inside the region (recolour) or the target's own 1-px edge lines there, longest first (reshape, sometimes with
one colour stroke). **Stage-one samples**: source G1(z, c), target G1(z', c') with one exclusive attribute group of c
changed (or z' a nearby z for unconditional bundles); the strokes go where they differ most, in the target's colours;
the latent editor starts from (z, c) exactly. The *region* is where target and source differ by construction. Each
source and target is edited with {strokes} strokes (nested), so the stroke-count table and plot are paired.

- **PSNR / SSIM / L1**: the raw result (no paste-back) against the target over the whole image, inside the region
  (`region`, `_in` in results.csv) and outside it (`rest`); PSNR and SSIM (7x7 window, computed on the whole image and
  averaged over the pixels) on [0, 1] RGB, L1 in [-1, 1] units; an inf PSNR (identical pixels) counts as
  {psnr_cap:g} dB in means.
- **ΔE00 region**: CIEDE2000 (scikit-image, sRGB/D65) between result and target averaged over the region, not only
  under the strokes. **ΔE00 strokes**: between result and stroke colour under the colour strokes.
- **Dist**: the edit distance Dist(I, I') (docs/method.md §2) on stroke pixels (mean L1 per stroke pixel and channel,
  [-1, 1] units).
- **edge F1** and **chamfer** (tasks with line strokes): the result's edge map (`neuedit.synth.strokes.edge_map`,
  {edge_method}) against the line strokes: F1 with a {edge_tol} px match, precision counting result edges within
  {window} px of a line; chamfer: mean distance (px) from each line pixel to the nearest result edge (the image diagonal
  when the result has no edges). The target itself need not score an F1 of 1: its other edges near the lines count
  against precision.
- **L1 out**: against the *source* outside the stroke mask dilated by {dilate}x{dilate} (as in the task comparison).
- **D score**, **attr. agree** (the stage-one D's ACGAN head against the *target's* attributes: the photo's labels,
  the sample's c'), **KID** against {n_real} held-out photos (the project's handcrafted descriptor, not Inception;
  compare values only within this run) and **ms/edit** (batch 1, {threads} torch threads) as in the task comparison.
- Rows `source` (the unedited source) and `target` (the answer scored as a result: PSNR inf, SSIM 1, L1 and ΔE00 0)
  are references. Intervals: 95% percentile bootstrap ({boot} resamples) over sources (each source's tasks averaged
  first: they share source and target) in the whole-set, task-kind and paired tables, over the tasks with that many
  strokes (one per source) in the stroke-count table; `n` counts sources.
"""


def kind_label(row: dict) -> str:
    """'recolour', 'reshape/donor', 'differ', ... (reshape groups by fill)."""
    return f"{row['kind']}/{row['fill']}" if row.get("fill") else row["kind"]


def csv_rows(rows: list[dict]) -> list[dict]:
    """rows with the HEAD columns first, then every other column in the order it was scored."""
    return [{**{k: r[k] for k in HEAD}, **{k: v for k, v in r.items() if k not in HEAD and k not in DROP}}
            for r in rows]


def grid_tasks(ts: TruthSet, n: int) -> list[int]:
    """At least `n` task indices for the grid (none when n <= 0): whole groups (every stroke count), one
    group of each (source kind, pair kind) in turn, and every kind at least once, so both show."""
    if n <= 0:
        return []
    groups: dict[str, list[int]] = {}
    kinds: dict[str, list[str]] = {}
    for i, (t, a) in enumerate(zip(ts.tasks.tasks, ts.answers)):
        if a.group not in groups:
            kinds.setdefault(f"{t.source.kind}/{kind_label(vars(a))}", []).append(a.group)
        groups.setdefault(a.group, []).append(i)
    order, queues = [], [list(q) for q in kinds.values()]
    while any(queues):
        order += [q.pop(0) for q in queues if q]
    picked: list[int] = []
    for k, g in enumerate(order):
        if len(picked) >= n and k >= len(queues):  # the first len(queues) groups are one of each kind
            break
        picked += groups[g]
    return picked


class Truth(Kind):
    """Every editor on every task of a ground-truth set (batch 1, timed), the targets scored as a reference."""

    def __init__(self, bundle, ts: TruthSet, cfg: CompareConfig, heldout: np.ndarray | None = None, log=print,
                 tasks_dir: str | Path | None = None):
        self.b, self.editors, self.prep = set_up(bundle, ts.check, cfg, [t.source for t in ts.tasks.tasks], log)
        ts.check_samples(self.prep.before)
        self.ts, self.cfg, self.tasks_dir = ts, cfg, tasks_dir
        self.real = ts.tasks.heldout if heldout is None else heldout  # uint8 [M, R, R, 3]
        self.targets = targets_of(ts)
        self.title = f"truth {self.b.name}"

    def edits(self) -> int:
        return len(self.ts.answers) * len(self.editors.methods)

    def edit(self, bar) -> tuple:
        """-> (rows, {method: [T, 3, R, R]}), SOURCE and TARGET included."""
        return run_tasks(self.ts.tasks, self.editors, self.prep, bar,
                         score=target_scorer(self.ts, self.targets, self.cfg), references={TARGET: self.targets})

    def report(self, edited: tuple) -> Report:
        rows, images = edited
        ts, cfg, methods = self.ts, self.cfg, self.editors.methods
        wants = {t.id: a.target_c for t, a in zip(ts.tasks.tasks, ts.answers)}  # D's attributes: the target's
        realism = score_realism(self.editors, rows, images, wants, self.real, self.b.schema, cfg)
        cols, refs = [c for c, _, _ in TRUTH_METRICS], [SOURCE, TARGET] + methods
        st = summarise(per_group(rows, cols), realism.real_rows, refs, methods, cols, cfg,
                       lambda r: (r["source"], kind_label(r)))
        st["by_strokes"] = split(rows, lambda r: r["strokes"], refs, cols, cfg)
        firsts = {}
        for t, a in zip(ts.tasks.tasks, ts.answers):
            firsts.setdefault(a.group, f"{t.source.kind} {kind_label(vars(a))}")
        mix = Counter(firsts.values())
        info = run_info(self.b, self.tasks_dir, ("tasks.json", "truth.json"), rows, methods, n_tasks=len(ts.answers),
                        n_groups=len(firsts), group_mix=", ".join(f"{v} {k}" for k, v in sorted(mix.items())),
                        strokes=ts.strokes, skipped_groups=ts.tasks.meta.get("skipped_groups", []),
                        n_real=len(self.real), project_ms=self.prep.project_ms)
        summary = {"info": info, "methods": st["stats"], "kid": realism.kid, "paired_vs_two_stage": st["diffs"],
                   "by_strokes": st["by_strokes"], "by_kind": {f"{a}/{k}": v for (a, k), v in st["by_kind"].items()}}
        ns, shown = list(st["by_strokes"]), [SOURCE] + methods
        figures = {} if not rows else {"psnr_vs_strokes.png": lambda p: write_bands(
            p, [(title, {f"{m} (no edit)" if m == SOURCE else m: band(ns, [st["by_strokes"][n][m][c] for n in ns])
                         for m in shown}) for c, title in CURVES],
            "strokes", (4.2, 3.4), log_x=True, references=(f"{SOURCE} (no edit)",))}
        figures["grid.png"] = lambda p: write_edit_grid(
            p, ts.tasks.tasks, grid_tasks(ts, cfg.grid_tasks), ("source", self.prep.before), ("target", self.targets),
            images, methods, lambda i: f"{ts.tasks.tasks[i].id} {kind_label(vars(ts.answers[i]))}")
        return Report(run_config(cfg, info), {"results.csv": csv_rows(rows)}, summary,
                      self.markdown(info, st, realism.kid), figures, {"projections.json": self.prep.projections})

    def markdown(self, info: dict, st: dict, kids: dict) -> str:
        """summary.md (st as from `report`): against the target, per stroke count, following the strokes,
        per task kind, realism and cost, paired differences, examples and TRUTH_NOTES."""
        cfg, methods, stats = self.cfg, self.editors.methods, st["stats"]
        refs, shown = [SOURCE, TARGET] + methods, [SOURCE] + methods
        cols = partial(pick, TRUTH_METRICS)  # the metrics named, in that order
        out = opening("Ground truth: editors against known targets", f"{info['n_tasks']} tasks: {info['n_groups']} "
                      f"sources with a known target ({info['group_mix']}), each with "
                      f"{', '.join(map(str, info['strokes']))} strokes", info, cfg)
        out += section("Against the target",
                       stat_table(stats, refs, cols("psnr", "psnr_in", "psnr_rest", "ssim", "ssim_in", "l1_in",
                                                    "de00_region")))
        out += section("By number of strokes", grouped_table(st["by_strokes"], ["strokes"], shown,
                                                              cols("psnr", "psnr_in", "ssim_in", "de00_region",
                                                                   "chamfer", "dist")),
                       "![PSNR against the target vs strokes](psnr_vs_strokes.png)")
        out += section("Following the strokes", stat_table(stats, refs, cols("dist", "de00", "edge_f1", "chamfer")))
        out += section("By task kind", grouped_table(st["by_kind"], ["source", "pair"], shown,
                                                      cols("psnr", "psnr_in", "de00_region", "chamfer")))
        medians = info["median_ms"]
        out += section("Realism and cost", stat_table(
            stats, refs + [REAL], cols("d_score", "attr_agree", "l1_out", "ms"),
            (["KID ↓ (± std)", "median ms"], lambda m: [kid_cell(kids, m), fmt(medians.get(m, float("nan")))])))
        out += diff_section(st["diffs"], cols("psnr", "psnr_in", "ssim_in", "de00_region", "chamfer", "dist",
                                              "d_score"), "Per source (its stroke counts averaged)")
        out += section("Examples", "![grid](grid.png)",
                       "Columns: source | strokes over the faded source | target | " + " | ".join(methods) + ".")
        out.append(TRUTH_NOTES.format(strokes=", ".join(map(str, info["strokes"])), psnr_cap=M.PSNR_CAP,
                                      edge_method=cfg.edge_method, edge_tol=cfg.edge_tol,
                                      window=cfg.edge_window_px(info["resolution"]), dilate=cfg.dilate,
                                      n_real=info["n_real"], threads=info["threads"], boot=cfg.boot))
        return "\n".join(out)


def compare_truth(bundle, ts: TruthSet, cfg: CompareConfig, out: str | Path, heldout: np.ndarray | None = None,
                  progress: bool = True, log=print, tasks_dir: str | Path | None = None) -> dict:
    """Run every editor on every task of `ts`, score against the targets and write the report into
    `out`. `heldout` uint8 [M, R, R, 3]: photos for KID (default the set's). Returns the summary
    (as summary.json)."""
    return jsonable(run(Truth(bundle, ts, cfg, heldout, log, tasks_dir), out, progress).summary)
