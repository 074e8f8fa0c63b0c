"""`neuedit train-stage2 --stage1 BUNDLE --data DIR ...`: flags (one per Stage2Config field) over an
optional recipe, then train."""
from __future__ import annotations

import argparse

from neuedit.runtime import bundle as bundle_mod
from neuedit.config import recipes as cfg_mod
from neuedit.nn import presets
from neuedit.config import flags as tcli

from neuedit.stage2.train import Stage2Config, train

ALIASES = {"data.root": "data"}
# data.resolution is the stage-one bundle's; the first recipe's stroke synthesis and the pair
# synthesis details are set in a recipe (--config), not by flags
SKIP = ("data.resolution", "strokes", "mix.pair")
ITERATIONS = 20_000  # this command's default (the run config's is stage one's)
# the defaults this command applies (build_config), shown in --help instead of the dataclasses'
DEFAULTS = {"run.iterations": ITERATIONS, "run.batch": "the preset's"}


def _flags(p: argparse.ArgumentParser) -> list:
    return tcli.add_config_arguments(p, Stage2Config, aliases=ALIASES, skip=SKIP, defaults=DEFAULTS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    tcli.add_run_control(p)
    _flags(p)
    tcli.suppress_defaults(p)


def build_config(args) -> Stage2Config:
    d = tcli.config_dict(args, _flags(argparse.ArgumentParser()))
    if "stage1" not in d:
        raise tcli.UsageError("give --stage1 (or a --config with stage1)")
    s1 = bundle_mod.read(d["stage1"])
    d["data"].setdefault("resolution", s1.resolution)
    d["run"].setdefault("iterations", ITERATIONS)
    d["run"].setdefault("batch", presets.get(d.get("preset") or s1.meta.get("preset", "demo")).batch)
    return cfg_mod.from_dict(Stage2Config, d)


def run(args) -> int:
    return tcli.launch(args, build_config(args), train)
