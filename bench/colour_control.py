"""Does a product G1 draw the colour its c names? For each palette colour, G1 samples with that
colour asked for, named again from their pixels the way the training labels were
(`neuedit.synth.colour.object_colours`): the share named as asked, and the mean Lab distance of
the object's colour to the palette colour.

    python bench/colour_control.py neuedit/models/shoes [OTHER_BUNDLE ...] [--n 64]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from neuedit.data.datasets import to_uint8  # noqa: E402
from neuedit.nn.weights import load_module  # noqa: E402
from neuedit.runtime import bundle as bundle_mod  # noqa: E402
from neuedit.runtime.schema import PALETTE  # noqa: E402
from neuedit.runtime.state import sample_z  # noqa: E402
from neuedit.synth.colour import object_colours, palette_lab  # noqa: E402
from neuedit.synth.pairs import object_region, to_lab  # noqa: E402


def object_distance(images: np.ndarray, lab: np.ndarray) -> float:
    """Mean Lab distance of each uint8 image's object colour to `lab` [3]."""
    d = [np.linalg.norm(to_lab(im)[r].mean(0) - lab) for im in images if (r := object_region(im)).any()]
    return float(np.mean(d)) if d else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--n", type=int, default=64, help="samples per colour")
    ap.add_argument("--json", default="bench/results/colour_control.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names, pal = list(PALETTE), palette_lab()
    rows = []
    for path in args.bundles:
        b = bundle_mod.read(path)
        if b.schema.derive != "object_colour":
            print(f"{path}: no colour condition (schema {b.schema.name!r}), skipped")
            continue
        G = load_module(b, "g1")
        z = torch.from_numpy(sample_z(args.n, b.z_dim, np.random.default_rng(0)))
        for k, name in enumerate(names):
            c = torch.zeros(args.n, b.c_dim)
            c[:, b.schema.attributes.index(name)] = 1
            with torch.no_grad():
                x = to_uint8(G(z, c).numpy())
            said = object_colours(x)
            rows.append({"bundle": str(path), "asked": name,
                         "named as asked %": 100 * float(np.mean([s == name for s in said])),
                         "ΔE to the colour": object_distance(x, pal[k])})
    report(rows, "colour control: samples asked for each palette colour, named from their pixels", args.json)


if __name__ == "__main__":
    main()
