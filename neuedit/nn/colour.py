"""Colour in PyTorch, differentiable and exportable to ONNX: CIELAB and the ~1 px blur, with the
constants of `neuedit.runtime.editing`'s numpy versions (one definition of each constant)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from neuedit.runtime.editing import BLUR_KERNEL, D65_WHITE, SRGB_TO_XYZ


def lab(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, R, R] in [-1, 1] (sRGB) -> CIELAB [N, 3, R, R] (D65)."""
    rgb = ((x + 1) / 2).clamp(0, 1)
    lin = torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor(SRGB_TO_XYZ, dtype=x.dtype, device=x.device) / torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device)
    # linear maps as 1x1 convolutions, not Einsum or channel indexing: every runtime of the graphs runs
    # them (OpenCV's DNN among them)
    xyz = F.conv2d(lin, m.t()[:, :, None, None])
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1 / 3), 7.787 * xyz + 16 / 116)
    to_lab = torch.tensor([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]], dtype=x.dtype, device=x.device)
    return F.conv2d(f, to_lab[:, :, None, None], torch.tensor([-16.0, 0.0, 0.0], dtype=x.dtype, device=x.device))


def blur(a: torch.Tensor) -> torch.Tensor:
    """[N, 1, R, R] smoothed by the separable kernel [1, 4, 6, 4, 1] / 16, edges clamped (the numpy
    `neuedit.runtime.editing._blur`)."""
    k = torch.tensor(BLUR_KERNEL, dtype=a.dtype, device=a.device)
    k = k / k.sum()
    p = len(BLUR_KERNEL) // 2
    # edges clamped by concatenating the border rows and columns (an edge-mode Pad is not in every runtime)
    a = torch.cat([a[:, :, :1]] * p + [a] + [a[:, :, -1:]] * p, 2)
    a = torch.cat([a[:, :, :, :1]] * p + [a] + [a[:, :, :, -1:]] * p, 3)
    return F.conv2d(a, (k[:, None] * k[None, :])[None, None])
