"""`neuedit train-encoder --bundle BUNDLE --data DIR ...`: flags (one per EncoderConfig field)
over an optional recipe, then train."""
from __future__ import annotations

import argparse

from neuedit.config import flags as tcli
from neuedit.config import recipes as cfg_mod
from neuedit.runtime import bundle as bundle_mod

from neuedit.encoder.train import EncoderConfig, train

ALIASES = {"data.root": "data"}
SKIP = ("data.resolution",)  # the bundle's
ITERATIONS = 5_000  # this command's default (the run config's is stage one's)
DEFAULTS = {"run.iterations": ITERATIONS}


def _flags(p: argparse.ArgumentParser) -> list:
    return tcli.add_config_arguments(p, EncoderConfig, aliases=ALIASES, skip=SKIP, defaults=DEFAULTS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    tcli.add_run_control(p)
    _flags(p)
    tcli.suppress_defaults(p)


def build_config(args) -> EncoderConfig:
    d = tcli.config_dict(args, _flags(argparse.ArgumentParser()))
    if "bundle" not in d:
        raise tcli.UsageError("give --bundle (or a --config with bundle)")
    d["data"].setdefault("resolution", bundle_mod.read(d["bundle"]).resolution)
    d["run"].setdefault("iterations", ITERATIONS)
    return cfg_mod.from_dict(EncoderConfig, d)


def run(args) -> int:
    return tcli.launch(args, build_config(args), train)
