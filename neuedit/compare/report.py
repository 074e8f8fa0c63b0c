"""The report's tables: results.csv and stability.csv (one row per edit), summary.md (means with intervals,
paired differences, stability, how each metric is measured), and JSON-safe values for summary.json."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.config import CHAIN_METRICS, REAL, SOURCE, TASK_METRICS, CompareConfig


def _fmt(x: float, digits: int = 3) -> str:
    """`digits` significant digits; scientific notation for tiny and huge values; nan as a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "inf"
    a = abs(x)
    return f"{x:.{digits}g}" if (a >= 1e-3 or a == 0) and a < 1e4 else f"{x:.2e}"


def _cell(s: tuple) -> str:
    """A (mean, lo, hi, n) statistic as a table cell: mean [lo, hi]; the mean alone for n = 1."""
    mean, lo, hi, n = s
    if n == 0:
        return "–"
    return _fmt(mean) if n < 2 else f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]"


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def write_csv(path: Path, rows: list[dict]) -> None:
    """rows (dicts with the same keys, in order) -> a CSV file; no rows: an empty file."""
    if not rows:
        path.write_text("")
        return
    cols = list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(v) for k, v in r.items()})


def _csv_value(v):
    """Floats with 6 significant digits, nan as an empty cell (not applicable), inf as 'inf'."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


METRIC_NOTES = """\
## Metrics

- **Dist**: the report's Dist(I, I') on stroke pixels: mean L1 per stroke pixel and channel, in [-1, 1] units.
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


def summary_markdown(info: dict, stats: dict, kids: dict, diffs: dict, stab: dict, methods: list[str],
                     rounds: int, cfg: CompareConfig, by_kind: dict) -> str:
    """summary.md: one table per aspect (stats/diffs/by_kind/stab as from `stats.statistics`, kids
    {method: (mean, std)}, info as from `run.run_info`), the example grids and METRIC_NOTES."""
    ref = [SOURCE] + methods
    out = [f"# One-stage vs two-stage editing: {info['bundle']}", "",
           f"{info['n_tasks']} tasks ({info['task_mix']}), {info['n_chains']} chains of {rounds} edits, "
           f"task set `{info['tasks']}` (sha256 {info['tasks_digest'][:12]}), latent editor: {cfg.optimizer}"
           f"{'' if cfg.lr is None else f' lr {cfg.lr}'}{'' if not cfg.anchor else f' anchor {cfg.anchor}'}. "
           "Mean [95% bootstrap interval]; `source` is the unedited image.", ""]

    def table(title, cols, rows_, extra=None):
        header = ["method"] + [f"{lab} {'↑' if hi else '↓'}" for c, lab, hi in cols] + (extra[0] if extra else [])
        body = []
        for m in rows_:
            body.append([m] + [_cell(stats[m][c]) if m in stats else "–" for c, _, _ in cols]
                        + (extra[1](m) if extra else []))
        out.extend([f"## {title}", "", md_table(header, body), ""])

    cols = {c: (c, lab, hi) for c, lab, hi in TASK_METRICS}
    table("Following the strokes", [cols[c] for c in ("dist", "de00", "de_under", "edge_f1")], ref)
    table("Keeping the rest", [cols[c] for c in ("l1_out", "psnr_out", "ssim_out")], ref)
    kid_rows = ref + [REAL]
    table("Realism", [cols[c] for c in ("d_score", "attr_agree")], kid_rows,
          (["KID ↓ (± std)"], lambda m: [f"{_fmt(kids[m][0])} ± {_fmt(kids[m][1])}" if m in kids else "–"]))
    medians = info["median_ms"]
    table("Cost", [cols["ms"]], methods, (["median ms"], lambda m: [_fmt(medians.get(m, float("nan")))]))
    if diffs:
        header = ["method − two-stage"] + [lab for c, lab, _ in TASK_METRICS if c != "ms"]
        body = [[m] + [_cell(diffs[m][c]) + (" *" if _excludes_zero(diffs[m][c]) else "") for c, _, _ in TASK_METRICS
                       if c != "ms"] for m in diffs]
        out.extend(["## Paired differences against two-stage", "",
                    "Per task, method minus two-stage; * where the 95% interval excludes 0.", "",
                    md_table(header, body), ""])
    if by_kind:
        keys = ("dist", "de00", "edge_f1", "l1_out", "d_score")
        header = ["source", "stroke", "method", "n"] + [cols[c][1] for c in keys]
        body = []
        for (src, stroke), st in by_kind.items():
            for m in ref:
                body.append([src, stroke, m, str(st[m]["dist"][3])] + [_cell(st[m][c]) for c in keys])
        out.extend(["## By source and stroke kind", "", md_table(header, body), ""])
    if stab:
        header = ["method", "round"] + [f"{lab} {'↑' if hi else '↓'}" for _, lab, hi in CHAIN_METRICS] + ["KID ↓"]
        body = [[m, str(k)] + [_cell(stab[m][k][c]) for c, _, _ in CHAIN_METRICS]
                + [_fmt(info["chain_kid"][m][k - 1][0])] for m in methods for k in range(1, rounds + 1)]
        out.extend(["## Stability over successive edits", "",
                    f"{info['n_chains']} chains; KID per round is over only {info['n_chains']} images (noisy).", "",
                    md_table(header, body), "", "![stability](stability.png)", "",
                    "![stability grid](stability_grid.png)", ""])
    out.extend(["## Examples", "", "![grid](grid.png)", "",
                "Columns: original | strokes over the faded original | the latent editor's start (a photo's "
                "projection; the sample itself otherwise) | " + " | ".join(methods) + ".", ""])
    window = cfg.edge_window_px(info["resolution"])
    out.append(METRIC_NOTES.format(edge_method=cfg.edge_method, edge_tol=cfg.edge_tol, window=window,
                                   dilate=cfg.dilate, psnr_cap=M.PSNR_CAP, kid_subsets=cfg.kid_subsets,
                                   n_real=info["n_real"], threads=info["threads"], boot=cfg.boot,
                                   project_ms=(f"{_fmt(info['project_ms'])} ms per photo, batched, "
                                               f"{cfg.project_steps} Adam steps")
                                   if np.isfinite(info["project_ms"]) else "no photos here"))
    return "\n".join(out)


def _excludes_zero(s: tuple) -> bool:
    """Whether a (mean, lo, hi, n) interval lies wholly on one side of 0 (marked * in the table)."""
    _, lo, hi, n = s
    return n >= 2 and np.isfinite(lo) and (lo > 0 or hi < 0)


def jsonable(x):
    """x with str keys, lists for tuples, None for nan and inf, plain floats and ints (for json.dumps)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x

