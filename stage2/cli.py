"""`neuedit train-stage2 --stage1 BUNDLE --data DIR ...`: flags (one per Stage2Config field) over an
optional recipe, then train."""
from __future__ import annotations


from neuedit.runtime import bundle as bundle_mod
from neuedit.nn import presets
from neuedit.config import flags as tcli

from neuedit.stage2.train import Stage2Config, train

ALIASES = {"data.root": "data"}
# data.resolution is the stage-one bundle's; the first recipe's stroke synthesis and the pair
# synthesis details are set in a recipe (--config), not by flags
SKIP = ("data.resolution", "data.recolour", "strokes", "mix.pair")  # (recoloured copies are stage one's)
ITERATIONS = 20_000  # this command's default (the run config's is stage one's)
# the defaults this command applies (build_config), shown in --help instead of the dataclasses'
DEFAULTS = {"run.iterations": ITERATIONS, "run.batch": "the preset's"}


TRAINER = tcli.Trainer(Stage2Config, dict(aliases=ALIASES, skip=SKIP, defaults=DEFAULTS))
add_arguments = TRAINER.add_arguments


def _fill(d: dict) -> None:
    s1 = bundle_mod.read(d["stage1"])
    d["data"].setdefault("resolution", s1.resolution)
    d["run"].setdefault("iterations", ITERATIONS)
    d["run"].setdefault("batch", presets.get(d.get("preset") or s1.meta.get("preset", "demo")).batch)


def build_config(args) -> Stage2Config:
    return TRAINER.build_config(args, _fill, needs="stage1")


def run(args) -> int:
    return tcli.launch(args, build_config(args), train)
