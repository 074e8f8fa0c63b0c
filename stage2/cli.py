"""`neuedit train-stage2 --stage1 BUNDLE --data DIR ...`"""
from __future__ import annotations

import argparse

from neuedit import bundle as bundle_mod
from neuedit.stage1.cli import add_data_arguments, add_run_arguments, data_config, launch, run_config
from neuedit.stage1.train import OptimConfig

from .batches import PairMix
from .train import Stage2Config, Stage2LossConfig, train


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage1", required=True, help="stage-one bundle folder (frozen unless --joint)")
    add_data_arguments(p)
    add_run_arguments(p, default_iterations=20_000)
    g = p.add_argument_group("stage two")
    g.add_argument("--name", default="")
    g.add_argument("--p-real", type=float, default=0.5, help="share of steps editing real images instead of G1 samples")
    g.add_argument("--no-residual", action="store_true", help="G2 predicts the image, not a change over I1")
    g.add_argument("--joint", action="store_true", help="fine-tune G1 together with G2 (lr x 0.1)")
    g.add_argument("--edges", default="auto", choices=["auto", "pairs", "canny", "xdog"],
                   help="edge strokes from the dataset's edge halves (pairs) or an edge detector")
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--lr-end", type=float, default=1e-5)
    g.add_argument("--objective", default="pairs", choices=["pairs", "strokes"],
                   help="pairs: edit pairs with a known target (default); strokes: the first recipe, for ablations")
    loss = Stage2LossConfig()
    for name, help_ in [("l-dist", "follow the strokes"), ("l-adv", "adversarial"),
                        ("l-l1", "pairs: L1 to the target"), ("l-region", "pairs: L1 to the target in the changed region"),
                        ("l-fm", "pairs: feature matching on D2"),
                        ("l-keep", "strokes: keep pixels outside the dilated mask"),
                        ("l-rec", "strokes: self-supervised reconstruction (0: off)"),
                        ("l-gp", "strokes: DRAGAN penalty of D2")]:
        g.add_argument(f"--{name}", type=float, default=getattr(loss, name.replace("-", "_")), help=help_)
    mix = PairMix()
    for name in ("recolour", "reshape", "differ", "empty"):
        g.add_argument(f"--{name}", type=float, default=getattr(mix, name), help=f"pairs: share of {name} pairs")
    g.add_argument("--p-generated", type=float, default=mix.p_generated,
                   help="pairs: share of recolour/reshape targets that are stage-one samples")
    g.add_argument("--strokes", type=int, nargs=2, default=list(mix.strokes), metavar=("LO", "HI"),
                   help="pairs: strokes per non-empty pair")
    g.add_argument("--dilate", type=int, default=5, help="mask dilation (odd pixels) left free by the keep loss")


def build_config(args) -> Stage2Config:
    s1 = bundle_mod.read(args.stage1)
    args.preset = args.preset if args.preset != "demo" or s1.meta.get("preset") is None else s1.meta["preset"]
    return Stage2Config(
        stage1=args.stage1, data=data_config(args, s1.resolution), run=run_config(args), preset=args.preset,
        p_real=args.p_real, residual=not args.no_residual, joint=args.joint, edges=args.edges, name=args.name,
        objective=args.objective,
        mix=PairMix(recolour=args.recolour, reshape=args.reshape, differ=args.differ, empty=args.empty,
                    p_generated=args.p_generated, strokes=tuple(args.strokes)),
        loss=Stage2LossConfig(l_dist=args.l_dist, l_adv=args.l_adv, l_l1=args.l_l1, l_region=args.l_region,
                              l_fm=args.l_fm, l_keep=args.l_keep, l_rec=args.l_rec, l_gp=args.l_gp, dilate=args.dilate),
        optim=OptimConfig(lr=args.lr, lr_end=args.lr_end))


def run(args) -> int:
    return launch(args, build_config(args), train)
