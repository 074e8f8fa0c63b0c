"""Statistics over scored rows: means with 95% bootstrap intervals per method, paired differences
against two-stage, by source and stroke kind, and per stability round (intervals: `neuedit.evaluation.metrics.mean_ci`)."""
from __future__ import annotations

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.tasks import TaskSet
from neuedit.compare.config import CHAIN_METRICS, REAL, SOURCE, TASK_METRICS, TWO_STAGE, CompareConfig

# A statistic is (mean, lo, hi, n) throughout: the mean of the finite values, its interval (nan when n < 2).


def _ci(values, cfg: CompareConfig) -> tuple[float, float, float, int]:
    return M.mean_ci(values, n_boot=cfg.boot, seed=cfg.seed)


def aggregate(rows: list[dict], methods: list[str], columns: list[str], cfg: CompareConfig,
              key: str = "method") -> dict:
    """{method: {column: (mean, lo, hi, n)}} with percentile-bootstrap 95% intervals."""
    return {m: {c: _ci([r.get(c, np.nan) for r in rows if r[key] == m], cfg) for c in columns}
            for m in methods}


def paired(rows: list[dict], methods: list[str], columns: list[str], cfg: CompareConfig) -> dict:
    """Per task, method minus two-stage -> {method: {column: (mean, lo, hi, n)}}."""
    by = {(r["task"], r["method"]): r for r in rows}
    tasks = sorted({r["task"] for r in rows})
    out = {}
    for m in methods:
        if m == TWO_STAGE:
            continue
        out[m] = {}
        for c in columns:
            d = [by[t, m][c] - by[t, TWO_STAGE][c] for t in tasks if (t, m) in by and (t, TWO_STAGE) in by]
            d = [x for x in d if np.isfinite(x)]
            out[m][c] = _ci(d, cfg)
    return out


def statistics(ts: TaskSet, methods: list[str], rows: list[dict], chain_rows: list[dict], real_rows: list[dict],
               cfg: CompareConfig) -> dict:
    """Means with intervals: per method, paired against two-stage, by task kind, per stability round.

    -> {"stats": {method: {column: stat}} (SOURCE and REAL included), "diffs": paired(...),
        "by_kind": {(source kind, stroke kind): {method: {column: stat}}},
        "stab": {method: {round: {column: stat}}}}"""
    cols = [c for c, _, _ in TASK_METRICS]
    stats = aggregate(rows, [SOURCE] + methods, cols, cfg)
    stats[REAL] = aggregate(real_rows, [REAL], cols, cfg)[REAL]
    diffs = paired(rows, methods, [c for c in cols if c != "ms"], cfg) if TWO_STAGE in methods else {}
    by_kind = {}
    for key in sorted({(t.source.kind, t.stroke.kind) for t in ts.tasks}):
        sub = [row for row in rows if (row["source"], row["stroke"]) == key]
        by_kind[key] = aggregate(sub, [SOURCE] + methods, cols, cfg)
    rounds = sorted({row["round"] for row in chain_rows})
    stab = {m: {k: {c: _ci([row[c] for row in chain_rows if row["method"] == m and row["round"] == k], cfg)
                    for c, _, _ in CHAIN_METRICS}
                for k in rounds} for m in methods} if chain_rows else {}
    return {"stats": stats, "diffs": diffs, "by_kind": by_kind, "stab": stab}
