"""The semantic-edit benchmark (`neuedit.compare.semantic`): does a colour stroke on the hair give
that hair colour, on the eyes that eye colour, on a shoe or bag that colour, and what is kept?
One row per editor and task set; prints the table, writes JSON and the figures.

    python bench/semantic_edits.py anime [--bundle neuedit/models/anime] [--g2 RUN/bundle] [--n 96]
    python bench/semantic_edits.py shoes --variants default

`--variants` names latent-editor settings from VARIANTS (the defaults' search is in the README).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, write_json  # noqa: E402

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod

from neuedit.runtime import editing  # noqa: E402
from neuedit.evaluation import classifier as clf  # noqa: E402
from neuedit.compare import semantic as S  # noqa: E402
from neuedit.data.datasets import DataConfig, image_grid, load_dataset, to_uint8, to_unit_range  # noqa: E402
from neuedit.nn.backend import TorchBackend  # noqa: E402
from neuedit.evaluation.evaluate import EvalConfig, evaluation_classifier, floor_split  # noqa: E402
from neuedit.runtime.schema import empty  # noqa: E402
from neuedit.runtime.state import EditConfig, EditState  # noqa: E402

DOMAINS = {
    "anime": dict(bundle="neuedit/models/anime", data="../shared/data/anime-faces", layout="single", split=16000,
                  kinds=("hair", "eyes")),
    "shoes": dict(bundle="neuedit/models/shoes", data="../shared/data/shoes", layout="pair", kinds=("object",)),
    "handbags": dict(bundle="neuedit/models/handbags", data="../shared/data/handbags", layout="pair", kinds=("object",)),
}
# latent-editor settings tried (name -> (EditConfig, steps)); "default" is EditConfig() at 1/10/30 steps
VARIANTS = {
    "report gd": (EditConfig(optimizer="gd", paste=0.0, choose_c=False), (1, 10, 30)),
    "z, c at 0.05": (EditConfig(lr=0.05, lr_c=0.05, paste=0.0, choose_c=False), (30,)),
    "z 0.05, c 0.5": (EditConfig(lr=0.05, lr_c=0.5, paste=0.0, choose_c=False), (10, 30)),
    "z 0.02 + anchor 1, c 0.5": (EditConfig(lr=0.02, lr_c=0.5, anchor=1.0, paste=0.0, choose_c=False), (30,)),
    "z held, c 0.3": (EditConfig(lr=0.0, lr_c=0.3, paste=0.0, choose_c=False), (10, 30)),
    "z held, c 0.3, paste 25": (EditConfig(lr=0.0, lr_c=0.3, paste=25.0, choose_c=False), (10, 20, 30)),
    "z held, c 0.5, paste 25": (EditConfig(lr=0.0, lr_c=0.5, paste=25.0, choose_c=False), (10, 20, 30)),
    "z held, c 0.5, paste 20": (EditConfig(lr=0.0, lr_c=0.5, paste=20.0, choose_c=False), (20, 30)),
    "z 0.02 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.02, lr_c=0.5, anchor=1.0, paste=25.0, choose_c=False),
                                           (20, 30)),
    "choose c, z held, c 0.5, paste 35": (EditConfig(paste=35.0), (1, 10, 30)),
    "choose c, z held, c 0.5, no paste": (EditConfig(paste=0.0), (1, 30)),
    "choose c, z held, c 1.0, paste 25": (EditConfig(lr_c=1.0), (10, 30)),
    "choose c, z held, c 0.5, paste 30": (EditConfig(paste=30.0), (10, 30)),
    "choose c, z 0.01 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.01, anchor=1.0), (10, 30)),
    "choose c, z 0.02 + anchor 1, c 0.5, paste 25": (EditConfig(lr=0.02, anchor=1.0), (10, 30)),
    "choose c, z 0.01 + anchor 1, c 1.0, paste 25": (EditConfig(lr=0.01, lr_c=1.0, anchor=1.0), (10, 30)),
    "choose c, z 0.02 + anchor 1, c 0.5, paste 20": (EditConfig(lr=0.02, anchor=1.0, paste=20.0), (30,)),
    "default": (EditConfig(), (1, 10, 30)),
}


def judge_and_features(name: str, d: dict, schema):
    """The evaluation classifier of the domain (as `neuedit evaluate` trains it) -> (logits fn, features fn)."""
    root = Path(d["data"])
    split = d.get("split")
    train_cfg = (DataConfig(root=str(root), limit=split, flip=False) if split else
                 DataConfig(root=str(root / "train"), layout="pair", flip=False))
    cfg = EvalConfig(real=train_cfg, train=train_cfg, out=f"runs/semantic-{name}",
                     classifier_path=f"runs/semantic-{name}/classifier.safetensors")
    train = load_dataset(train_cfg, schema, progress=False)
    _, learn = floor_split(len(train), cfg)
    net = evaluation_classifier(train, learn, schema, cfg, progress=False)
    return (lambda x: clf.embed(net, x)[1]), (lambda x: clf.embed(net, x)[0]), train


def held_out(name: str, d: dict, schema) -> np.ndarray:
    root = Path(d["data"])
    cfg = (DataConfig(root=str(root), skip=d["split"], flip=False) if d.get("split") else
           DataConfig(root=str(root / "val"), layout="pair", flip=False))
    return to_unit_range(load_dataset(cfg, schema if d.get("split") else empty(), progress=False).images)


def editors(be: TorchBackend, variants: list[str], project_steps: int):
    """name -> fn(tasks) -> edited images."""
    out = {"unedited": lambda t: t.source}
    if be.has_g2:
        out["two-stage"] = lambda t: be.edit2(t.source, t.sketch, t.mask)
        for tol in (25,):
            out[f"two-stage, paste {tol}"] = (lambda tol: lambda t: editing.paste(
                t.source, be.edit2(t.source, t.sketch, t.mask), t.mask, tol))(tol)

    def latent(cfg, steps):
        def run(t):
            state = t.state
            if state is None:  # a photo: today's projection first
                state = editing.project(be, t.source, project_steps).state
            return editing.latent_edit(be, state, t.sketch, t.mask, cfg, steps=steps).image
        return run
    for v in variants:
        cfg, steps = VARIANTS[v]
        for s in steps:
            out[f"latent {v}, {s} steps"] = latent(cfg, s)
    return out


def figure(rows: list[np.ndarray], path: Path) -> None:
    """Rows of [3, R, R] pictures (original | strokes | one-stage | two-stage) -> a PNG, 2x upscaled."""
    from PIL import Image
    grid = image_grid(to_uint8(np.stack([x for r in rows for x in r])), len(rows[0]))
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.LANCZOS).save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=list(DOMAINS))
    ap.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    ap.add_argument("--g2", help="a bundle whose G2 replaces the bundle's (e.g. a training run's)")
    ap.add_argument("--n", type=int, default=96, help="tasks per kind and source")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--kinds", nargs="+", help="task kinds (default: the domain's)", choices=list(S.KINDS))
    ap.add_argument("--sources", nargs="+", default=["sample", "real"], choices=["sample", "real"])
    ap.add_argument("--project-steps", type=int, default=100, help="projection of photos for the latent editor")
    ap.add_argument("--latent-real", action="store_true", help="also run the latent editor on photos (slow)")
    ap.add_argument("--out", default="", help="folder for JSON and figures (default runs/semantic-DOMAIN)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = DOMAINS[args.domain]
    b = bundle_mod.read(args.bundle or d["bundle"])
    G2 = load_module(bundle_mod.read(args.g2), "g2") if args.g2 else (
        load_module(b, "g2") if b.has_g2 else None)
    be = TorchBackend(load_module(b, "g1"), G2, b.schema)
    out = Path(args.out or f"runs/semantic-{args.domain}")
    out.mkdir(parents=True, exist_ok=True)
    schema = b.schema
    judge, features, train = judge_and_features(args.domain, d, schema)
    photos = held_out(args.domain, d, schema)
    n = args.n
    real_src, ref = photos[:n], photos[n:]  # the KID reference: held-out photos that are no source
    f_ref = features(ref)
    rng = np.random.default_rng(args.seed)
    task_sets = []
    if args.domain == "anime":
        hair_pal = S.hair_palette(train.images, train.c, schema)
        eye_pal = S.eye_palette(be.generate, schema, b.z_dim, np.random.default_rng(1))
        print("palettes:", json.dumps({"hair": {k: v.tolist() for k, v in hair_pal.items()},
                                       "eyes": {k: v.tolist() for k, v in eye_pal.items()}}))
        for kind in args.kinds or d["kinds"]:
            for origin in args.sources:
                if kind == "eyes" and origin == "real":
                    continue
                task_sets.append(S.anime_tasks(kind, origin, n, be.generate, b.z_dim, schema, hair_pal, rng,
                                               photos=real_src, eye_palette=eye_pal))
    else:
        for origin in args.sources:
            st = None
            if origin == "sample":
                from neuedit.runtime.state import sample_state
                st = sample_state(n, b.z_dim, schema, rng)
                src = be.generate(st.z, st.c)
            else:
                src = real_src
            task_sets.append(S.object_tasks(origin, n, src, rng, st))
    eds = editors(be, args.variants, args.project_steps)
    rows, results = [], {}
    for ts in task_sets:
        kid_src = S.learned_kid(features, ts.source, f_ref)
        names = list(eds)
        if ts.state is not None and ts.kind != "object":
            names.insert(1, "ideal G1(z, c')")
        for name in names:
            if ts.origin == "real" and name.startswith("latent") and not args.latent_real:
                continue
            if name == "ideal G1(z, c')":
                fn = (lambda t: t.extra["ideal"]) if ts.kind == "eyes" else (lambda t: _ideal_hair(be, t, schema))
            else:
                fn = eds[name]
            edited, ms = S.timed(fn, ts)
            sc = S.score(ts, edited, judge, schema)
            results[(ts.kind, ts.origin, name)] = edited
            row = {"task": f"{ts.kind} / {ts.origin}", "editor": name, "n": len(ts),
                   "success %": 100 * float(np.nanmean(sc["success"]))}
            if ts.kind == "object":
                row.update({"ΔE before": float(np.nanmean(sc["de_before"])), "ΔE after": float(np.nanmean(sc["de_after"])),
                            "edge F1": float(np.nanmean(sc["edge_f1"]))})
            else:
                row.update({"centre SSIM": float(np.mean(sc["centre_ssim"])),
                            "others kept %": 100 * float(np.nanmean(sc["others_kept"]))})
            row.update({"KID": S.learned_kid(features, edited, f_ref), "KID source": kid_src, "ms/edit": ms})
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_table(rows, f"semantic edits, {args.domain} ({b.path}{', G2 ' + args.g2 if args.g2 else ''})")
    write_json(rows, out / "semantic.json")
    # figures: original | strokes | one-stage (the default, 30 steps) | two-stage
    for ts in task_sets:
        lat = results.get((ts.kind, ts.origin, "latent default, 30 steps"))
        two = results.get((ts.kind, ts.origin, "two-stage"))
        pick = range(0, min(len(ts), 8))
        over = ts.source * (1 - ts.mask) + ts.sketch * ts.mask
        fig_rows = [[ts.source[i], over[i]] + ([lat[i]] if lat is not None else []) + ([two[i]] if two is not None else [])
                    for i in pick]
        figure(fig_rows, out / f"semantic-{args.domain}-{ts.kind}-{ts.origin}.png")


def _ideal_hair(be, t, schema):
    """G1(z, c') with the requested hair colour: what a perfect edit of a stage-one sample gives."""
    return be.generate(t.state.z, S.with_group(t.state.c, schema, "hair_colour", t.target))


if __name__ == "__main__":
    main()
