"""Scoring of edit results: following the strokes and keeping the rest per result, realism (D score,
attribute agreement, KID against held-out real images) per method and per stability round."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from neuedit.evaluation import metrics as M
from neuedit.data.datasets import to_unit_range
from neuedit.compare.tasks import TaskSet
from neuedit.compare.config import REAL, SOURCE, CompareConfig
from neuedit.compare.editors import Editors


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


def realism_columns(rows: list[dict], images: np.ndarray, targets: list, editors: Editors, schema) -> None:
    """Add d_score and attr_agree to rows (one per image [N, 3, R, R]); targets: known c or None."""
    score, c_logits = editors.discriminate(images)
    for row, s, cl, c in zip(rows, score, c_logits, targets):
        row["d_score"] = float(s)
        row["attr_agree"] = (M.attribute_agreement(cl, c, schema)
                             if (c is not None and schema.c_dim and np.isfinite(cl).all()) else float("nan"))


def kid_of(images: np.ndarray, real_features: np.ndarray, cfg: CompareConfig) -> tuple[float, float]:
    """KID (mean, std over subsets) of images [N, 3, R, R] against real features."""
    f = M.image_features(np.stack([M.to_uint8(x) for x in images])) if len(images) else np.zeros((0, 1))
    return M.kid(f, real_features, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)


@dataclass
class Realism:
    kid: dict             # {method: (mean, std)}, plus SOURCE and REAL (two halves of the held-out images)
    real_rows: list       # one row per held-out image with its d_score
    chain_kid: dict       # {method: [(mean, std) per round]}


def score_realism(ts: TaskSet, editors: Editors, rows: list[dict], images: dict, chain_rows: list[dict],
                  chain_images: dict, real: np.ndarray, schema, cfg: CompareConfig) -> Realism:
    """Adds d_score and attr_agree to task rows and d_score to chain rows; KIDs against `real` uint8 [M, H, W, 3].

    images: {method: [T, 3, R, R]} (SOURCE included); chain_images: {method: [C, K + 1, 3, R, R]}."""
    r = ts.resolution
    real_f = M.image_features(real) if len(real) else np.zeros((0, 454))
    targets = {t.id: t.source.c for t in ts.tasks}
    kids = {}
    for m in [SOURCE] + editors.methods:
        rs = [row for row in rows if row["method"] == m]
        realism_columns(rs, images[m], [targets[row["task"]] for row in rs], editors, schema)
        kids[m] = kid_of(images[m], real_f, cfg)
    half = len(real_f) // 2
    kids[REAL] = M.kid(real_f[:half], real_f[half:], cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
    real_rows = [{"method": REAL} for _ in range(len(real))]
    if len(real):
        realism_columns(real_rows, to_unit_range(np.stack([_resize(x, r) for x in real])), [None] * len(real),
                        editors, schema)
    chain_kid = {}
    for m, ims in chain_images.items():  # ims [C, K + 1, 3, R, R]; rows are chain-major, then round
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
