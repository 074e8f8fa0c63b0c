"""The synthetic-strokes kind (`neuedit.compare.tasks`): every editor on every task and stability chain,
scored on following the strokes, keeping the rest, realism and cost; no answer to compare against.

Writes results.csv (per task and method), stability.csv (per chain, round and method), summary.md,
summary.json, grid.png, stability_grid.png, stability.png, projections.json and config.json."""
from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.config import CHAIN_METRICS, REAL, SOURCE, TASK_METRICS, CompareConfig, pick
from neuedit.compare.figures import band, write_bands, write_chain_grid, write_edit_grid
from neuedit.compare.harness import run_chains, run_tasks
from neuedit.compare.report import (cell, diff_section, fmt, grouped_table, heading, jsonable, kid_cell, md_table,
                                    opening, section, stat_table)
from neuedit.compare.run import Kind, Report, run, run_config, run_info, set_up
from neuedit.compare.scoring import score_realism
from neuedit.compare.stats import split, summarise
from neuedit.compare.tasks import TaskSet

METRIC_NOTES = """\
## Metrics

- **Dist**: the edit distance Dist(I, I') (docs/method.md §2) on stroke pixels: mean L1 per stroke pixel and channel,
  in [-1, 1] units.
- **ΔE00**, **ΔE<10** (colour strokes): CIEDE2000 (scikit-image `rgb2lab` + `deltaE_ciede2000`, sRGB/D65) between the
  result and the stroke colour on stroke pixels: the mean, and the share of stroke pixels under 10.
- **edge F1** (edge strokes): F1 of the sketch's 1-px lines against the result's edge map (`neuedit.synth.strokes.edge_map`,
  {edge_method}), a match within {edge_tol} px; precision counts only result edges within {window} px of a sketch line.
- **L1/PSNR/SSIM out**: the raw result (no paste-back) against the image before the edit (the photo, or G1's sample)
  outside the stroke mask dilated by {dilate}x{dilate}; L1 in [-1, 1] units; PSNR and SSIM (7x7 window) on [0, 1] RGB;
  an inf PSNR counts as {psnr_cap:g} dB in means. On photos the latent editor also pays for its projection (`start_l1`
  in results.csv is that projection's mean L1 error).
- **KID**: unbiased MMD² with the cubic polynomial kernel, mean ± std over {kid_subsets} random subsets, between the
  results and {n_real} held-out real images, on the project's fixed handcrafted descriptor (Lab colour moments on a
  2x2 grid, Lab histograms, HOG, uniform LBP; 454-d, at 64x64) — not Inception: it sees colour statistics, gradient
  layout and texture, not semantics; compare values only within this run. Row `real (held-out)`: D score of the held-out
  images, KID between two halves of them (the noise floor); `source`: the unedited images.
- **D score**: mean sigmoid of the stage-one discriminator's real/fake logit. **attr. agree**: share of known attributes
  (the sample's c; a photo's labels) on which D's ACGAN head agrees (exclusive group: its largest logit is the labelled
  attribute); strokes may legitimately change an attribute (a hair colour), so read it as consistency, not accuracy.
- **ms/edit**: wall time of one edit at batch 1 on this machine ({threads} torch threads); the latent editor's includes
  its final render, the two-stage editor's includes G1 for samples; projection of a photo is extra ({project_ms}).
- Intervals: 95% percentile bootstrap over tasks ({boot} resamples). Paired differences are per task, method minus
  two-stage.
- Stability: each chain applies K successive edits, one new stroke each; every edit gets the previous result and all
  strokes so far (as the web client sends them). Dist new: on the new stroke; Dist earlier: on earlier strokes not
  painted over; untouched: outside the dilated union of all strokes, against the image before the first edit.
"""


