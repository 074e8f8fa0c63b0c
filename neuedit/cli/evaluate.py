"""`neuedit evaluate BUNDLE [BUNDLE ...] --data REAL_DIR`: sample quality as JSON + Markdown."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from neuedit.config import flags as tcli
from neuedit.evaluation.classifier import ClassifierConfig
from neuedit.data.datasets import DataConfig
from neuedit.evaluation.evaluate import EvalConfig
from neuedit.runtime.schema import Schema
from neuedit.errors import UsageError


@dataclass(frozen=True)
class EvaluateCommand:
    """Everything `neuedit evaluate` takes; `run` builds the EvalConfig (docs/method.md §4) from it."""
    bundles: tuple[str, ...]        # bundle folders (exported or a training run's bundle/)
    data: str                       # held-out real images (folder, or folder of AB pairs)
    out: str                        # output folder
    label: tuple[str, ...] = ()     # a name per bundle for the tables, in order (default: the bundle's)
    layout: Literal["single", "pair"] = "single"     # --data: single images or side-by-side pairs
    pair_image: Literal["left", "right"] = "left"    # pair layout: which half is the photo
    labels: str | None = None       # labels CSV of --data (default <data>/labels.csv)
    skip: int = 0                   # held-out set: leave out the first N images (sorted)
    limit: int | None = None        # held-out set: at most N images
    train_data: str | None = None   # real images for the evaluation classifier (default: --data's first
                                    # --skip images)
    train_limit: int | None = None  # classifier: at most the first N images of --train-data
    schema: str | None = None       # a built-in schema's name or a schema JSON file (default: the first bundle's)
    samples: int = 2000             # generated images for KID and diversity
    attr_samples: int = 1000        # generated images with one requested attribute per group
    floor_images: int = EvalConfig.floor_images  # training images held back from the classifier and
                                    # scored as the floor (at most 1/5)
    classifier_steps: int = ClassifierConfig.steps  # the evaluation classifier's optimisation steps
    classifier: str = ""            # classifier cache file (default <out>/classifier.safetensors)
    seed: int = 0                   # seeds the samples, KID's subsets and the floor images' draw


# the bundles are positional; --label is given once per bundle
DECLARED = dict(positional=("bundles",), aliases={"bundles": "bundle"}, repeat=("label",))


COMMAND = tcli.Command(EvaluateCommand, DECLARED)
add_arguments, build_config = COMMAND.add_arguments, COMMAND.build_config


def run(args) -> int:
    cmd = build_config(args)
    from neuedit.runtime import bundle as bundle_mod
    from neuedit.evaluation.evaluate import evaluate
    first = bundle_mod.read(cmd.bundles[0])
    schema = Schema.load(cmd.schema) if cmd.schema else first.schema
    r = first.resolution
    real = DataConfig(root=cmd.data, resolution=r, labels=cmd.labels, layout=cmd.layout,
                      pair_image=cmd.pair_image, skip=cmd.skip, limit=cmd.limit, flip=False)
    if cmd.train_data:
        train = replace(real, root=cmd.train_data, labels=None, skip=0, limit=cmd.train_limit)
    elif cmd.skip:
        train = replace(real, skip=0, limit=cmd.train_limit or cmd.skip)
    else:
        raise UsageError("give --train-data for the classifier, or --skip N to hold out all but the first N images")
    cfg = EvalConfig(real=real, train=train, out=cmd.out, samples=cmd.samples, attr_samples=cmd.attr_samples,
                     seed=cmd.seed, floor_images=cmd.floor_images, classifier=ClassifierConfig(steps=cmd.classifier_steps),
                     classifier_path=cmd.classifier)
    labels = list(cmd.label) + [bundle_mod.read(b).name for b in cmd.bundles[len(cmd.label):]]
    evaluate(list(cmd.bundles), labels, cfg, schema)
    print(Path(cmd.out, "evaluate.md").read_text())
    return 0
