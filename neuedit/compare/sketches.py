"""Stroke layers as the editors take them: RGBA to (sketch, mask), successive layers to cumulative sketches."""
from __future__ import annotations

import numpy as np

from neuedit.runtime.sketch import from_rgba


def sketch_arrays(rgba: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """RGBA uint8 [R, R, 4] -> (sketch [3, R, R], mask [1, R, R])."""
    return from_rgba(rgba, r)


def cumulative(layers: list[np.ndarray]) -> list[np.ndarray]:
    """Stroke layers RGBA [R, R, 4] -> the sketch after each (later strokes over earlier ones)."""
    out, acc = [], np.zeros_like(layers[0])
    for layer in layers:
        acc = acc.copy()
        on = layer[..., 3] > 0
        acc[on] = layer[on]
        out.append(acc)
    return out