class Strokes(Kind):
    """Every editor on every task (batch 1, timed) and K successive edits per chain of a task set."""

    def __init__(self, bundle, ts: TaskSet, cfg: CompareConfig, heldout: np.ndarray | None = None, log=print,
                 tasks_dir: str | Path | None = None):
        sources = [t.source for t in ts.tasks] + [c.source for c in ts.chains]
        self.b, self.editors, self.prep = set_up(bundle, ts.check, cfg, sources, log)
        self.ts, self.cfg, self.tasks_dir = ts, cfg, tasks_dir
        self.real = ts.heldout if heldout is None else heldout  # uint8 [M, H, W, 3]
        self.rounds = len(ts.chains[0].rounds) if ts.chains else 0
        self.title = f"compare {self.b.name}"

    def edits(self) -> int:
        return (len(self.ts.tasks) + len(self.ts.chains) * self.rounds) * len(self.editors.methods)

    def edit(self, bar) -> tuple:
        """-> (task rows, {method: [T, 3, R, R]}, chain rows, {method: [C, K + 1, 3, R, R]})."""
        return (*run_tasks(self.ts, self.editors, self.prep, bar),
                *run_chains(self.ts, self.editors, self.prep, len(self.ts.tasks), bar))

    def report(self, edited: tuple) -> Report:
        rows, images, chain_rows, chain_images = edited
        ts, cfg, methods = self.ts, self.cfg, self.editors.methods
        realism = score_realism(self.editors, rows, images, {t.id: t.source.c for t in ts.tasks}, self.real,
                                self.b.schema, cfg, chain_rows, chain_images)
        st = summarise(rows, realism.real_rows, [SOURCE] + methods, methods, [c for c, _, _ in TASK_METRICS], cfg,
                       lambda r: (r["source"], r["stroke"]))
        per_round = split(chain_rows, lambda r: r["round"], methods, [c for c, _, _ in CHAIN_METRICS], cfg)
        st["stab"] = {m: {k: s[m] for k, s in per_round.items()} for m in methods} if chain_rows else {}
        mix = Counter(f"{t.source.kind}/{t.stroke.kind}" for t in ts.tasks)
        info = run_info(self.b, self.tasks_dir, ("tasks.json",), rows, methods, n_tasks=len(ts.tasks),
                        n_chains=len(ts.chains), task_mix=", ".join(f"{v} {k}" for k, v in sorted(mix.items())),
                        n_real=len(self.real), project_ms=self.prep.project_ms, chain_kid=realism.chain_kid)
        summary = {"info": info, "methods": st["stats"], "kid": realism.kid, "paired_vs_two_stage": st["diffs"],
                   "by_kind": {f"{a}/{s}": v for (a, s), v in st["by_kind"].items()}, "stability": st["stab"]}
        prep, n = self.prep, min(cfg.grid_tasks, len(ts.tasks))
        figures = {"grid.png": lambda p: write_edit_grid(
            p, ts.tasks, list(range(n)), ("original", prep.before), ("latent start", prep.start_images), images,
            methods, lambda i: f"{ts.tasks[i].id} {ts.tasks[i].source.kind}/{ts.tasks[i].stroke.kind}")}
        if chain_rows:
            figures["stability_grid.png"] = lambda p: write_chain_grid(p, ts, prep.before[len(ts.tasks):], chain_images,
                                                                       methods, cfg.grid_chains)
            figures["stability.png"] = lambda p: write_bands(
                p, [(f"{label} ({'higher' if hi else 'lower'} is better)",
                     {m: band(list(per_round), [s[m][c] for s in per_round.values()]) for m in methods})
                    for c, label, hi in CHAIN_METRICS], "round", (3.2, 3))
        return Report(run_config(cfg, info), {"results.csv": rows, "stability.csv": chain_rows}, summary,
                      self.markdown(info, st, realism.kid), figures, {"projections.json": prep.projections})

    def markdown(self, info: dict, st: dict, kids: dict) -> str:
        """summary.md: one table per aspect (st as from `report`), the example grids and METRIC_NOTES."""
        cfg, methods, stats, rounds = self.cfg, self.editors.methods, st["stats"], self.rounds
        ref = [SOURCE] + methods
        cols = partial(pick, TASK_METRICS)  # the metrics named, in that order
        out = opening("One-stage vs two-stage editing", f"{info['n_tasks']} tasks ({info['task_mix']}), "
                      f"{info['n_chains']} chains of {rounds} edits", info, cfg, "; `source` is the unedited image")
        out += section("Following the strokes", stat_table(stats, ref, cols("dist", "de00", "de_under", "edge_f1")))
        out += section("Keeping the rest", stat_table(stats, ref, cols("l1_out", "psnr_out", "ssim_out")))
        out += section("Realism", stat_table(stats, ref + [REAL], cols("d_score", "attr_agree"),
                                             (["KID ↓ (± std)"], lambda m: [kid_cell(kids, m)])))
        medians = info["median_ms"]
        out += section("Cost", stat_table(stats, methods, cols("ms"),
                                          (["median ms"], lambda m: [fmt(medians.get(m, float("nan")))])))
        out += diff_section(st["diffs"], [c for c in TASK_METRICS if c[0] != "ms"], "Per task")
        if st["by_kind"]:
            out += section("By source and stroke kind", grouped_table(
                st["by_kind"], ["source", "stroke"], ref, cols("dist", "de00", "edge_f1", "l1_out", "d_score")))
        if st["stab"]:
            body = [[m, str(k)] + [cell(st["stab"][m][k][c]) for c, _, _ in CHAIN_METRICS]
                    + [fmt(info["chain_kid"][m][k - 1][0])] for m in methods for k in range(1, rounds + 1)]
            out += section("Stability over successive edits",
                           f"{info['n_chains']} chains; KID per round is over only {info['n_chains']} images (noisy).",
                           md_table(["method", "round"] + [heading(c) for c in CHAIN_METRICS] + ["KID ↓"], body),
                           "![stability](stability.png)", "![stability grid](stability_grid.png)")
        out += section("Examples", "![grid](grid.png)",
                       "Columns: original | strokes over the faded original | the latent editor's start (a photo's "
                       "projection; the sample itself otherwise) | " + " | ".join(methods) + ".")
        steps = "the projection's default steps" if cfg.project_steps is None else f"{cfg.project_steps} Adam steps"
        project_ms = (f"{fmt(info['project_ms'])} ms per photo, batched, {steps}"
                      if np.isfinite(info["project_ms"]) else "no photos here")
        out.append(METRIC_NOTES.format(edge_method=cfg.edge_method, edge_tol=cfg.edge_tol, dilate=cfg.dilate,
                                       window=cfg.edge_window_px(info["resolution"]), psnr_cap=M.PSNR_CAP,
                                       kid_subsets=cfg.kid_subsets, n_real=info["n_real"], threads=info["threads"],
                                       boot=cfg.boot, project_ms=project_ms))
        return "\n".join(out)


def compare(bundle, ts: TaskSet, cfg: CompareConfig, out: str | Path, heldout: np.ndarray | None = None,
            progress: bool = True, log=print, tasks_dir: str | Path | None = None) -> dict:
    """Run every method on every task and chain of `ts`, write the report into `out`; returns the
    summary (as summary.json). `heldout` uint8 [M, H, W, 3]: real images for KID (default the set's)."""
    return jsonable(run(Strokes(bundle, ts, cfg, heldout, log, tasks_dir), out, progress).summary)
