"""The ground-truth report's tables: rows in CSV order, statistics (per method, per stroke count, per task
kind, paired against two-stage) and summary.md with how each metric is measured."""
from __future__ import annotations

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.config import REAL, SOURCE, TARGET, TRUTH_METRICS, TWO_STAGE, CompareConfig
from neuedit.compare.report import _cell, _excludes_zero, _fmt, md_table
from neuedit.compare.stats import aggregate, paired

HEAD = ["method", "task", "group", "kind", "fill", "source", "strokes", "stroke_px"]  # results.csv's first columns
DROP = ("sketch_from",)  # always "pair" here


def csv_rows(rows: list[dict]) -> list[dict]:
    """rows with the HEAD columns first, then every other column in the order it was scored."""
    return [{**{k: r[k] for k in HEAD}, **{k: v for k, v in r.items() if k not in HEAD and k not in DROP}}
            for r in rows]


def kind_label(row: dict) -> str:
    """'recolour', 'reshape/donor', 'differ', ... (reshape groups by fill)."""
    return f"{row['kind']}/{row['fill']}" if row.get("fill") else row["kind"]


def per_group(rows: list[dict], columns: list[str]) -> list[dict]:
    """One row per (group, method): each column the mean of the group's finite values over its stroke
    counts (inf PSNR as PSNR_CAP, as `mean_ci` counts it; nan when none), `task` set to the group.
    The tasks of a group share source and target, so intervals are taken over groups, not tasks."""
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        by.setdefault((r["group"], r["method"]), []).append(r)
    out = []
    for (g, m), rs in by.items():
        row = {"task": g, "group": g, "method": m, "source": rs[0]["source"], "kind": rs[0]["kind"],
               "fill": rs[0]["fill"]}
        for c in columns:
            v = np.asarray([r.get(c, np.nan) for r in rs], np.float64)
            v = np.where(np.isposinf(v), M.PSNR_CAP, v)
            v = v[np.isfinite(v)]
            row[c] = float(v.mean()) if len(v) else float("nan")
        out.append(row)
    return out


def truth_statistics(rows: list[dict], real_rows: list[dict], methods: list[str], strokes: list[int],
                     cfg: CompareConfig) -> dict:
    """Means with 95% bootstrap intervals (stat: (mean, lo, hi, n)) ->
    {"stats": {method: {column: stat}} (SOURCE, TARGET and REAL included), "by_kind": {(source kind,
     pair kind): {method: {column: stat}}}, "diffs": per group, method minus two-stage} over groups
    (`per_group`: n counts sources), and "by_strokes": {n: {method: {column: stat}}} over the tasks
    with n strokes (one per group)."""
    cols = [c for c, _, _ in TRUTH_METRICS]
    refs = [SOURCE, TARGET] + methods
    groups = per_group(rows, cols)
    stats = aggregate(groups, refs, cols, cfg)
    stats[REAL] = aggregate(real_rows, [REAL], cols, cfg)[REAL]
    by_strokes = {n: aggregate([r for r in rows if r["strokes"] == n], refs, cols, cfg) for n in strokes}
    by_kind = {}
    for key in sorted({(r["source"], kind_label(r)) for r in groups}):
        sub = [r for r in groups if (r["source"], kind_label(r)) == key]
        by_kind[key] = aggregate(sub, refs, cols, cfg)
    diffs = paired(groups, methods, [c for c in cols if c != "ms"], cfg) if TWO_STAGE in methods else {}
    return {"stats": stats, "by_strokes": by_strokes, "by_kind": by_kind, "diffs": diffs}


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
- **Dist**: the report's Dist(I, I') on stroke pixels (mean L1 per stroke pixel and channel, [-1, 1] units).
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


