"""`neuedit sample`: a grid of samples from a bundle (PyTorch or, with --onnx, ONNX Runtime)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from neuedit.config import flags as tcli
from neuedit.data.datasets import image_grid, to_uint8
from neuedit.runtime.editor import Editor


@dataclass(frozen=True)
class SampleCommand:
    """Everything `neuedit sample` takes."""
    bundle: str          # model bundle folder
    out: Path            # the grid PNG to write
    n: int = 16          # samples, each with its own z and c
    nrow: int = 8        # samples per row of the grid
    seed: int = 0        # seeds the samples' z and c
    scale: int = 2       # nearest-neighbour upscaling of the grid
    onnx: bool = False   # use the exported g1.onnx (ONNX Runtime, no torch)


COMMAND = tcli.Command(SampleCommand)
add_arguments, build_config = COMMAND.add_arguments, COMMAND.build_config


def grid_image(images: np.ndarray, nrow: int, scale: int = 1, pad: int = 2) -> Image.Image:
    """images [N, 3, R, R] in [-1, 1] -> a PIL grid, upscaled `scale` times (nearest)."""
    img = Image.fromarray(image_grid(to_uint8(images), nrow, pad))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def run(args) -> int:
    cmd = build_config(args)
    ed = Editor.load(cmd.bundle, backend="onnx" if cmd.onnx else "torch")
    images = ed.render(ed.sample(cmd.n, seed=cmd.seed))
    cmd.out.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, cmd.nrow, cmd.scale).save(cmd.out)
    print(f"{cmd.n} samples -> {cmd.out}")
    return 0
