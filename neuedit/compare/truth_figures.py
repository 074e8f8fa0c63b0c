"""The ground-truth report's pictures: psnr_vs_strokes.png (PSNR against the target per stroke count and
editor) and grid.png (source | strokes | target | each editor's result)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neuedit.compare.config import SOURCE
from neuedit.compare.figures import grid_scale, labelled_grid, strokes_over
from neuedit.compare.sketches import sketch_arrays
from neuedit.compare.truth import TruthSet
from neuedit.compare.truth_report import kind_label, stroke_curve

CURVES = [("psnr", "PSNR vs target, whole image (dB)"), ("psnr_in", "PSNR vs target, inside the region (dB)")]


def write_curve(path: Path, by_strokes: dict, methods: list[str]) -> None:
    """One panel per CURVES column: mean and 95% band against the number of strokes, one line per
    editor, the unedited source dashed. by_strokes: {n: {method: {column: (mean, lo, hi, n)}}}."""
    import matplotlib  # imported late: only this figure needs it
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.4), constrained_layout=True)
    for ax, (col, title) in zip(axes, CURVES):
        curves = stroke_curve(by_strokes, [SOURCE] + methods, col)
        for m, (ns, mean, lo, hi) in curves.items():
            ref = m == SOURCE
            ax.plot(ns, mean, marker="" if ref else "o", linestyle="--" if ref else "-",
                    color="0.5" if ref else None, label=f"{m} (no edit)" if ref else m)
            if not ref:
                ax.fill_between(ns, lo, hi, alpha=0.15)
        ns = sorted(by_strokes)
        ax.set_xscale("log")
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel("strokes")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def grid_tasks(ts: TruthSet, n: int) -> list[int]:
    """At least `n` task indices for the grid (n > 0): whole groups (every stroke count), one group of
    each (source kind, pair kind) in turn, and every kind at least once, so both show."""
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


def write_grid(path: Path, ts: TruthSet, before: np.ndarray, targets: np.ndarray, images: dict,
               methods: list[str], n: int) -> None:
    """Rows of source | strokes over it | target | each method's result for at least `n` tasks
    (`grid_tasks`). before, targets: [T, 3, R, R]; images: {method: [T, 3, R, R]}."""
    if not ts.answers or n <= 0:
        return
    r = ts.resolution
    tiles, labels = [], []
    for i in grid_tasks(ts, n):
        t, a = ts.tasks.tasks[i], ts.answers[i]
        tiles.append([before[i], strokes_over(before[i], *sketch_arrays(t.stroke.rgba, r)), targets[i]]
                     + [images[m][i] for m in methods])
        labels.append(f"{t.id} {kind_label(vars(a))}")
    labelled_grid(tiles, ["source", "strokes", "target"] + methods, grid_scale(r), labels).save(path)