def truth_markdown(info: dict, st: dict, kids: dict, methods: list[str], cfg: CompareConfig) -> str:
    """summary.md of the ground-truth comparison (st: `truth_statistics`, kids {method: (mean, std)},
    info as from `truth_run.truth_info`)."""
    refs = [SOURCE, TARGET] + methods
    cols = {c: (c, lab, hi) for c, lab, hi in TRUTH_METRICS}
    stats = st["stats"]
    out = [f"# Ground truth: editors against known targets: {info['bundle']}", "",
           f"{info['n_tasks']} tasks: {info['n_groups']} sources with a known target ({info['group_mix']}), each with "
           f"{', '.join(map(str, info['strokes']))} strokes; set `{info['tasks']}` "
           f"(sha256 {info['tasks_digest'][:12]}); "
           f"latent editor: {cfg.optimizer}{'' if cfg.lr is None else f' lr {cfg.lr}'}. "
           "Mean [95% bootstrap interval].", ""]

    def header(keys):
        return [f"{cols[c][1]} {'↑' if cols[c][2] else '↓'}" for c in keys]

    def table(title, keys, names, extra=None):
        body = [[m] + [_cell(stats[m][c]) for c in keys] + (extra[1](m) if extra else []) for m in names]
        out.extend([f"## {title}", "", md_table(["method"] + header(keys) + (extra[0] if extra else []), body), ""])

    table("Against the target", ["psnr", "psnr_in", "psnr_rest", "ssim", "ssim_in", "l1_in", "de00_region"], refs)
    keys = ["psnr", "psnr_in", "ssim_in", "de00_region", "chamfer", "dist"]
    body = [[str(n), m, str(st["by_strokes"][n][m]["psnr"][3])] + [_cell(st["by_strokes"][n][m][c]) for c in keys]
            for n in info["strokes"] for m in [SOURCE] + methods]
    out.extend(["## By number of strokes", "", md_table(["strokes", "method", "n"] + header(keys), body), "",
                "![PSNR against the target vs strokes](psnr_vs_strokes.png)", ""])
    table("Following the strokes", ["dist", "de00", "edge_f1", "chamfer"], refs)
    keys = ["psnr", "psnr_in", "de00_region", "chamfer"]
    body = [[src, kind, m, str(s[m]["psnr"][3])] + [_cell(s[m][c]) for c in keys]
            for (src, kind), s in st["by_kind"].items() for m in [SOURCE] + methods]
    out.extend(["## By task kind", "", md_table(["source", "pair", "method", "n"] + header(keys), body), ""])
    medians = info["median_ms"]
    table("Realism and cost", ["d_score", "attr_agree", "l1_out", "ms"], refs + [REAL],
          (["KID ↓ (± std)", "median ms"],
           lambda m: [f"{_fmt(kids[m][0])} ± {_fmt(kids[m][1])}" if m in kids else "–",
                      _fmt(medians.get(m, float("nan")))]))
    if st["diffs"]:
        keys = ["psnr", "psnr_in", "ssim_in", "de00_region", "chamfer", "dist", "d_score"]
        body = [[m] + [_cell(st["diffs"][m][c]) + (" *" if _excludes_zero(st["diffs"][m][c]) else "") for c in keys]
                for m in st["diffs"]]
        out.extend(["## Paired differences against two-stage", "",
                    "Per source (its stroke counts averaged), method minus two-stage; "
                    "* where the 95% interval excludes 0.", "",
                    md_table(["method − two-stage"] + [cols[c][1] for c in keys], body), ""])
    out.extend(["## Examples", "", "![grid](grid.png)", "",
                "Columns: source | strokes over the faded source | target | " + " | ".join(methods) + ".", ""])
    out.append(TRUTH_NOTES.format(strokes=", ".join(map(str, info["strokes"])), psnr_cap=M.PSNR_CAP,
                                  edge_method=cfg.edge_method, edge_tol=cfg.edge_tol,
                                  window=cfg.edge_window_px(info["resolution"]), dilate=cfg.dilate,
                                  n_real=info["n_real"], threads=info["threads"], boot=cfg.boot))
    return "\n".join(out)


def stroke_curve(by_strokes: dict, methods: list[str], column: str) -> dict:
    """{method: (counts, means, lows, highs)} of one column against the stroke count, for the plot."""
    ns = sorted(by_strokes)
    out = {}
    for m in methods:
        s = [by_strokes[n][m][column] for n in ns]
        out[m] = (np.array(ns), *(np.array([x[k] for x in s]) for k in range(3)))
    return out
