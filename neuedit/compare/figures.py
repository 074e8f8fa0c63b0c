"""The pictures of a report folder, for every task kind: grids of edits (the image before, its strokes, a third
column, each method's result), the chains' grid and the one mean-and-band plot."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from neuedit.evaluation import metrics as M
from neuedit.compare.tasks import TaskSet
from neuedit.compare.sketches import cumulative, sketch_arrays


def strokes_over(before: np.ndarray, sketch: np.ndarray, mask: np.ndarray, fade: float = 0.65) -> np.ndarray:
    """The strokes painted over a faded copy of the image, [3, R, R] in [-1, 1]."""
    faded = before * (1 - fade) + fade
    return faded * (1 - mask) + sketch * mask


def labelled_grid(tiles: list[list[np.ndarray]], labels: list[str], scale: int, row_labels: list[str] | None = None,
                  pad: int = 2) -> Image.Image:
    """Rows of tiles [3, R, R] in [-1, 1] under a header of column labels (and beside row labels) -> PIL image."""
    r = tiles[0][0].shape[-1] * scale
    cols = max(len(row) for row in tiles)
    head = 14
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = (max(probe.textlength(t) for t in row_labels) + 6) if row_labels else 0
    left = int(math.ceil(left))
    img = Image.new("RGB", (left + pad + cols * (r + pad), head + pad + len(tiles) * (r + pad)), "white")
    draw = ImageDraw.Draw(img)
    for j, text in enumerate(labels[:cols]):
        draw.text((left + pad + j * (r + pad) + 1, 1), text, fill=(0, 0, 0))
    for i, row in enumerate(tiles):
        y = head + pad + i * (r + pad)
        if row_labels:
            draw.text((2, y + r // 2 - 6), row_labels[i], fill=(0, 0, 0))
        for j, t in enumerate(row):
            tile = Image.fromarray(M.to_uint8(t)).resize((r, r), Image.NEAREST)
            img.paste(tile, (left + pad + j * (r + pad), y))
    return img


def grid_scale(r: int) -> int:
    """Upscaling of R px tiles, so that small resolutions stay legible (about 128 px a tile)."""
    return max(1, 128 // r)


def write_edit_grid(path: Path, tasks: list, indices: list[int], before: tuple[str, np.ndarray],
                    third: tuple[str, np.ndarray], images: dict, methods: list[str], row_label) -> None:
    """One row per task index: the image before the edit | its strokes over it | a third image | each
    method's result, `row_label(i)` beside each row (no indices: no file).

    tasks: `neuedit.compare.tasks.Task`s; before, third: (column label, images [T, 3, R, R]);
    images: {method: [T, 3, R, R]}."""
    if not indices:
        return
    r = before[1].shape[-1]
    tiles = [[before[1][i], strokes_over(before[1][i], *sketch_arrays(tasks[i].stroke.rgba, r)), third[1][i]]
             + [images[m][i] for m in methods] for i in indices]
    labelled_grid(tiles, [before[0], "strokes", third[0]] + methods, grid_scale(r),
                  [row_label(i) for i in indices]).save(path)


def write_chain_grid(path: Path, ts: TaskSet, before: np.ndarray, chain_images: dict, methods: list[str],
                     n: int) -> None:
    """Per chain: a row of the strokes so far at each round, then one row per method (before: the
    latent editor's start, a photo's projection; then rounds 1..K).

    before: [C, 3, R, R] the chains' images before the first edit; chain_images: {method: [C, K + 1, 3, R, R]}."""
    if not ts.chains or n <= 0 or not chain_images:
        return
    r = ts.resolution
    tiles, rows = [], []
    for j in range(min(n, len(ts.chains))):
        layers = cumulative([s.rgba for s in ts.chains[j].rounds])
        tiles.append([before[j]] + [strokes_over(before[j], *sketch_arrays(c, r)) for c in layers])
        tiles += [list(chain_images[m][j]) for m in methods]
        rows += [f"{ts.chains[j].id} strokes"] + methods
    labels = ["before"] + [f"round {k + 1}" for k in range(len(ts.chains[0].rounds))]
    labelled_grid(tiles, labels, grid_scale(r), rows).save(path)


def band(xs, stats: list[tuple]) -> tuple[np.ndarray, ...]:
    """One line of a band plot: x values and their (mean, lo, hi, n) statistics -> (x, mean, lo, hi) arrays."""
    return (np.asarray(xs), *(np.array([s[k] for s in stats]) for k in range(3)))


def write_bands(path: Path, panels: list[tuple[str, dict]], xlabel: str, size: tuple[float, float],
                log_x: bool = False, references: tuple[str, ...] = ()) -> None:
    """The one plot of every report folder: a panel per (title, {line label: `band`}), each line its mean with the 95%
    band around it; lines named in `references` (an unedited image) are dashed grey, without a
    band. size: (width per panel, height) in inches."""
    import matplotlib  # imported late: only the plots need it
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels), size[1]), constrained_layout=True)
    for ax, (title, lines) in zip(np.atleast_1d(axes), panels):
        xs = []
        for label, (x, mean, lo, hi) in lines.items():
            ref = label in references
            ax.plot(x, mean, marker="" if ref else "o", linestyle="--" if ref else "-",
                    color="0.5" if ref else None, label=label)
            if not ref:
                ax.fill_between(x, lo, hi, alpha=0.15)
            xs = sorted(set(xs) | set(np.asarray(x).tolist()))
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
