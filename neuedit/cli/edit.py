"""`neuedit edit`: one-stage (latent optimisation) or two-stage edit of a sketch, with PyTorch
(`neuedit.runtime.editor.Editor` on the torch backend)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from neuedit.config import flags as tcli
from neuedit.data.datasets import image_to_model, load_rgb, to_uint8
from neuedit.runtime.editor import Editor
from neuedit.runtime.sketch import decode_png
from neuedit.runtime.state import EditConfig, EditState
from neuedit.errors import UsageError, MissingFileError


@dataclass(frozen=True)
class EditCommand:
    """Everything `neuedit edit` takes: the files, the method and the latent editor's EditConfig."""
    bundle: str                 # model bundle folder
    sketch: Path                # RGBA PNG: alpha marks strokes, RGB their colour (RGB without alpha:
                                # non-zero pixels)
    out: Path                   # result PNG; the new state goes next to it as .json
    state: Path | None = None   # state JSON to start from (default: a random state from --seed)
    image: Path | None = None   # edit this photo instead of a state (latent: projected, the change carried onto
                                # it; with --state, the state a latent edit of this photo wrote, to continue)
    method: Literal["latent", "two-stage"] = "latent"  # latent optimisation of G1's input, or G2
    seed: int = 0               # seeds the random state, the restarts and torch
    frames: Path | None = None  # latent: write the image before every step into this folder
    latent: EditConfig = field(default_factory=EditConfig)  # the latent editor (--method latent)


COMMAND = tcli.Command(EditCommand)
add_arguments, build_config = COMMAND.add_arguments, COMMAND.build_config


def write_png(path: Path, image: np.ndarray) -> None:
    """image [3, R, R] in [-1, 1] -> PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)


def run(args) -> int:
    cmd = build_config(args)
    import torch
    ed = Editor.load(cmd.bundle, backend="torch")
    if not cmd.sketch.is_file():
        raise MissingFileError(f"sketch {cmd.sketch} not found")
    sketch, mask = decode_png(cmd.sketch.read_bytes(), ed.resolution)
    if cmd.state:
        try:
            text = cmd.state.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--state {cmd.state}: not a readable state JSON file ({e})") from None
        state = EditState.from_json(text).validate(ed.z_dim, ed.c_dim, ed.detail)
    elif not cmd.image:
        state = ed.sample(1, seed=cmd.seed)
    else:
        state = None
    if cmd.method == "two-stage":
        source = image_to_model(load_rgb(cmd.image), ed.resolution)[None] if cmd.image else state
        out = ed.two_stage(source, sketch, mask)
        write_png(cmd.out, out[0])
        print(f"two-stage edit -> {cmd.out}")
        return 0
    cfg = cmd.latent
    torch.manual_seed(cmd.seed)
    if cmd.image:
        if cmd.frames or cfg.restarts > 1:
            raise UsageError("--frames and --restarts are not offered for a latent edit of a photo")
        photo = image_to_model(load_rgb(cmd.image), ed.resolution)[None]
        r = ed.latent_photo(photo, sketch, mask, cfg, state=state)
    else:
        r = ed.latent(state, sketch, mask, cfg, frames=bool(cmd.frames), rng=np.random.default_rng(cmd.seed))
    write_png(cmd.out, r.image[0])
    cmd.out.with_suffix(".json").write_text(r.state.to_json())
    if cmd.frames:
        for i, f in enumerate(r.frames):
            write_png(cmd.frames / f"frame_{i:04d}.png", f[0])
    trace = ", ".join(f"{d:.4f}" for d in r.trace[:, 0][:: max(1, len(r.trace) // 8)])
    print(f"Dist {r.trace[0, 0]:.4f} -> {r.trace[-1, 0]:.4f} over {cfg.steps} steps ({trace}); "
          f"image {cmd.out}, state {cmd.out.with_suffix('.json')}")
    return 0
