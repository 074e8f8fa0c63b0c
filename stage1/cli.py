"""`neuedit train-stage1`: flags (one per Stage1Config field) over an optional recipe, then train."""
from __future__ import annotations


from neuedit.config import recipes as cfg_mod
from neuedit.nn import presets
from neuedit.config import flags as tcli

from neuedit.stage1.train import Stage1Config, train

ALIASES = {"data.root": "data", "loss.adv": "loss"}
SKIP = ("data.resolution",)  # the preset's
# what the flag builder needs beyond Stage1Config (neuedit.config.flags.add_config_arguments)
DECLARED = dict(aliases=ALIASES, skip=SKIP, defaults={"run.batch": "the preset's"})


TRAINER = tcli.Trainer(Stage1Config, DECLARED)
add_arguments = TRAINER.add_arguments


def config_dict(args) -> dict:
    """--config (if any) overlaid with the flags given, as a Stage1Config-shaped dict."""
    d = TRAINER.config_dict(args)
    p = presets.get(d.get("preset", Stage1Config.__dataclass_fields__["preset"].default))
    d["data"].setdefault("resolution", p.resolution)
    d["run"].setdefault("batch", p.batch)
    return d


def build_config(args) -> Stage1Config:
    return cfg_mod.from_dict(Stage1Config, config_dict(args))


def run(args) -> int:
    return tcli.launch(args, build_config(args), train)
