"""`neuedit evaluate`: a stage-one generator's sample quality as numbers (docs/method.md,
"Evaluating a generator").

For each bundle, against a held-out set of real images:
- KID (unbiased MMD^2, cubic kernel) in two feature spaces: the handcrafted descriptor of
  `metrics.image_features` (colour, gradients, texture) and the penultimate layer of the
  project's own evaluation classifier (`classifier.py`), trained on real images only;
- diversity: the share of sample pairs closer than the closest 1 % of real pairs (collapse
  shows as a high share; real images give 1 % by construction) and the mean pairwise
  distance of samples over that of real images, both in the classifier's standardised space;
- attribute control: for each exclusive group of the schema, how often the classifier's
  verdict on samples agrees with the requested attribute, beside its accuracy on held-out
  real images (the ceiling a generator can be judged against).

Results are written as `evaluate.json` and `evaluate.md`, plus a sample grid per bundle.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

from neuedit.runtime.editor import Editor
from neuedit.runtime import bundle as bundle_mod
from neuedit.evaluation import classifier as clf
from neuedit.data.datasets import DataConfig, image_grid, load_dataset, to_uint8
from neuedit.evaluation.metrics import image_features, kid
from neuedit.runtime.schema import Schema
from neuedit.synth.colour import derive_labels
from neuedit.runtime.state import sample_state, sample_z
from neuedit.errors import UsageError

DUPLICATE_QUANTILE = 0.01  # "closer than the closest 1 % of real pairs"


@dataclass(frozen=True)
class EvalConfig:
    real: DataConfig                      # held-out real images: the reference
    train: DataConfig                     # real images the evaluation classifier learns from
    out: str                              # folder for evaluate.json / evaluate.md / grids
    samples: int = 2000                   # generated images for KID and diversity
    attr_samples: int = 1000              # generated images with one requested attribute per group
    diversity_pairs_of: int = 1000        # images per set in the pairwise-distance statistics
    floor_images: int = 1000              # training images held back from the classifier for the floor (at most 1/5)
    seed: int = 0
    classifier: clf.ClassifierConfig = field(default_factory=clf.ClassifierConfig)
    classifier_path: str = ""             # cache file (default <out>/classifier.safetensors)


def generator(bundle: bundle_mod.Bundle):
    """(z [N, Z], c [N, C]) -> images [N, 3, R, R]: ONNX Runtime when the bundle was exported,
    else its PyTorch weights (a training run's bundle)."""
    exported = "g1" in bundle.meta.get("onnx", {})
    ed = Editor.load(bundle) if exported else Editor.load(bundle, backend="torch", g2=False)
    return lambda z, c: np.concatenate([ed.generate(z[i:i + 256], c[i:i + 256]) for i in range(0, len(z), 256)])


def one_per_group(n: int, schema: Schema, rng: np.random.Generator) -> np.ndarray:
    """c [n, C] with exactly one attribute on in every exclusive group (uniform), free
    attributes Bernoulli(0.5): every sample asks something of every group."""
    c = np.zeros((n, schema.c_dim), np.float32)
    for g, s in schema.slices():
        if g.exclusive:
            c[np.arange(n), s.start + rng.integers(len(g.attributes), size=n)] = 1.0
        else:
            c[:, s] = rng.random((n, len(g.attributes))) < 0.5
    return c


def diversity(f_fake: np.ndarray, f_real: np.ndarray, n: int, rng: np.random.Generator) -> dict:
    """Pairwise Euclidean distances in the real set's standardised feature space."""
    mu, sd = f_real.mean(0), f_real.std(0) + 1e-6
    a = (f_fake[rng.permutation(len(f_fake))[:n]] - mu) / sd
    b = (f_real[rng.permutation(len(f_real))[:n]] - mu) / sd
    d_fake, d_real = pdist(a), pdist(b)
    thr = np.quantile(d_real, DUPLICATE_QUANTILE)
    return {"duplicate_share": float((d_fake < thr).mean()),
            "real_duplicate_share": float((d_real < thr).mean()),
            "mean_pairwise": float(d_fake.mean()), "real_mean_pairwise": float(d_real.mean()),
            "pairwise_ratio": float(d_fake.mean() / d_real.mean())}


def real_accuracy(logits: np.ndarray, c: np.ndarray, schema: Schema) -> dict:
    """Per exclusive group: the classifier's accuracy on real images labelled in that group."""
    pred = clf.group_predictions(logits, schema)
    out = {}
    for g, s in schema.slices():
        if g.exclusive:
            lab = c[:, s].sum(1) > 0
            out[g.name] = {"accuracy": float((pred[g.name][lab] == c[lab, s].argmax(1)).mean()) if lab.any() else None,
                           "n": int(lab.sum()), "chance": 1.0 / len(g.attributes)}
    return out


def agreement(logits: np.ndarray, c: np.ndarray, schema: Schema) -> dict:
    pred = clf.group_predictions(logits, schema)
    return {g.name: float((pred[g.name] == c[:, s].argmax(1)).mean())
            for g, s in schema.slices() if g.exclusive}


def scores(f_hand: np.ndarray, f_learned: np.ndarray, ref: "Reference", cfg: EvalConfig,
           rng: np.random.Generator | None = None) -> dict:
    """KID in both feature spaces and diversity of one image set ([N, D] features) against the
    held-out reference."""
    rng = rng if rng is not None else np.random.default_rng(cfg.seed)
    return {"kid_handcrafted": kid(f_hand, ref.f_hand, seed=cfg.seed)[0],
            "kid_learned": kid(f_learned, ref.f_learned, seed=cfg.seed)[0],
            **diversity(f_learned, ref.f_learned, min(cfg.diversity_pairs_of, len(f_learned), ref.n), rng)}


def floor_split(n: int, cfg: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the classifier's training images held back for the floor, and the rest."""
    k = min(cfg.floor_images, n // 5)
    order = np.random.default_rng(cfg.seed).permutation(n)
    return np.sort(order[:k]), np.sort(order[k:])


def evaluation_classifier(train, learn: np.ndarray, schema: Schema, cfg: EvalConfig, progress: bool = True):
    """The evaluation classifier trained on the real images `train[learn]` (cached by digest at
    `cfg.classifier_path`, default <out>/classifier.safetensors)."""
    path = Path(cfg.classifier_path or Path(cfg.out) / "classifier.safetensors")
    key = clf.digest([str(train.files[i]) for i in learn], schema, cfg.classifier)
    return clf.load_or_train(path, key, train.images[learn], train.c[learn], schema, cfg.classifier, progress)


class Reference:
    """The held-out real set, its features, and the classifier that judges samples."""

    def __init__(self, cfg: EvalConfig, schema: Schema, progress: bool = True):
        self.schema = schema
        real = derive_labels(load_dataset(cfg.real, schema, progress=progress), schema)
        train = derive_labels(load_dataset(cfg.train, schema, progress=progress), schema)
        overlap = set(map(str, real.files)) & set(map(str, train.files))
        if overlap and Path(cfg.real.root).resolve() == Path(cfg.train.root).resolve():
            raise UsageError(f"{len(overlap)} held-out images are also classifier training images: "
                             "use --skip N for the held-out set and --train-limit N for the classifier")
        # The floor: real training images the classifier does not learn from (so they are as new
        # to it as samples are; in its features the images it learned from score a higher KID),
        # scored like a bundle's samples: what a generator that drew its training set would score.
        held, learn = floor_split(len(train), cfg)
        self.net = evaluation_classifier(train, learn, schema, cfg, progress)
        x_real = real.images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
        self.n = len(real)
        self.f_learned, logits = clf.embed(self.net, x_real)
        self.f_hand = image_features(real.images)
        self.accuracy = real_accuracy(logits, real.c, schema)
        x_held = train.images[held].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
        self.floor = {"label": "real training images (the floor)", "samples": len(held),
                      **scores(image_features(train.images[held]), clf.embed(self.net, x_held)[0], self, cfg)}
        self.info = {"real": asdict(cfg.real), "real_images": len(real), "classifier_train": asdict(cfg.train),
                     "classifier_train_images": len(learn), "floor_images": len(held),
                     "classifier": asdict(cfg.classifier)}


def evaluate_bundle(path: str | Path, ref: Reference, cfg: EvalConfig, label: str = "") -> dict:
    b = bundle_mod.read(path)
    # the classifier judges attributes it was trained on; with none (--schema empty) any bundle's
    # samples can be scored (KID, diversity), e.g. one before and one after a condition was added
    if ref.schema.c_dim and b.schema.attributes != ref.schema.attributes:
        raise UsageError(f"bundle {b.path} has schema {b.schema.name!r}, the reference {ref.schema.name!r} "
                         "(--schema empty scores any bundle's samples, without attribute control)")
    G = generator(b)
    rng = np.random.default_rng(cfg.seed)
    st = sample_state(cfg.samples, b.z_dim, b.schema, rng)  # what a user's "New" draws
    x = G(st.z, st.c)
    f_learned, _ = clf.embed(ref.net, x)
    u8 = to_uint8(x)
    res = {"bundle": str(b.path), "label": label or b.name, "samples": cfg.samples,
           "training_steps": b.training_steps, **scores(image_features(u8), f_learned, ref, cfg, rng)}
    if any(g.exclusive for g in ref.schema.groups):
        c = one_per_group(cfg.attr_samples, b.schema, rng)
        _, logits = clf.embed(ref.net, G(sample_z(len(c), b.z_dim, rng), c))
        res["agreement"] = agreement(logits, c, b.schema)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image
    grid_path = out / f"samples-{_slug(res['label'])}.png"
    Image.fromarray(image_grid(u8[:64], 8)).save(grid_path)
    res["grid"] = grid_path.name
    return res


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in s)


def markdown(results: list[dict], ref: Reference) -> str:
    lines = [f"Held-out real images: {ref.n}. KID: lower is better; duplicate share: real images give "
             f"{DUPLICATE_QUANTILE:.0%} by construction, collapse approaches 100 %. The first row scores "
             f"{ref.floor['samples']} real training images, held back from the evaluation classifier, as if they "
             "were samples: a generator that drew its training set exactly would score it.", "",
             "| model | steps | KID (handcrafted) | KID (learned) | duplicate share | pairwise distance / real |",
             "|---|---|---|---|---|---|"]
    for r in [ref.floor] + results:
        steps = r["training_steps"].get("stage1", "?") if "training_steps" in r else "-"
        lines.append(f"| {r['label']} | {steps} | {r['kid_handcrafted']:.4f} | {r['kid_learned']:.4f} | "
                     f"{r['duplicate_share']:.1%} | {r['pairwise_ratio']:.2f} |")
    groups = [g for g in ref.accuracy]
    if groups:
        lines += ["", "Attribute control: the classifier's agreement with the requested attribute on samples, "
                  "beside its accuracy on held-out real images.", "",
                  "| model | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups),
                  "| real images (classifier accuracy) | " + " | ".join(
                      f"{ref.accuracy[g]['accuracy']:.1%} (chance {ref.accuracy[g]['chance']:.0%})" for g in groups) + " |"]
        for r in results:
            if "agreement" in r:
                lines.append(f"| {r['label']} | " + " | ".join(f"{r['agreement'][g]:.1%}" for g in groups) + " |")
    return "\n".join(lines) + "\n"


def evaluate(bundles: list[str], labels: list[str], cfg: EvalConfig, schema: Schema, progress: bool = True) -> dict:
    ref = Reference(cfg, schema, progress)
    results = [evaluate_bundle(b, ref, cfg, lab) for b, lab in zip(bundles, labels)]
    report = {"reference": ref.info, "classifier_accuracy": ref.accuracy, "floor": ref.floor, "results": results}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluate.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "evaluate.md").write_text(markdown(results, ref))
    return report
