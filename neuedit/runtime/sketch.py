"""Sketch input: RGBA strokes -> (sketch, mask), and the edit distance, numpy only.

The mask comes from alpha (> 0 marks a stroke), so black strokes work; the RGB-only
convention (an RGB sketch whose non-zero pixels are the mask) is `from_rgb`.
Shapes: sketch [3, R, R] float32 in [-1, 1]; mask [1, R, R] float32 in {0, 1}.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError
from neuedit.errors import NeueditError

MAX_PIXELS = 4096 * 4096  # a bigger PNG is refused before decoding (decompression bombs)


class SketchError(NeueditError, ValueError):
    """Sketch bytes or arrays that cannot be used."""


def open_image(data: bytes, max_pixels: int = MAX_PIXELS, formats=("PNG",)) -> Image.Image:
    """Decode image bytes safely: the header's size is checked before pixels are decoded."""
    try:
        img = Image.open(io.BytesIO(data), formats=list(formats) if formats else None)
    except UnidentifiedImageError:
        raise SketchError(f"not a {'/'.join(formats) if formats else 'known'} image") from None
    except Exception as e:  # PIL raises many kinds on garbage
        raise SketchError(f"cannot read image: {e}") from None
    w, h = img.size
    if w * h > max_pixels or w <= 0 or h <= 0:
        raise SketchError(f"image is {w}x{h}; at most {max_pixels} pixels are accepted")
    try:
        img.load()
    except Exception as e:
        raise SketchError(f"image data is broken: {e}") from None
    return img


def from_rgba(rgba: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """[H, W, 4] uint8 RGBA -> (sketch [3, R, R], mask [1, R, R]) at the model's resolution.

    Colour is resized with area averaging of alpha-premultiplied RGB (so stroke edges do
    not bleed toward the transparent colour) and alpha by area too; a pixel is in the
    mask when any of its area was drawn.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise SketchError(f"sketch must be RGBA [H, W, 4], got {rgba.shape}")
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a
    if rgba.shape[:2] != (resolution, resolution):
        rgb = np.stack([_area_resize(rgb[..., k], resolution) for k in range(3)], -1)
        a = _area_resize(a[..., 0], resolution)[..., None]
    on = a > 1e-3
    colour = np.where(on, rgb / np.maximum(a, 1e-6), 0.0)
    sketch = np.moveaxis(colour / 127.5 - 1.0, -1, 0).astype(np.float32)
    mask = np.moveaxis(on.astype(np.float32), -1, 0)
    return sketch * mask, mask


def _area_resize(ch: np.ndarray, r: int) -> np.ndarray:
    return np.asarray(Image.fromarray(ch.astype(np.float32), mode="F").resize((r, r), Image.BOX), np.float32)


def from_rgb(rgb: np.ndarray, resolution: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The RGB-only convention: RGB sketch [H, W, 3] uint8 and a mask [H, W] (default: non-zero pixels)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise SketchError(f"RGB sketch must be [H, W, 3], got {rgb.shape}")
    m = (rgb.max(-1) > 0) if mask is None else (np.asarray(mask) > 0)
    if m.shape != rgb.shape[:2]:
        raise SketchError(f"mask {m.shape} does not match sketch {rgb.shape[:2]}")
    return from_rgba(np.concatenate([rgb, (m * 255).astype(np.uint8)[..., None]], -1), resolution)


def decode_png(data: bytes, resolution: int, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """PNG bytes (any mode; RGBA's alpha marks strokes) -> (sketch, mask)."""
    img = open_image(data, max_pixels)
    if img.mode not in ("RGBA", "LA", "P", "RGB", "L"):
        img = img.convert("RGB")
    if "A" not in img.mode and not (img.mode == "P" and "transparency" in img.info):
        # No alpha channel: the RGB-only rule, non-zero pixels are strokes.
        return from_rgb(np.asarray(img.convert("RGB")), resolution)
    return from_rgba(np.asarray(img.convert("RGBA")), resolution)


def to_rgba(sketch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(sketch [3, R, R], mask [1, R, R]) -> [R, R, 4] uint8, the inverse of from_rgba at equal size."""
    rgb = np.clip((np.moveaxis(sketch, 0, -1) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    a = (np.moveaxis(mask, 0, -1) > 0.5).astype(np.uint8) * 255
    return np.concatenate([rgb * (a > 0), a], -1)


def dist(image, sketch, mask, keepdims: bool = False):
    """Dist(I, I') per image (docs/method.md §2): sum |(I - I') * M| / (1 + sum |M|).

    image, sketch [N, 3, H, W] in the model's value range; mask [N, 1, H, W] in [0, 1] -> [N]
    ([N, 1] with `keepdims`: the latent step keeps per-sample values 2-D, docs/export.md).
    Written with operators numpy arrays and torch tensors share, so the one definition serves
    both runtimes: the latent step differentiates it in PyTorch (and its ONNX export), the
    engine and the metrics evaluate it in numpy. docs/method.md's M_ij is the RGB vector [1, 1, 1]
    on a stroke, so |M_ij| / sqrt(3) is 1 per stroke pixel: the denominator is 1 + the number
    of stroke pixels and the numerator the L1 distance over the stroke's channels."""
    # shape[0], not len(): a traced export keeps the batch axis dynamic
    num = abs((image - sketch) * mask).reshape(image.shape[0], -1).sum(1, keepdims=keepdims)
    return num / (1.0 + abs(mask).reshape(mask.shape[0], -1).sum(1, keepdims=keepdims))
