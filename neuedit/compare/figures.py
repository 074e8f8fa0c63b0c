"""The report's pictures: grid.png (tasks), stability_grid.png (chains) and stability.png (metrics per round)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from neuedit.evaluation import metrics as M
from neuedit.compare.tasks import TaskSet
from neuedit.compare.config import CHAIN_METRICS
from neuedit.compare.sketches import cumulative, sketch_arrays
from neuedit.compare.sources import Prepared


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


def write_task_grid(path: Path, ts: TaskSet, prep: Prepared, images: dict, methods: list[str], n: int) -> None:
    """Per task: original | strokes over it | the latent editor's start (a photo's projection) | each method.

    images: {method: results [T, 3, R, R]}; the first `n` tasks are shown."""
    if not ts.tasks or n <= 0:
        return
    r = ts.resolution
    tiles = []
    for i in range(min(n, len(ts.tasks))):
        sk, mk = sketch_arrays(ts.tasks[i].stroke.rgba, r)
        tiles.append([prep.before[i], strokes_over(prep.before[i], sk, mk), prep.start_images[i]]
                     + [images[m][i] for m in methods])
    rows = [f"{t.id} {t.source.kind}/{t.stroke.kind}" for t in ts.tasks[:len(tiles)]]
    labelled_grid(tiles, ["original", "strokes", "latent start"] + methods, grid_scale(r), rows).save(path)


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


def write_stability_plot(path: Path, stab: dict, methods: list[str], rounds: int) -> None:
    """One panel per chain metric: mean and 95% band per round and method. stab: {method: {round: {column: stat}}}."""
    import matplotlib  # imported late: only this figure needs it
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(CHAIN_METRICS), figsize=(3.2 * len(CHAIN_METRICS), 3), constrained_layout=True)
    ks = np.arange(1, rounds + 1)
    for ax, (col, label, better_high) in zip(axes, CHAIN_METRICS):
        for m in methods:
            s = [stab[m][k][col] for k in ks]
            mean = np.array([x[0] for x in s])
            lo, hi = np.array([x[1] for x in s]), np.array([x[2] for x in s])
            ax.plot(ks, mean, marker="o", label=m)
            ax.fill_between(ks, lo, hi, alpha=0.15)
        ax.set_title(f"{label} ({'higher' if better_high else 'lower'} is better)", fontsize=9)
        ax.set_xlabel("round")
        ax.set_xticks(ks)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
