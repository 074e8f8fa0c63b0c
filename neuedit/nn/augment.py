"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) applied to every image D sees,
real and generated alike, so D cannot memorise a small training set and G still receives
gradients through the same transform. Each function takes a `torch.Generator` so a training
step's augmentation is a pure function of (seed, step) and resume stays exact.

x is [N, 3, H, W] in [-1, 1]; every function returns a tensor of the same shape.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from neuedit.errors import UsageError


def _rand(x: torch.Tensor, g: torch.Generator, *shape) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, generator=g, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image. Hue is left
    alone: it is what the colour attributes (hair, eyes) are made of."""
    x = x + (_rand(x, g, 1, 1, 1) - 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (_rand(x, g, 1, 1, 1) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, g, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its side, zero-padded, by one gather."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (_rand(x, g).mul(2 * sh + 1).floor() - sh).long()  # [N] in [-sh, sh]
    tx = (_rand(x, g).mul(2 * sw + 1).floor() - sw).long()
    yy = (torch.arange(h, device=x.device)[None, :] + ty[:, None]).clamp(-1, h)  # [N, H]
    xx = (torch.arange(w, device=x.device)[None, :] + tx[:, None]).clamp(-1, w)  # [N, W]
    pad = F.pad(x, (1, 1, 1, 1))  # index -1 and h/w land on the zero border
    rows = pad.gather(2, (yy + 1)[:, None, :, None].expand(n, x.shape[1], h, w + 2))
    return rows.gather(3, (xx + 1)[:, None, None, :].expand(n, x.shape[1], h, w))


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of `ratio` x the side at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (_rand(x, g) * (h + 1 - ch % 2)).long()
    cx = (_rand(x, g) * (w + 1 - cw % 2)).long()
    yy = torch.arange(h, device=x.device)[None, :]
    xx = torch.arange(w, device=x.device)[None, :]
    in_y = ((yy - cy[:, None] + ch // 2) >= 0) & ((yy - cy[:, None] + ch // 2) < ch)  # [N, H]
    in_x = ((xx - cx[:, None] + cw // 2) >= 0) & ((xx - cx[:, None] + cw // 2) < cw)  # [N, W]
    keep = ~(in_y[:, :, None] & in_x[:, None, :])  # [N, H, W]
    return x * keep[:, None].to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """"color,translation,cutout" -> ("color", "translation", "cutout"); "" or "none" -> ()."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none")
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise UsageError(f"unknown augmentation {', '.join(unknown)}; known: {', '.join(POLICIES)}")
    return names


def diff_augment(x: torch.Tensor, policy: str, g: torch.Generator) -> torch.Tensor:
    for name in parse_policy(policy):
        x = POLICIES[name](x, g)
    return x
