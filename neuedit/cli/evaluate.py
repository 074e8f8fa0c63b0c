"""`neuedit evaluate BUNDLE [BUNDLE ...] --data REAL_DIR`: sample quality as JSON + Markdown."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from neuedit.evaluation.classifier import ClassifierConfig
from neuedit.data.datasets import DataConfig
from neuedit.evaluation.evaluate import EvalConfig
from neuedit.runtime.schema import Schema
from neuedit.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundles", nargs="+", help="bundle folders (exported or a training run's bundle/)")
    p.add_argument("--label", action="append", default=[], help="a name per bundle for the tables (in order)")
    p.add_argument("--data", required=True, help="held-out real images (folder, or folder of AB pairs)")
    p.add_argument("--layout", choices=["single", "pair"], default="single")
    p.add_argument("--pair-image", choices=["left", "right"], default="left")
    p.add_argument("--labels", help="labels CSV of --data (default <data>/labels.csv)")
    p.add_argument("--skip", type=int, default=0, help="held-out set: leave out the first N images (sorted)")
    p.add_argument("--limit", type=int, help="held-out set: at most N images")
    p.add_argument("--train-data", help="real images for the evaluation classifier (default: --data's first --skip images)")
    p.add_argument("--train-limit", type=int, help="classifier: at most the first N images of --train-data")
    p.add_argument("--schema", help="schema (default: the first bundle's)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--attr-samples", type=int, default=1000)
    p.add_argument("--floor-images", type=int, default=EvalConfig.floor_images,
                   help="training images held back from the classifier and scored as the floor (at most 1/5)")
    p.add_argument("--classifier-steps", type=int, default=ClassifierConfig.steps)
    p.add_argument("--classifier", default="", help="classifier cache file (default <out>/classifier.safetensors)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")


def run(args) -> int:
    from neuedit.runtime import bundle as bundle_mod
    from neuedit.evaluation.evaluate import evaluate
    first = bundle_mod.read(args.bundles[0])
    schema = Schema.load(args.schema) if args.schema else first.schema
    r = first.resolution
    real = DataConfig(root=args.data, resolution=r, labels=args.labels, layout=args.layout,
                      pair_image=args.pair_image, skip=args.skip, limit=args.limit, flip=False)
    if args.train_data:
        train = replace(real, root=args.train_data, labels=None, skip=0, limit=args.train_limit)
    elif args.skip:
        train = replace(real, skip=0, limit=args.train_limit or args.skip)
    else:
        raise UsageError("give --train-data for the classifier, or --skip N to hold out all but the first N images")
    cfg = EvalConfig(real=real, train=train, out=args.out, samples=args.samples, attr_samples=args.attr_samples,
                     seed=args.seed, floor_images=args.floor_images, classifier=ClassifierConfig(steps=args.classifier_steps),
                     classifier_path=args.classifier)
    labels = args.label + [bundle_mod.read(b).name for b in args.bundles[len(args.label):]]
    evaluate(args.bundles, labels, cfg, schema)
    print(Path(args.out, "evaluate.md").read_text())
    return 0
