"""`neuedit train-stage1`: build a Stage1Config from flags, validate it, train."""
from __future__ import annotations

import argparse
from pathlib import Path

from neuedit import config as cfg_mod
from neuedit import presets
from neuedit.data import DataConfig

from .runner import RunConfig
from .train import Stage1Config, train
from neuedit.errors import UsageError


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="image folder (searched recursively) or folder of AB pairs")
    g.add_argument("--labels", help="labels CSV (file,tags); default <data>/labels.csv")
    g.add_argument("--layout", choices=["single", "pair"], default="single", help="single images or side-by-side pairs")
    g.add_argument("--pair-image", choices=["left", "right"], default="left", help="pair layout: which half is the photo")
    g.add_argument("--limit", type=int, help="use only the first N images (sorted by name)")
    g.add_argument("--skip", type=int, default=0, help="leave out the first N images (sorted by name)")
    g.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")


def add_run_arguments(p: argparse.ArgumentParser, default_iterations: int) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, help="run folder (checkpoints, logs, samples, bundle/)")
    g.add_argument("--preset", default="demo", choices=list(presets.PRESETS), help="architecture preset")
    g.add_argument("--iterations", type=int, default=default_iterations)
    g.add_argument("--batch", type=int, help="batch size per process (default: the preset's)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    g.add_argument("--stop-at", type=int, help="stop after this iteration (checkpointed; resume later)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
    g.add_argument("--log-every", type=int, default=25)
    g.add_argument("--sample-every", type=int, default=500)
    g.add_argument("--ckpt-every", type=int, default=500)
    g.add_argument("--no-tensorboard", action="store_true")
    g.add_argument("--no-progress", action="store_true")


def data_config(args, resolution: int) -> DataConfig:
    return DataConfig(root=args.data, resolution=resolution, labels=args.labels, layout=args.layout,
                      pair_image=args.pair_image, limit=args.limit, skip=args.skip, flip=not args.no_flip)


def run_config(args) -> RunConfig:
    return RunConfig(out=args.out, iterations=args.iterations, batch=args.batch or presets.get(args.preset).batch,
                     seed=args.seed, log_every=args.log_every, sample_every=args.sample_every,
                     ckpt_every=args.ckpt_every, device=args.device, bf16=args.bf16,
                     tensorboard=not args.no_tensorboard, progress=not args.no_progress)


def check_resume(args, out: str) -> None:
    if (Path(out) / "checkpoint.pt").exists() and not getattr(args, "resume", False):
        raise UsageError(f"{out} already holds a checkpoint: pass --resume to continue it, or choose another --out")


# flag dest -> (path in Stage1Config, negate): one table, so a flag is one line here and one in the parser
FLAGS = {
    "data": ("data.root", False), "labels": ("data.labels", False), "layout": ("data.layout", False),
    "pair_image": ("data.pair_image", False), "limit": ("data.limit", False), "skip": ("data.skip", False),
    "no_flip": ("data.flip", True),
    "out": ("run.out", False), "iterations": ("run.iterations", False), "batch": ("run.batch", False),
    "seed": ("run.seed", False), "device": ("run.device", False), "bf16": ("run.bf16", False),
    "log_every": ("run.log_every", False), "sample_every": ("run.sample_every", False),
    "ckpt_every": ("run.ckpt_every", False), "no_tensorboard": ("run.tensorboard", True),
    "no_progress": ("run.progress", True),
    "preset": ("preset", False), "schema": ("schema", False), "name": ("name", False), "z_dim": ("z_dim", False),
    "c_sampling": ("c_sampling", False), "init_from": ("init_from", False),
    "loss": ("loss.adv", False), "penalty": ("loss.penalty", False), "l_adv": ("loss.l_adv", False),
    "l_gp": ("loss.l_gp", False), "l_reg": ("loss.l_reg", False), "l_cls": ("loss.l_cls", False),
    "no_cls_on_fake": ("loss.cls_on_fake", True), "cls": ("loss.cls", False), "cond": ("loss.cond", False), "augment": ("loss.augment", False),
    "lr": ("optim.lr", False), "lr_end": ("optim.lr_end", False), "decay_start": ("optim.decay_start", False),
    "beta1": ("optim.beta1", False), "beta2": ("optim.beta2", False), "ema": ("optim.ema", False),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a recipe (.toml) or a run's config.json to start from; flags override it")
    add_data_arguments(p)
    add_run_arguments(p, default_iterations=100_000)
    g = p.add_argument_group("model and losses (defaults: the report's recipe; see recipes/ for the demos')")
    g.add_argument("--schema", help="anime_faces, anime34, empty, or a schema JSON file (default anime_faces)")
    g.add_argument("--name", help="model name in the bundle (default: the run folder's name)")
    g.add_argument("--z-dim", type=int)
    g.add_argument("--c-sampling", choices=["uniform", "empirical"])
    g.add_argument("--lr", type=float, help="Adam learning rate (2e-4)")
    g.add_argument("--lr-end", type=float, help="learning rate at the last iteration (1e-5)")
    g.add_argument("--decay-start", type=float, help="fraction of iterations before lr decays (0.5)")
    g.add_argument("--l-adv", type=float, help="adversarial weight (2)")
    g.add_argument("--l-gp", type=float, help="penalty weight (1)")
    g.add_argument("--l-reg", type=float, help="L2 weight regulariser (1e-4)")
    g.add_argument("--l-cls", type=float, help="weight of the ACGAN condition terms (1)")
    g.add_argument("--no-cls-on-fake", action="store_true", help="train D's class head on real images only")
    g.add_argument("--cls", choices=["bce", "group_ce"],
                   help="condition loss: bce per attribute (the report's) or cross-entropy per exclusive group")
    g.add_argument("--loss", choices=["logistic", "hinge"], help="adversarial loss (logistic: the report's)")
    g.add_argument("--penalty", choices=["dragan", "r1", "none"], help="D penalty (dragan: the report's)")
    g.add_argument("--cond", choices=["acgan", "projection"],
                   help="conditioning in D (projection needs an sn_d preset; the ACGAN head stays)")
    g.add_argument("--augment", help="DiffAugment policy for D's inputs, e.g. color,translation,cutout")
    g.add_argument("--beta1", type=float, help="Adam beta1 (0.5)")
    g.add_argument("--beta2", type=float, help="Adam beta2 (0.99)")
    g.add_argument("--ema", type=float, help="EMA decay of G's weights (0.999)")
    g.add_argument("--init-from", help="start from this bundle's G (and D) weights, fresh optimisers")
    # a flag that is not given is absent, so a --config value is only overridden by flags the user typed
    for action in p._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS
            action.required = False


def config_dict(args) -> dict:
    """--config (if any) overlaid with the flags given, as a Stage1Config-shaped dict."""
    base = cfg_mod.read(args.config) if getattr(args, "config", None) else {}
    over: dict = {}
    for dest, (path, negate) in FLAGS.items():
        if hasattr(args, dest):
            v = getattr(args, dest)
            node = over
            *parents, leaf = path.split(".")
            for k in parents:
                node = node.setdefault(k, {})
            node[leaf] = (not v) if negate else v
    d = cfg_mod.merge(base, over)
    if "root" not in d.get("data", {}):
        raise UsageError("give --data (or a --config with data.root)")
    if "out" not in d.get("run", {}):
        raise UsageError("give --out (or a --config with run.out)")
    p = presets.get(d.get("preset", Stage1Config.__dataclass_fields__["preset"].default))
    d["data"].setdefault("resolution", p.resolution)
    d["run"].setdefault("batch", p.batch)
    return d


def build_config(args) -> Stage1Config:
    return cfg_mod.from_dict(Stage1Config, config_dict(args))


def launch(args, cfg, train_fn) -> int:
    """What both stages' commands do with a built config: refuse to clobber, train, report."""
    check_resume(args, cfg.run.out)
    b = train_fn(cfg, stop_at=getattr(args, "stop_at", None))
    if b is not None:
        print(f"bundle: {b.path}")
    return 0


def run(args) -> int:
    return launch(args, build_config(args), train)
