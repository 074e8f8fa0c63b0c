"""`neuedit train-encoder --bundle BUNDLE --data DIR ...`: flags (one per EncoderConfig field)
over an optional recipe, then train."""
from __future__ import annotations


from neuedit.config import flags as tcli
from neuedit.runtime import bundle as bundle_mod

from neuedit.encoder.train import EncoderConfig, train

ALIASES = {"data.root": "data"}
SKIP = ("data.resolution", "data.recolour")  # the bundle's; recoloured copies are stage one's
ITERATIONS = 5_000  # this command's default (the run config's is stage one's)
DEFAULTS = {"run.iterations": ITERATIONS}


TRAINER = tcli.Trainer(EncoderConfig, dict(aliases=ALIASES, skip=SKIP, defaults=DEFAULTS))
add_arguments = TRAINER.add_arguments


def _fill(d: dict) -> None:
    d["data"].setdefault("resolution", bundle_mod.read(d["bundle"]).resolution)
    d["run"].setdefault("iterations", ITERATIONS)


def build_config(args) -> EncoderConfig:
    return TRAINER.build_config(args, _fill, needs="bundle")


def run(args) -> int:
    return tcli.launch(args, build_config(args), train)
