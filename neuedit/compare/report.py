"""The tables of a report folder, for every task kind: CSV files (one row per edit), Markdown tables of statistics
(a cell is `mean [lo, hi]`) and JSON-safe values for summary.json."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from neuedit.compare.config import TWO_STAGE, CompareConfig


def fmt(x: float, digits: int = 3) -> str:
    """`digits` significant digits; scientific notation for tiny and huge values; nan as a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "inf"
    a = abs(x)
    return f"{x:.{digits}g}" if (a >= 1e-3 or a == 0) and a < 1e4 else f"{x:.2e}"


def cell(s: tuple) -> str:
    """A (mean, lo, hi, n) statistic as a table cell: mean [lo, hi]; the mean alone for n = 1."""
    mean, lo, hi, n = s
    if n == 0:
        return "–"
    return fmt(mean) if n < 2 else f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"


def excludes_zero(s: tuple) -> bool:
    """Whether a (mean, lo, hi, n) interval lies wholly on one side of 0 (marked * in the tables)."""
    _, lo, hi, n = s
    return n >= 2 and np.isfinite(lo) and (lo > 0 or hi < 0)


def kid_cell(kids: dict, name: str) -> str:
    """KID {name: (mean, std)} as `mean ± std`, a dash where `name` has none."""
    return f"{fmt(kids[name][0])} ± {fmt(kids[name][1])}" if name in kids else "–"


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def heading(col: tuple) -> str:
    """A (column, label, higher is better) metric as a column heading: the label and which way is better."""
    return f"{col[1]} {'↑' if col[2] else '↓'}"


def stat_table(stats: dict, names: list[str], cols: list[tuple], extra=None) -> str:
    """One row per name of `stats` {name: {column: (mean, lo, hi, n)}}, one cell per metric of `cols`;
    `extra` (headings, name -> cells) adds columns on the right."""
    body = [[m] + [cell(stats[m][c]) if m in stats else "–" for c, _, _ in cols] + (extra[1](m) if extra else [])
            for m in names]
    return md_table(["method"] + [heading(c) for c in cols] + (extra[0] if extra else []), body)


def grouped_table(groups: dict, key_names: list[str], names: list[str], cols: list[tuple]) -> str:
    """One row per group and name of `groups` {key (a tuple or one value): {name: {column: stat}}}
    with its n (that of the first column)."""
    body = [[str(k) for k in (key if isinstance(key, tuple) else (key,))] + [m, str(s[m][cols[0][0]][3])]
            + [cell(s[m][c]) for c, _, _ in cols] for key, s in groups.items() for m in names]
    return md_table(key_names + ["method", "n"] + [heading(c) for c in cols], body)


def section(title: str, *paragraphs: str) -> list[str]:
    """A summary.md section: its heading, then each paragraph (a table is one) and a blank line."""
    return [f"## {title}", ""] + [line for p in paragraphs for line in (p, "")]


def diff_section(diffs: dict, cols: list[tuple], unit: str) -> list[str]:
    """The paired differences {method: {column: stat}} against two-stage (none: no section); `unit`
    says what a pair is."""
    if not diffs:
        return []
    body = [[m] + [cell(d[c]) + (" *" if excludes_zero(d[c]) else "") for c, _, _ in cols] for m, d in diffs.items()]
    return section(f"Paired differences against {TWO_STAGE}",
                   f"{unit}, method minus {TWO_STAGE}; * where the 95% interval excludes 0.",
                   md_table([f"method − {TWO_STAGE}"] + [lab for _, lab, _ in cols], body))


def opening(title: str, what: str, info: dict, cfg: CompareConfig, note: str = "") -> list[str]:
    """summary.md's title and first paragraph: `what` was compared, on which task set, with which latent
    editor settings (info as from `run.run_info`); `note` ends the paragraph."""
    latent = (f"{cfg.optimizer}{'' if cfg.lr is None else f' lr {cfg.lr}'}"
              f"{'' if not cfg.anchor else f' anchor {cfg.anchor}'}")
    return [f"# {title}: {info['bundle']}", "",
            f"{what}, task set `{info['tasks']}` (sha256 {info['tasks_digest'][:12]}), latent editor: {latent}. "
            f"Mean [95% bootstrap interval]{note}.", ""]


def write_csv(path: Path, rows: list[dict]) -> None:
    """rows (dicts with the same keys, in order) -> a CSV file; no rows: an empty file."""
    if not rows:
        path.write_text("")
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(v) for k, v in r.items()})


def _csv_value(v):
    """Floats with 6 significant digits, nan as an empty cell (not applicable), inf as 'inf'."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


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
