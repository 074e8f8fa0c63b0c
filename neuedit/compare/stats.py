"""Statistics over scored rows, for every task kind: means with 95% bootstrap intervals per method,
paired differences against two-stage, and the same split by a row's kind or any other value
(intervals: `neuedit.evaluation.metrics.mean_ci`)."""
from __future__ import annotations

from typing import Callable, Hashable

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.config import REAL, TWO_STAGE, CompareConfig

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


def split(rows: list[dict], by: Callable[[dict], Hashable], methods: list[str], columns: list[str],
          cfg: CompareConfig, key: str = "method") -> dict:
    """`aggregate` over the rows of each value of `by(row)` -> {value: {method: {column: stat}}}, values sorted."""
    return {v: aggregate([r for r in rows if by(r) == v], methods, columns, cfg, key)
            for v in sorted({by(r) for r in rows})}


def summarise(rows: list[dict], real_rows: list[dict], names: list[str], methods: list[str], columns: list[str],
              cfg: CompareConfig, kind_of: Callable[[dict], Hashable]) -> dict:
    """The statistics every summary has, over `rows` (one per unit and method; names: the methods
    with the reference rows first) -> {"stats": {name: {column: stat}} (REAL added from `real_rows`),
    "diffs": `paired` against two-stage ({} without it), "by_kind": `split` by `kind_of(row)`}."""
    stats = aggregate(rows, names, columns, cfg)
    stats[REAL] = aggregate(real_rows, [REAL], columns, cfg)[REAL]
    diffs = paired(rows, methods, [c for c in columns if c != "ms"], cfg) if TWO_STAGE in methods else {}
    return {"stats": stats, "diffs": diffs, "by_kind": split(rows, kind_of, names, columns, cfg)}


def per_group(rows: list[dict], columns: list[str]) -> list[dict]:
    """One row per (group, method): each column the mean of the group's finite values (inf PSNR as
    PSNR_CAP, as `mean_ci` counts it; nan when none), `task` set to the group. Tasks of a group
    share source and target, so intervals are taken over groups, not tasks."""
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
