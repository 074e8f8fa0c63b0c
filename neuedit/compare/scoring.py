"""The scorers of an edit result (`neuedit.evaluation.metrics`): following the strokes and keeping the
rest, against a known target, and realism (the stage-one D's score and attribute agreement, KID
against held-out real images) per method and per stability round. The semantic kind's judge is
`neuedit.compare.semantic.score`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from neuedit.evaluation import metrics as M
from neuedit.data.datasets import to_unit_range
from neuedit.compare.config import REAL, CompareConfig
from neuedit.compare.editors import Editors
from neuedit.compare.sketches import sketch_arrays
from neuedit.compare.truth import Answer, TruthSet


def edit_metrics(result: np.ndarray, before: np.ndarray, sketch: np.ndarray, mask: np.ndarray, kind: str,
                 cfg: CompareConfig) -> dict:
    """Following the strokes and keeping the rest for one result [3, R, R] (see neuedit.evaluation.metrics)."""
    nan = float("nan")
    row = {"dist": M.stroke_dist(result, sketch, mask), "de00": nan, "de_under": nan,
           "edge_p": nan, "edge_r": nan, "edge_f1": nan}
    if kind == "colour":
        row["de00"], row["de_under"] = M.delta_e(result, sketch, mask, cfg.de_threshold)
    else:
        window = cfg.edge_window_px(result.shape[-1])
        row["edge_p"], row["edge_r"], row["edge_f1"] = M.edge_f1(M.result_edges(result, cfg.edge_method),
                                                                 mask[0] > 0.5, cfg.edge_tol, window)
    row.update(M.keep_metrics(result, before, mask, cfg.dilate))
    return row


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


def target_scorer(ts: TruthSet, targets: np.ndarray, cfg: CompareConfig) -> Callable[[int, np.ndarray], dict]:
    """score(i, result) for `harness.run_tasks`: task i's group, pair kind and stroke count, and
    `truth_metrics` against targets[i] [3, R, R]."""
    arrays = [sketch_arrays(t.stroke.rgba, ts.resolution) for t in ts.tasks.tasks]

    def score(i: int, result: np.ndarray) -> dict:
        a = ts.answers[i]
        return {"group": a.group, "kind": a.kind, "fill": a.fill, "strokes": a.strokes,
                **truth_metrics(result, targets[i], a, *arrays[i], cfg)}
    return score


def realism_columns(rows: list[dict], images: np.ndarray, wants: list, editors: Editors, schema) -> None:
    """Add d_score and attr_agree to rows (one per image [N, 3, R, R]); wants: known c or None."""
    score, c_logits = editors.discriminate(images)
    for row, s, cl, c in zip(rows, score, c_logits, wants):
        row["d_score"] = float(s)
        row["attr_agree"] = (M.attribute_agreement(cl, c, schema)
                             if (c is not None and schema.c_dim and np.isfinite(cl).all()) else float("nan"))


def kid_of(images: np.ndarray, real_features: np.ndarray, cfg: CompareConfig) -> tuple[float, float]:
    """KID (mean, std over subsets) of images [N, 3, R, R] against real features."""
    f = M.image_features(np.stack([M.to_uint8(x) for x in images])) if len(images) else np.zeros((0, 1))
    return M.kid(f, real_features, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)


@dataclass
class Realism:
    kid: dict        # {method: (mean, std)} for every method scored, plus REAL (two halves of the held-out images)
    real_rows: list  # one row per held-out image with its d_score
    chain_kid: dict = field(default_factory=dict)  # {method: [(mean, std) per round]}


def score_realism(editors: Editors, rows: list[dict], images: dict, wants: dict, real: np.ndarray, schema,
                  cfg: CompareConfig, chain_rows: list[dict] = (), chain_images: dict | None = None) -> Realism:
    """Adds d_score and attr_agree (D's ACGAN head against `wants` {task id: known c or None}) to the
    task rows and d_score to the chain rows; KIDs against `real` uint8 [M, H, W, 3].

    images: {method: [T, 3, R, R]} (reference methods included); chain_images: {method: [C, K + 1, 3, R, R]}."""
    r = editors.backend.resolution
    real_f = M.image_features(real) if len(real) else np.zeros((0, 454))
    kids = {}
    for m, ims in images.items():
        rs = [row for row in rows if row["method"] == m]
        realism_columns(rs, ims, [wants[row["task"]] for row in rs], editors, schema)
        kids[m] = kid_of(ims, real_f, cfg)
    half = len(real_f) // 2
    kids[REAL] = M.kid(real_f[:half], real_f[half:], cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
    real_rows = [{"method": REAL} for _ in range(len(real))]
    if len(real):
        realism_columns(real_rows, to_unit_range(np.stack([_resize(x, r) for x in real])), [None] * len(real),
                        editors, schema)
    chain_kid = {}
    for m, ims in (chain_images or {}).items():  # ims [C, K + 1, 3, R, R]; rows are chain-major, then round
        score, _ = editors.discriminate(ims[:, 1:].reshape(-1, 3, r, r))
        for row, sc in zip([row for row in chain_rows if row["method"] == m], score):
            row["d_score"] = float(sc)
        chain_kid[m] = [kid_of(ims[:, k], real_f, cfg) for k in range(1, ims.shape[1])]
    return Realism(kids, real_rows, chain_kid)


def _resize(image: np.ndarray, r: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [r, r, 3] (bicubic), unchanged when already r x r."""
    if image.shape[:2] == (r, r):
        return image
    return np.asarray(Image.fromarray(image).resize((r, r), Image.BICUBIC))
