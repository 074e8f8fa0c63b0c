"""Scoring against a known answer: per result, metrics against the task's target (`neuedit.evaluation.metrics`);
per method, realism against the target's attributes and held-out photos."""
from __future__ import annotations

from typing import Callable

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.data.datasets import to_unit_range
from neuedit.compare.config import REAL, CompareConfig
from neuedit.compare.editors import Editors
from neuedit.compare.scoring import kid_of, realism_columns
from neuedit.compare.sketches import sketch_arrays
from neuedit.compare.truth import Answer, TruthSet


def truth_metrics(result: np.ndarray, target: np.ndarray, answer: Answer, sketch: np.ndarray, mask: np.ndarray,
                  cfg: CompareConfig) -> dict:
    """One result [3, R, R] against the target [3, R, R] (both in [-1, 1]): L1/PSNR/SSIM whole, in the
    region and outside it, CIEDE2000 over the region; on the strokes, ΔE00 under colour strokes
    and, for line strokes, edge F1 and chamfer distance against the result's edges. The stroke
    columns replace `edit_metrics`' ones, which take the whole mask as one kind."""
    nan = float("nan")
    row = {**M.target_metrics(result, target, answer.region),
           "de00_region": M.region_delta_e(result, target, answer.region)}
    colour = (mask[0] > 0.5) & ~answer.lines  # a reshape sketch may hold a colour stroke beside its lines
    row["de00"], row["de_under"] = (M.delta_e(result, sketch, colour[None].astype(np.float32), cfg.de_threshold)
                                    if colour.any() else (nan, nan))
    row["edge_p"] = row["edge_r"] = row["edge_f1"] = row["chamfer"] = nan
    if answer.lines.any():
        edges = M.result_edges(result, cfg.edge_method)
        row["edge_p"], row["edge_r"], row["edge_f1"] = M.edge_f1(edges, answer.lines, cfg.edge_tol,
                                                                 cfg.edge_window_px(result.shape[-1]))
        row["chamfer"] = M.chamfer(answer.lines, edges)
    return row


def targets_of(ts: TruthSet) -> np.ndarray:
    """The answers' targets as the models see images: float32 [T, 3, R, R] in [-1, 1]."""
    r = ts.resolution
    return (np.stack([to_unit_range(a.target) for a in ts.answers]) if ts.answers
            else np.zeros((0, 3, r, r), np.float32))


def scorer(ts: TruthSet, targets: np.ndarray, cfg: CompareConfig) -> Callable[[int, np.ndarray], dict]:
    """score(i, result) for `harness.run_tasks`: task i's group, pair kind and stroke count, and
    `truth_metrics` against its target."""
    arrays = [sketch_arrays(t.stroke.rgba, ts.resolution) for t in ts.tasks.tasks]

    def score(i: int, result: np.ndarray) -> dict:
        a = ts.answers[i]
        return {"group": a.group, "kind": a.kind, "fill": a.fill, "strokes": a.strokes,
                **truth_metrics(result, targets[i], a, *arrays[i], cfg)}
    return score


def truth_realism(ts: TruthSet, editors: Editors, rows: list[dict], images: dict, real: np.ndarray, schema,
                  cfg: CompareConfig) -> tuple[dict, list[dict]]:
    """Adds d_score and attr_agree (D's ACGAN head against the *target's* attributes) to rows; KID of
    each method's results against held-out photos `real` uint8 [M, R, R, 3] -> ({method: (mean, std)}
    with REAL: two halves of the photos, the noise floor), rows for the photos with their D score."""
    real_f = M.image_features(real) if len(real) else np.zeros((0, 454))
    want = {t.id: a.target_c for t, a in zip(ts.tasks.tasks, ts.answers)}
    kids = {}
    for m, ims in images.items():
        rs = [row for row in rows if row["method"] == m]
        realism_columns(rs, ims, [want[row["task"]] for row in rs], editors, schema)
        kids[m] = kid_of(ims, real_f, cfg)
    half = len(real_f) // 2
    kids[REAL] = M.kid(real_f[:half], real_f[half:], cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
    real_rows = [{"method": REAL} for _ in range(len(real))]
    if len(real):
        realism_columns(real_rows, to_unit_range(real), [None] * len(real), editors, schema)
    return kids, real_rows
