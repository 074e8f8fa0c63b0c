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
    xyz = torch.einsum("nchw,cd->ndhw", lin, m)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def blur(a: torch.Tensor) -> torch.Tensor:
    """[N, 1, R, R] smoothed by the separable kernel [1, 4, 6, 4, 1] / 16, edges clamped (the numpy
    `neuedit.runtime.editing._blur`)."""
    k = torch.tensor(BLUR_KERNEL, dtype=a.dtype, device=a.device)
    k = k / k.sum()
    p = len(BLUR_KERNEL) // 2
    return F.conv2d(F.pad(a, (p, p, p, p), mode="replicate"), (k[:, None] * k[None, :])[None, None])
