"""The semantic-edit benchmark: does a colour stroke on the hair give that hair colour, on the eyes
that eye colour, on a shoe or bag that colour, and what is kept? A thin script over the comparison's
semantic kind (`neuedit.compare.kind_semantic`): this domain's bundle, classifier, held-out photos
and latent-editor variants in, one row per editor and task batch out; prints the table, writes the
report (semantic.json, summary.md, results.csv, ...) and the figures into --out.

    python bench/semantic_edits.py anime [--bundle neuedit/models/anime] [--g2 RUN/bundle] [--n 96]
    python bench/semantic_edits.py shoes --variants default

`--variants` names latent-editor settings from VARIANTS (the defaults' search: docs/comparison.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table  # noqa: E402

from neuedit.compare import semantic as S  # noqa: E402
from neuedit.compare.kind_semantic import Semantic, SemanticConfig, semantic_editors, semantic_tasks  # noqa: E402
from neuedit.compare.run import run  # noqa: E402
from neuedit.data.datasets import DataConfig, load_dataset, to_unit_range  # noqa: E402
from neuedit.evaluation import classifier as clf  # noqa: E402
from neuedit.evaluation.evaluate import EvalConfig, evaluation_classifier, floor_split  # noqa: E402
from neuedit.nn.backend import TorchBackend  # noqa: E402
from neuedit.nn.weights import load_module  # noqa: E402
from neuedit.runtime import bundle as bundle_mod  # noqa: E402
from neuedit.runtime.editor import Editor  # noqa: E402
from neuedit.runtime.schema import empty  # noqa: E402
from neuedit.runtime.state import EditConfig  # noqa: E402

DOMAINS = {
    "anime": dict(bundle="neuedit/models/anime", data="../shared/data/anime-faces", layout="single", split=16000,
                  kinds=("hair", "eyes")),
    "shoes": dict(bundle="neuedit/models/shoes", data="../shared/data/shoes", layout="pair", kinds=("object",)),
    "handbags": dict(bundle="neuedit/models/handbags", data="../shared/data/handbags", layout="pair", kinds=("object",)),
}
# latent-editor settings tried (name -> (EditConfig, steps)); "default" is EditConfig() at 1/10/30 steps: on a
# conditional G1 "choose c, z 0.01 + anchor 1, c 0.5, paste 27" (docs/comparison.md); every paste adds the
# smoothed change (neuedit.runtime.editing.PASTE_SMOOTH)
VARIANTS = {
    "report gd": (EditConfig(optimizer="gd", anchor=0.0, paste=0.0, choose_c=False), (1, 10, 30)),
    "z, c at 0.05": (EditConfig(lr=0.05, lr_c=0.05, anchor=0.0, paste=0.0, choose_c=False), (30,)),
    "z 0.05, c 0.5": (EditConfig(lr=0.05, lr_c=0.5, anchor=0.0, paste=0.0, choose_c=False), (10, 30)),
    "z 0.02 + anchor 1, c 0.5": (EditConfig(lr=0.02, lr_c=0.5, anchor=1.0, paste=0.0, choose_c=False), (30,)),
    "z held, c 0.3": (EditConfig(lr=0.0, lr_c=0.3, paste=0.0, choose_c=False), (10, 30)),
    "z held, c 0.3, paste 25": (EditConfig(lr=0.0, lr_c=0.3, paste=25.0, choose_c=False), (10, 20, 30)),
    "z held, c 0.5, paste 25": (EditConfig(lr=0.0, lr_c=0.5, paste=25.0, choose_c=False), (10, 20, 30)),
    "z held, c 0.5, paste 20": (EditConfig(lr=0.0, lr_c=0.5, paste=20.0, choose_c=False), (20, 30)),
    "z 0.02 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.02, lr_c=0.5, anchor=1.0, paste=25.0, choose_c=False),
                                           (20, 30)),
    "choose c, z held, c 0.5, paste 35": (EditConfig(lr=0.0, paste=35.0), (1, 10, 30)),
    "choose c, z held, c 0.5, no paste": (EditConfig(lr=0.0, paste=0.0), (1, 30)),
    "choose c, z held, c 1.0, paste 25": (EditConfig(lr=0.0, lr_c=1.0, paste=25.0), (10, 30)),
    "choose c, z held, c 0.5, paste 30": (EditConfig(lr=0.0, paste=30.0), (10, 30)),
    "choose c, z 0.01 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.01, anchor=1.0, paste=25.0), (10, 30)),
    "choose c, z 0.02 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.02, anchor=1.0, paste=25.0), (10, 30)),
    "choose c, z 0.01 + anchor 1, c 1.0, paste 25": (EditConfig(lr=0.01, lr_c=1.0, anchor=1.0, paste=25.0), (10, 30)),
    "choose c, z 0.02 + anchor 1, c 0.5, paste 20": (EditConfig(lr=0.02, anchor=1.0, paste=20.0), (30,)),
    "choose c, z 0.01 + anchor 2, c 0.5, paste 25": (EditConfig(lr=0.01, anchor=2.0, paste=25.0), (30,)),
    "choose c, z 0.005 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.005, anchor=1.0, paste=25.0), (30,)),
    "choose c, z 0.01 + anchor 1, c 0.5, paste 30": (EditConfig(lr=0.01, anchor=1.0, paste=30.0), (30,)),
    "choose c, z 0.01 + anchor 1, c 0.5, paste 27": (EditConfig(lr=0.01, anchor=1.0, paste=27.0), (20, 30)),
    "choose c, z held, c 0.5, paste 27": (EditConfig(lr=0.0, paste=27.0), (30,)),
    "previous default (choose c, z held, c 0.5, paste 25)": (EditConfig(lr=0.0, anchor=0.0, paste=25.0), (1, 10, 30)),
    "default": (EditConfig(), (1, 5, 10, 30)),
}


def judge_and_features(name: str, d: dict, schema):
    """The evaluation classifier of the domain (as `neuedit evaluate` trains it) -> (logits fn, features fn,
    its training set)."""
    root = Path(d["data"])
    split = d.get("split")
    train_cfg = (DataConfig(root=str(root), limit=split, flip=False) if split else
                 DataConfig(root=str(root / "train"), layout="pair", flip=False))
    cfg = EvalConfig(real=train_cfg, train=train_cfg, out=f"runs/semantic-{name}",
                     classifier_path=f"runs/semantic-{name}/classifier.safetensors")
    if not split:  # products: the classifier only gives KID's features; labels derived from colour are not its business
        schema = empty()
    train = load_dataset(train_cfg, schema, progress=False)
    _, learn = floor_split(len(train), cfg)
    net = evaluation_classifier(train, learn, schema, cfg, progress=False)
    return (lambda x: clf.embed(net, x)[1]), (lambda x: clf.embed(net, x)[0]), train


def held_out(name: str, d: dict, schema) -> np.ndarray:
    root = Path(d["data"])
    cfg = (DataConfig(root=str(root), skip=d["split"], flip=False) if d.get("split") else
           DataConfig(root=str(root / "val"), layout="pair", flip=False))
    return to_unit_range(load_dataset(cfg, schema if d.get("split") else empty(), progress=False).images)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=list(DOMAINS))
    ap.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    ap.add_argument("--g2", help="a bundle whose G2 replaces the bundle's (e.g. a training run's)")
    ap.add_argument("--n", type=int, default=96, help="tasks per kind and source")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--kinds", nargs="+", help="task kinds (default: the domain's)", choices=list(S.KINDS))
    ap.add_argument("--sources", nargs="+", default=["sample", "real"], choices=["sample", "real"])
    ap.add_argument("--project-steps", type=int, default=None,
                    help="projection of photos for the latent editor (default: none after an encoder, else 100)")
    ap.add_argument("--latent-real", action="store_true", help="also run the latent editor on photos (slow)")
    ap.add_argument("--out", default="", help="folder for JSON and figures (default runs/semantic-DOMAIN)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = DOMAINS[args.domain]
    b = bundle_mod.read(args.bundle or d["bundle"])
    G2 = load_module(bundle_mod.read(args.g2), "g2") if args.g2 else (load_module(b, "g2") if b.has_g2 else None)
    E = load_module(b, "e") if "e" in b.info.networks else None  # photos: projected through the encoder
    editor = Editor(TorchBackend(load_module(b, "g1"), G2, b.schema, E=E), b)
    judge, features, train = judge_and_features(args.domain, d, b.schema)
    photos = held_out(args.domain, d, b.schema)
    cfg = SemanticConfig(kinds=tuple(args.kinds or d["kinds"]), sources=tuple(args.sources), n=args.n, seed=args.seed,
                         project_steps=args.project_steps, latent_real=args.latent_real, name=f"semantic-{args.domain}")
    palettes = {}
    if args.domain == "anime":
        palettes = {"hair": S.hair_palette(train.images, train.c, b.schema),
                    "eyes": S.eye_palette(editor.generate, b.schema, b.z_dim, np.random.default_rng(1))}
        print("palettes:", json.dumps({k: {c: v.tolist() for c, v in p.items()} for k, p in palettes.items()}))
    # the first n photos are the real sources, the rest the KID reference (held-out photos that are no source)
    batches = semantic_tasks(cfg, editor, photos[:args.n], palettes)
    editors = semantic_editors(editor, {v: VARIANTS[v] for v in args.variants}, args.project_steps)
    report = run(Semantic(b, editor, batches, editors, judge, features, photos[args.n:], cfg),
                 Path(args.out or f"runs/semantic-{args.domain}"))
    g2 = f", G2 {args.g2}" if args.g2 else ""
    print_table(report.summary["table"], f"semantic edits, {args.domain} ({b.path}{g2})")


if __name__ == "__main__":
    main()
