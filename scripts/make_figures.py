"""Figures for the README from trained bundles (PyTorch side, safetensors present):

  docs/samples-<name>.png       32 stage-one samples
  docs/attributes-<name>.png    labelled schemas: one row per requested attribute, one column per z
  docs/edits-<name>.png         generated images: original | with strokes | target | one-stage | two-stage
                                (colour strokes, then line strokes, from a sample with another attribute or z)
  docs/real-edits-<name>.png    real photos: the same columns, recolour requests then shape edits
  docs/latent-frames-<name>.png the one-stage editor's image every few steps (docs/method.md §3)

    python scripts/make_figures.py runs/anime-s2/bundle --data ../shared/data/anime-faces/images
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from neuedit.runtime import bundle as bundle_mod
from neuedit.synth import pairs as P
from neuedit.compare.truth_draw import target_state
from neuedit.data.datasets import DataConfig, load_dataset, to_uint8, to_unit_range
from neuedit.runtime.editor import Editor
from neuedit.cli.sample import grid_image
from neuedit.runtime.schema import empty
from neuedit.runtime.state import EditConfig, sample_state
from neuedit.runtime.sketch import from_rgba
from neuedit.synth.strokes import edge_map, edge_maps, edges_from_pair_half

SCALE = 3


def over(image: np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return image * (1 - mask) + sketch * mask


def labelled_rows(columns: list[np.ndarray], names: list[str], scale: int = SCALE) -> Image.Image:
    """columns: each [N, 3, R, R] -> a grid with one row per example and a header."""

    grid = grid_image(np.stack(columns, 1).reshape(-1, *columns[0].shape[1:]), len(columns), scale)
    head = Image.new("RGB", (grid.width, 16), "white")
    d = ImageDraw.Draw(head)
    cell = grid.width / len(columns)
    for i, name in enumerate(names):
        d.text((i * cell + 4, 2), name, fill="black")
    out = Image.new("RGB", (grid.width, grid.height + 16), "white")
    out.paste(head, (0, 0))
    out.paste(grid, (0, 16))
    return out


def attribute_grid(latent: Editor, b, rng: np.random.Generator, cols: int = 8) -> Image.Image:
    """Rows: a few attributes of each exclusive group asked for alone (other groups empty);
    columns: the same z in every row, so only the request changes."""
    from neuedit.runtime.state import EditState, sample_z
    z = sample_z(cols, b.z_dim, rng)
    rows, names = [], []
    wanted = {"hair_colour": ["blonde", "brown", "black", "blue", "pink", "red", "green", "white"],
              "eye_colour": ["blue", "red", "green", "yellow"],
              "colour": ["black", "brown", "red", "blue", "green", "yellow", "pink", "white"]}
    for g, sl in b.schema.slices():
        for a in wanted.get(g.name, list(g.attributes)[:4]):
            if a not in g.attributes:
                continue
            c = np.zeros((cols, b.schema.c_dim), np.float32)
            c[:, sl.start + g.attributes.index(a)] = 1
            rows.append(latent.render(EditState(z, c)))
            names.append(f"{a} {g.name.split('_')[0]}")
    grid = grid_image(np.concatenate(rows), cols, 2)
    label_w = 110
    out = Image.new("RGB", (grid.width + label_w, grid.height), "white")
    out.paste(grid, (label_w, 0))
    d = ImageDraw.Draw(out)
    cell = grid.height / len(rows)
    for i, n in enumerate(names):
        d.text((4, i * cell + cell / 2 - 6), n, fill="black")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--data", required=True, help="real images of the domain (held-out ones preferably)")
    ap.add_argument("--layout", default="single")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N images (a training split)")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--latent-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    b = bundle_mod.read(args.bundle)
    name, R = b.name, b.resolution
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    latent = two = Editor.load(b, backend="torch")

    st = sample_state(32, b.z_dim, b.schema, rng)
    grid_image(latent.render(st), 8, 2).save(out / f"samples-{name}.png")
    if b.schema.c_dim:
        attribute_grid(latent, b, rng).save(out / f"attributes-{name}.png")

    data = load_dataset(DataConfig(args.data, R, layout=args.layout, skip=args.skip, limit=400, pair_image="left"), empty())
    edges = (np.stack([edges_from_pair_half(e, R) for e in data.edges]) if data.edges is not None
             else edge_maps(data.images))
    adam = EditConfig(optimizer="adam", steps=args.latent_steps)
    one_name, cols = f"one-stage ({args.latent_steps} Adam)", ["original", "with strokes", "target"]

    # generated images: the strokes come from G1(z, c') (another attribute) or G1(z', c) (a nearby z);
    # the first half are colour strokes, the second half the target's own lines (a shape edit)
    st = sample_state(args.n, b.z_dim, b.schema, rng)
    original = latent.render(st)
    moved = [target_state(st.row(i), b.schema, rng, 0.5)[0] for i in range(args.n)]
    target = np.concatenate([latent.render(m) for m in moved])
    o8, t8 = to_uint8(original), to_uint8(target)
    pairs = [P.differ_pair(o8[i], t8[i], 3, rng, edges=edge_map(t8[i]) if i >= args.n // 2 else None)
             for i in range(args.n)]
    sketch, mask = (np.stack(a) for a in zip(*(from_rgba(p.sketch, R) for p in pairs)))
    one = latent.latent(st, sketch, mask, adam).image
    labelled_rows([original, over(original, sketch, mask), target, one, two.two_stage(st, sketch, mask)],
                  cols + [one_name, "two-stage"]).save(out / f"edits-{name}.png")

    # real photos: recolour requests (a colour region asked to take a new colour) and shape edits
    # (a blurred region with the photo's own lines); the latent editor starts from a projection
    photos = rng.choice(len(data), args.n, replace=False)
    rp = [P.recolour_request(data.images[i], data.images, 3, rng) if k < args.n // 2 else
          P.reshape_pair(data.images[i], edges[i], 4, rng, fill="blur") for k, i in enumerate(photos)]
    source, target = to_unit_range(np.stack([p.source for p in rp])), to_unit_range(np.stack([p.target for p in rp]))
    sk2, mk2 = (np.stack(a) for a in zip(*(from_rgba(p.sketch, R) for p in rp)))
    start = latent.project(source, 200, rng=rng).state
    one_real = latent.latent(start, sk2, mk2, adam).image
    labelled_rows([source, over(source, sk2, mk2), target, one_real, two.two_stage(source, sk2, mk2)],
                  ["photo", "with strokes", "target"] + [one_name + " from projection", "two-stage"]
                  ).save(out / f"real-edits-{name}.png")

    r = latent.latent(st.row(0), sketch[:1], mask[:1], EditConfig(optimizer="adam", steps=args.latent_steps),
                    frames=True)
    idx = np.linspace(0, len(r.frames) - 1, 8).round().astype(int)
    frames = np.concatenate([over(original[:1], sketch[:1], mask[:1])] + [r.frames[i] for i in idx])
    grid_image(frames, len(frames), SCALE).save(out / f"latent-frames-{name}.png")
    print(f"{name}: Dist over {args.latent_steps} steps {r.trace[0, 0]:.3f} -> {r.trace[-1, 0]:.3f}; "
          f"frames at steps {idx.tolist()}")


if __name__ == "__main__":
    main()
