"""`neuedit edit`: one-stage (latent optimisation) or two-stage edit of a sketch, with PyTorch."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from neuedit.runtime import bundle as bundle_mod
from neuedit.data.datasets import image_to_model, load_rgb, to_uint8
from neuedit.runtime.sketch import decode_png
from neuedit.runtime.state import EditConfig, EditState, sample_state
from neuedit.errors import UsageError, MissingFileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--sketch", required=True, type=Path,
                   help="RGBA PNG: alpha marks strokes, RGB their colour (RGB without alpha: non-zero pixels)")
    p.add_argument("--state", type=Path, help="state JSON to start from (default: a random state from --seed)")
    p.add_argument("--image", type=Path, help="two-stage only: edit this photo instead of a state")
    p.add_argument("--method", choices=["latent", "two-stage"], default="latent")
    p.add_argument("--steps", type=int, default=1, help="latent: optimisation steps")
    p.add_argument("--optimizer", choices=["gd", "adam"], default=EditConfig().optimizer)
    p.add_argument("--lr", type=float, help="latent: step size of z (default: EditConfig.step_sizes; 0 holds z)")
    p.add_argument("--lr-c", type=float, help="latent: step size of c's group logits (default: EditConfig.step_sizes)")
    p.add_argument("--paste", type=float, default=EditConfig().paste,
                   help="latent: keep the picture's own pixels except within this ΔE of the colour under the "
                        "strokes where G1 changed them (0: the result is G1(z, c))")
    p.add_argument("--anchor", type=float, default=0.0, help="latent: pull toward the starting z")
    p.add_argument("--restarts", type=int, default=1, help="latent: random restarts, best kept")
    p.add_argument("--project-c", action="store_true", help="latent: project c onto exclusive groups")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="result PNG; the new state goes next to it as .json")
    p.add_argument("--frames", type=Path, help="latent: write the image before every step into this folder")


def write_png(path: Path, image: np.ndarray) -> None:
    """image [3, R, R] in [-1, 1] -> PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)


def run(args) -> int:
    import torch
    b = bundle_mod.read(args.bundle)
    if not args.sketch.is_file():
        raise MissingFileError(f"sketch {args.sketch} not found")
    sketch, mask = decode_png(args.sketch.read_bytes(), b.resolution)
    if args.state:
        try:
            text = args.state.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--state {args.state}: not a readable state JSON file ({e})") from None
        state = EditState.from_json(text).validate(b.z_dim, b.c_dim)
    else:
        state = sample_state(1, b.z_dim, b.schema, np.random.default_rng(args.seed))
    if args.method == "two-stage":
        from neuedit.nn.two_stage import TwoStageEditor
        source = image_to_model(load_rgb(args.image), b.resolution)[None] if args.image else state
        out = TwoStageEditor.from_bundle(b).edit(source, sketch, mask)
        write_png(args.out, out[0])
        print(f"two-stage edit -> {args.out}")
        return 0
    if args.image:
        raise UsageError("--image works with --method two-stage; the latent editor needs a state")
    from neuedit.nn.backend import LatentEditor
    cfg = EditConfig(optimizer=args.optimizer, lr=args.lr, lr_c=args.lr_c, paste=args.paste, steps=args.steps,
                     anchor=args.anchor,
                     restarts=args.restarts, project_c=args.project_c)
    torch.manual_seed(args.seed)
    ed = LatentEditor(bundle_mod.load_module(b, "g1"), b.schema)
    r = ed.edit_restarts(state, sketch, mask, cfg, np.random.default_rng(args.seed), frames=bool(args.frames))
    write_png(args.out, r.image[0])
    args.out.with_suffix(".json").write_text(r.state.to_json())
    if args.frames:
        for i, f in enumerate(r.frames):
            write_png(args.frames / f"frame_{i:04d}.png", f[0])
    trace = ", ".join(f"{d:.4f}" for d in r.trace[:, 0][:: max(1, len(r.trace) // 8)])
    print(f"Dist {r.trace[0, 0]:.4f} -> {r.trace[-1, 0]:.4f} over {cfg.steps} steps ({trace}); "
          f"image {args.out}, state {args.out.with_suffix('.json')}")
    return 0
