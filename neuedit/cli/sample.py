"""`neuedit sample`: a grid of samples from a bundle (PyTorch or, with --onnx, ONNX Runtime)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from neuedit.runtime import bundle as bundle_mod
from neuedit.data.datasets import image_grid, to_uint8
from neuedit.runtime.state import sample_state


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", required=True)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--nrow", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling of the grid")
    p.add_argument("--onnx", action="store_true", help="use the exported g1.onnx (no torch)")
    p.add_argument("--out", required=True, type=Path)


def grid_image(images: np.ndarray, nrow: int, scale: int = 1, pad: int = 2) -> Image.Image:
    """images [N, 3, R, R] in [-1, 1] -> a PIL grid, upscaled `scale` times (nearest)."""
    img = Image.fromarray(image_grid(to_uint8(images), nrow, pad))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def run(args) -> int:
    b = bundle_mod.read(args.bundle)
    st = sample_state(args.n, b.z_dim, b.schema, np.random.default_rng(args.seed))
    if args.onnx:
        from neuedit.runtime.engine import Engine
        images = Engine(b.path).generate(st.z, st.c)
    else:
        import torch
        with torch.no_grad():
            images = bundle_mod.load_module(b, "g1")(torch.from_numpy(st.z), torch.from_numpy(st.c)).numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, args.nrow, args.scale).save(args.out)
    print(f"{args.n} samples -> {args.out}")
    return 0
