"""`neuedit train-stage1`: build a Stage1Config from flags, validate it, train."""
from __future__ import annotations

import argparse
from pathlib import Path

from neuedit import presets
from neuedit.data import DataConfig

from .runner import RunConfig
from .train import LossConfig, OptimConfig, Stage1Config, train


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="image folder (searched recursively) or folder of AB pairs")
    g.add_argument("--labels", help="labels CSV (file,tags); default <data>/labels.csv")
    g.add_argument("--layout", choices=["single", "pair"], default="single", help="single images or side-by-side pairs")
    g.add_argument("--pair-image", choices=["left", "right"], default="left", help="pair layout: which half is the photo")
    g.add_argument("--limit", type=int, help="use only the first N images")
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
                      pair_image=args.pair_image, limit=args.limit, flip=not args.no_flip)


def run_config(args) -> RunConfig:
    return RunConfig(out=args.out, iterations=args.iterations, batch=args.batch or presets.get(args.preset).batch,
                     seed=args.seed, log_every=args.log_every, sample_every=args.sample_every,
                     ckpt_every=args.ckpt_every, device=args.device, bf16=args.bf16,
                     tensorboard=not args.no_tensorboard, progress=not args.no_progress)


def check_resume(args) -> None:
    if (Path(args.out) / "checkpoint.pt").exists() and not args.resume:
        raise ValueError(f"{args.out} already holds a checkpoint: pass --resume to continue it, or choose another --out")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    add_run_arguments(p, default_iterations=100_000)
    g = p.add_argument_group("model and losses (defaults: the report's)")
    g.add_argument("--schema", default="anime_faces", help="anime_faces, anime34, empty, or a schema JSON file")
    g.add_argument("--name", default="", help="model name in the bundle (default: the run folder's name)")
    g.add_argument("--z-dim", type=int, default=128)
    g.add_argument("--c-sampling", choices=["uniform", "empirical"], default="uniform")
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--lr-end", type=float, default=1e-5)
    g.add_argument("--decay-start", type=float, default=0.5, help="fraction of iterations before lr decays")
    g.add_argument("--l-adv", type=float, default=2.0)
    g.add_argument("--l-gp", type=float, default=1.0)
    g.add_argument("--l-reg", type=float, default=1e-4)
    g.add_argument("--no-cls-on-fake", action="store_true", help="train D's class head on real images only")
    g.add_argument("--ema", type=float, default=0.999)


def build_config(args) -> Stage1Config:
    p = presets.get(args.preset)
    return Stage1Config(
        data=data_config(args, p.resolution), run=run_config(args), preset=args.preset, schema=args.schema,
        z_dim=args.z_dim, c_sampling=args.c_sampling, name=args.name,
        loss=LossConfig(l_adv=args.l_adv, l_gp=args.l_gp, l_reg=args.l_reg, cls_on_fake=not args.no_cls_on_fake),
        optim=OptimConfig(lr=args.lr, lr_end=args.lr_end, decay_start=args.decay_start, ema=args.ema))


def launch(args, cfg, train_fn) -> int:
    """What both stages' commands do with a built config: refuse to clobber, train, report."""
    check_resume(args)
    b = train_fn(cfg, stop_at=args.stop_at)
    if b is not None:
        print(f"bundle: {b.path}")
    return 0


def run(args) -> int:
    return launch(args, build_config(args), train)
