"""Stage two: the sketch-conditioned editor `G2(I1, sketch, mask) -> I2` (docs/method.md §2).

Two objectives (docs/method.md, "Stage two"):

- `pairs` (the default): each step draws edit pairs with a known answer (`neuedit.synth.pairs`:
  recolour, reshape, differ, empty) and trains G2 toward the target: L1 over the image and
  again over the changed region, feature matching on the discriminator, Dist on the
  strokes, and a hinge loss against a conditional PatchGAN that sees the strokes too.
- `strokes` (the first recipe, kept for the ablation): strokes cut from *other* images,
  Dist + adversarial (DRAGAN) + keep-the-rest outside the dilated mask + self-supervised
  reconstruction.

Stage one is frozen by default. The loop and the run machinery (seeding, data order, DDP,
logs, grids, checkpoints, resume) are `neuedit.training`'s.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from neuedit.nn.weights import load_module, save_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.synth import pairs as P
from neuedit.nn import presets
from neuedit.data.datasets import DataConfig, ImageSet, load_dataset
from neuedit.nn.losses import (d_hinge_loss, edit_distance, feature_matching, g_adv_loss, g_hinge_loss, gradient_l1,
                            l2_reg, masked_l1)
from neuedit.nn.nets import build
from neuedit.runtime.schema import Schema, empty as empty_schema
from neuedit.runtime.state import sample_z
from neuedit.synth.strokes import StrokeConfig, edge_maps, edges_from_pair_half, synthesize_batch
from neuedit.training import (LossConfig, OptimConfig, Phase, Run, RunConfig, Stage, TensorData, d_loss_terms, train_loop,
                              warm_start)
from neuedit.errors import UsageError

from neuedit.stage2.batches import PairBatcher, PairMix, pair_tensors

OBJECTIVES = ("pairs", "strokes")


@dataclass(frozen=True)
class Stage2LossConfig:
    l_dist: float = 4.0          # weight of Dist(I2, sketch): follow the strokes
    l_adv: float = 0.5           # weight of the adversarial loss on I2
    l_l1: float = 10.0           # pairs: weight of L1(I2, target) over the image
    l_region: float = 10.0       # pairs: weight of L1(I2, target) over the changed region (the edit itself)
    l_fm: float = 2.0            # pairs: weight of feature matching on D2's features of I2 and the target
    l_edge: float = 0.0          # pairs: weight of L1 between I2's and the target's Sobel gradients near the line strokes
    l_line: float = 0.5          # pairs: weight of Dist(I2, sketch) on the line strokes: draw them as lines
    l_keep: float = 4.0          # strokes: weight of L1(I2, I1) outside the dilated mask: keep the rest
    l_rec: float = 2.0           # strokes: weight of the self-supervised reconstruction loss (0: off)
    l_gp: float = 1.0            # strokes: DRAGAN penalty weight for D2 (stage one's loss)
    l_reg: float = 1e-4          # L2 weight regulariser
    dilate: int = 5              # pixels of the mask's dilation that the keep loss leaves free (odd)

    def __post_init__(self):
        if self.dilate < 1 or self.dilate % 2 == 0:
            raise UsageError("dilate must be a positive odd number of pixels")


@dataclass(frozen=True)
class Stage2Config:
    stage1: str                  # stage-one bundle folder
    data: DataConfig             # real images: strokes, D2's real examples, I1 when real
    run: RunConfig               # output folder, iterations, batch, seed, logging intervals
    preset: str = ""             # G2/D2 preset (default: the stage-one bundle's)
    p_real: float = 0.5          # probability that a step's I1 are real images rather than G1 samples
    residual: bool = True        # G2 predicts a change over I1
    joint: bool = False          # also fine-tune G1 (off: stage one stays frozen)
    loss: Stage2LossConfig = field(default_factory=Stage2LossConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-4, lr_end=1e-5, decay_start=0.5))
    strokes: StrokeConfig = field(default_factory=StrokeConfig)
    edges: str = "auto"          # edge strokes from: "pairs" (the dataset's edge halves), "canny", "xdog", "auto"
    name: str = ""               # model name (default: the stage-one bundle's)
    objective: str = "pairs"     # "pairs" (edit pairs with a target) or "strokes" (the first recipe)
    mix: PairMix = field(default_factory=PairMix)  # pairs: which edit pairs, how many strokes
    init_from: str = ""          # two-stage bundle whose G2 starts the run (fresh optimisers and D2)
    keep: float = 0.0            # > 0: G2 gives back the input where it changed a pixel by less than about
    #                              this ΔE (neuedit.nn.nets.keep_unchanged; U-Net G2s only)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise UsageError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if self.joint and self.objective == "pairs":
            raise UsageError("--joint fine-tunes G1 through the strokes objective; the pairs objective keeps G1 frozen")
        if not 0.0 <= self.p_real <= 1.0:
            raise UsageError("p_real must be in [0, 1]")
        if self.edges not in ("auto", "pairs", "canny", "xdog"):
            raise UsageError("edges must be auto, pairs, canny or xdog")
        if self.preset:
            presets.get(self.preset)
        if not self.keep >= 0:
            raise UsageError("keep must be a non-negative ΔE")

    def to_dict(self) -> dict:
        return asdict(self)


# ---- losses of one step ----------------------------------------------------------------------
def dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary dilation of mask [N, 1, H, W] with a k x k square."""
    return F.max_pool2d(mask, k, stride=1, padding=k // 2)


def g2_loss_terms(G2, D_eval, i1, sketch, mask, rec, cfg: Stage2LossConfig) -> tuple[dict, torch.Tensor]:
    """L(G2) and its terms; `rec` = (x_in, sketch, mask, x_target) self-supervised pairs or None."""
    i2 = G2(i1, sketch, mask)
    fake_logit, _ = D_eval(i2)
    L_dist = edit_distance(i2, sketch, mask).mean()
    L_adv = g_adv_loss(fake_logit)
    L_keep = masked_l1(i2, i1, 1.0 - dilate(mask, cfg.dilate)).mean()
    terms = {"L_dist": L_dist, "L_adv_G2": L_adv, "L_keep": L_keep}
    L = cfg.l_dist * L_dist + cfg.l_adv * L_adv + cfg.l_keep * L_keep + cfg.l_reg * l2_reg(G2.parameters())
    if rec is not None and cfg.l_rec > 0:
        x_in, sk, m, x_t = rec
        L_rec = (G2(x_in, sk, m) - x_t).abs().mean()
        terms["L_rec"] = L_rec
        L = L + cfg.l_rec * L_rec
    terms["L_G2"] = L
    return terms, i2


def g2_pair_loss_terms(G2, D2, b: dict, cfg: Stage2LossConfig) -> tuple[dict, torch.Tensor]:
    """L(G2) on a batch of edit pairs `b` (`batches.pair_tensors`) and its terms."""
    sk, mk = b["sketch"], b["mask"]
    i2 = G2(b["source"], sk, mk)
    fake_logit, fake_f = D2(i2, sk, mk)
    with torch.no_grad():
        _, real_f = D2(b["target"], sk, mk)
    terms = {"L_l1": (i2 - b["target"]).abs().mean(),
             "L_region": masked_l1(i2, b["target"], b["region"]).mean(),
             "L_fm": feature_matching(fake_f, real_f),
             # Dist on the colour strokes; the line strokes have their own weight (l_line) because
             # the target's edge there is not black paint, but without it lines come out blurred away
             "L_dist": edit_distance(i2, sk, b["colour"]).mean(),
             "L_adv_G2": g_hinge_loss(fake_logit)}
    L = (cfg.l_l1 * terms["L_l1"] + cfg.l_region * terms["L_region"] + cfg.l_fm * terms["L_fm"]
         + cfg.l_dist * terms["L_dist"] + cfg.l_adv * terms["L_adv_G2"] + cfg.l_reg * l2_reg(G2.parameters()))
    lines = mk - b["colour"]  # the line strokes' mask
    if cfg.l_edge > 0:
        # ...and the edge it asks for is the target's: sharp and where the line is (one pixel of slack)
        terms["L_edge"] = gradient_l1(i2, b["target"], dilate(lines, 3)).mean()
        L = L + cfg.l_edge * terms["L_edge"]
    if cfg.l_line > 0:
        terms["L_line"] = edit_distance(i2, sk, lines).mean()
        L = L + cfg.l_line * terms["L_line"]
    terms["L_G2"] = L
    return terms, i2


def d2_pair_loss(D2, b: dict, i2: torch.Tensor) -> torch.Tensor:
    """L(D2): hinge, the target with its strokes real, G2's edit with the same strokes fake."""
    real_logit, _ = D2(b["target"], b["sketch"], b["mask"])
    fake_logit, _ = D2(i2.detach(), b["sketch"], b["mask"])
    return d_hinge_loss(real_logit, fake_logit)


# ---- data for one step -------------------------------------------------------------------------
class SketchSource:
    """Real images (uint8, training resolution) plus each image's edge map, for synthesis."""

    def __init__(self, images: ImageSet, cfg: Stage2Config, progress: bool):
        self.images = images.images
        method = cfg.edges
        if method == "auto":
            method = "pairs" if images.edges is not None else "canny"
        if method == "pairs":
            if images.edges is None:
                raise UsageError("edges='pairs' needs a paired dataset (--layout pair)")
            r = images.images.shape[1]
            self.edges = np.stack([edges_from_pair_half(e, r) for e in images.edges])
        else:
            if progress:
                print(f"computing {method} edge maps of {len(self.images)} images...", flush=True)
            self.edges = edge_maps(self.images, method)

    def sketches(self, idx_src: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig, resolution: int):
        """Strokes drawn from the real images `idx_src`: their colours and their edges."""
        imgs = self.images[idx_src]
        return synthesize_batch(imgs, rng, cfg, resolution, colour_sources=imgs, edges=self.edges[idx_src])


def corrupt(x: torch.Tensor, mask: torch.Tensor, other: torch.Tensor, k: int) -> torch.Tensor:
    """Self-supervised input: x [N, 3, R, R] with the dilated stroke region replaced by `other`."""
    region = dilate(mask, k)
    return x * (1 - region) + other * region


# ---- the stage -----------------------------------------------------------------------------------
class Stage2(Stage):
    """Stage two for `neuedit.training.train_loop`: a G2 phase, then a D2 phase."""

    def __init__(self, cfg: Stage2Config, run: Run, images: ImageSet, s1):
        self.cfg, self.run, self.s1 = cfg, run, s1
        self.name = f"stage2 {cfg.name or s1.name}"
        self.schema = Schema.from_dict(s1.meta["schema"])
        preset = stage2_preset(cfg, s1)
        self.source = SketchSource(images, cfg, run.is_main)
        self.data = TensorData(images, run.device)
        self.G1 = load_module(s1, "g1", run.device)
        if cfg.joint:
            self.G1.train().requires_grad_(True)
        self.g2_spec = presets.g2_spec(preset)
        self.g2_spec["kwargs"]["residual"] = cfg.residual
        if cfg.keep > 0:
            if self.g2_spec["name"] != "edit_unet":
                raise UsageError(f"keep needs a U-Net G2 (edit_unet), not {self.g2_spec['name']}")
            self.g2_spec["kwargs"]["keep"] = cfg.keep
        d_spec = presets.d2_spec(preset) if cfg.objective == "pairs" else presets.d_spec(preset, 0)
        self.G2, self.D2 = build(self.g2_spec).to(run.device), build(d_spec).to(run.device)
        self.optim = o = cfg.optim
        params = [{"params": self.G2.parameters()}]
        if cfg.joint:
            params.append({"params": self.G1.parameters(), "lr_scale": 0.1})
        pairs = cfg.objective == "pairs"
        self.phases = [Phase("G", self.G2, o.adam(params), self.g_pairs if pairs else self.g_strokes, "L_G2"),
                       Phase("D", self.D2, o.adam(self.D2.parameters()), self.d_pairs if pairs else self.d_strokes, "L_D2")]
        self.modules = {"G2": self.G2, "D2": self.D2, **({"G1": self.G1} if cfg.joint else {})}
        self.G2_t, self.D2_t = run.wrap(self.G2), run.wrap(self.D2)
        self.R, self.n_img = s1.resolution, len(images)
        self.d_cfg = LossConfig(l_adv=1.0, l_gp=cfg.loss.l_gp, l_reg=cfg.loss.l_reg, cls_on_fake=False)
        self.batcher = PairBatcher(images.images, self.source.edges, self.G1, s1.z_dim, self.schema, cfg.mix, run.device)
        self.fixed = fixed_pairs(self.batcher, self.R, run.device) if pairs else \
            fixed_examples(self.source, self.G1, s1, self.schema, run, cfg, self.R)
        self.plot_keys = ["L_G2", "L_l1", "L_region", "L_fm", "L_dist", "L_line", "L_adv_G2", "L_D2"] if pairs else \
            ["L_G2", "L_dist", "L_keep", "L_rec", "L_adv_G2", "L_D2", "L_gp"]

    def warm_start(self) -> None:
        if self.cfg.init_from:
            warm_start(self.cfg.init_from, {"g2": (self.G2, self.g2_spec, True)},
                       log=print if self.run.is_main else (lambda *_: None))

    # ---- a step's inputs ----
    def batch(self, step: int) -> dict:
        run, cfg = self.run, self.cfg
        rng = run.numpy_rng(step)
        idx = run.batch_indices(self.n_img, step)
        if cfg.objective == "pairs":
            with torch.no_grad():
                return pair_tensors(self.batcher.pairs(idx.cpu().numpy(), rng), self.R, run.device)
        g = run.generator(step)
        n = len(idx)
        x_real, _ = self.data.get(idx, torch.rand(n, generator=g, device=run.device) < 0.5)
        i1 = self.make_i1(step, rng, n)
        # strokes from *other* real images: colours and shapes the edit should move toward
        src = rng.integers(0, self.n_img, n)
        sk, mk = (torch.from_numpy(a).to(run.device) for a in self.source.sketches(src, rng, cfg.strokes, self.R))
        rec = None
        if cfg.loss.l_rec > 0:
            # self-supervised pairs: a real image with its stroke region replaced; its own strokes
            sk_t, mk_t = (torch.from_numpy(a).to(run.device)
                          for a in self.source.sketches(idx.cpu().numpy(), rng, cfg.strokes, self.R))
            x_t = self.data.get(idx, None)[0]
            rec = (corrupt(x_t, mk_t, i1.detach(), cfg.loss.dilate), sk_t, mk_t, x_t)
        alpha = torch.rand(x_real.shape, generator=g, device=run.device)  # per pixel, as stage one
        return {"x_real": x_real, "i1": i1, "sketch": sk, "mask": mk, "rec": rec, "alpha": alpha}

    def make_i1(self, step: int, rng: np.random.Generator, n: int) -> torch.Tensor:
        if rng.random() < self.cfg.p_real:
            idx = self.run.batch_indices(self.n_img, step + 7919)  # another draw of real images than x_real
            return self.data.get(idx, None)[0]
        z = torch.from_numpy(sample_z(n, self.s1.z_dim, rng)).to(self.run.device)
        c = torch.from_numpy(self.schema.sample(n, rng)).to(self.run.device)
        with torch.set_grad_enabled(self.cfg.joint):
            return self.G1(z, c)

    # ---- the phases (the G2 phase leaves its edit in the batch for the D2 phase) ----
    def g_pairs(self, b: dict, step: int) -> dict:
        terms, b["i2"] = g2_pair_loss_terms(self.G2_t, self.D2, b, self.cfg.loss)
        return terms

    def d_pairs(self, b: dict, step: int) -> dict:
        return {"L_D2": d2_pair_loss(self.D2_t, b, b["i2"])}

    def g_strokes(self, b: dict, step: int) -> dict:
        terms, b["i2"] = g2_loss_terms(self.G2_t, self.D2, b["i1"], b["sketch"], b["mask"], b["rec"], self.cfg.loss)
        return terms

    def d_strokes(self, b: dict, step: int) -> dict:
        empty = torch.zeros(len(b["i1"]), 0, device=self.run.device)
        d = d_loss_terms(self.D2_t, b["x_real"], b["i2"].detach(), empty, empty, b["alpha"], self.d_cfg)
        return {"L_D2": d["L_D"], "L_gp": d["L_gp"]}

    # ---- grids and the bundle ----
    def sample(self, step: int) -> None:
        i1, sk, mk = self.fixed[:3]
        self.G2.eval()
        with torch.no_grad():
            i2 = self.G2(i1, sk, mk)
        self.G2.train()
        over = i1 * (1 - mk) + sk * mk
        # I1 | sketch over I1 | I2 (| target, for pairs), per example
        rows = torch.stack([i1, over, i2, *self.fixed[3:]], 1).flatten(0, 1)
        self.run.save_grid(step, rows.float().cpu().numpy(), nrow=2 * (3 + len(self.fixed[3:])))

    def export(self, step: int) -> None:
        write_bundle(self.run, self.cfg, self.s1, self.G1, self.G2, self.g2_spec, step)


def stage2_preset(cfg: Stage2Config, s1) -> presets.Preset:
    """G2/D2's preset (default: the stage-one bundle's), checked against the bundle and the data."""
    preset = presets.get(cfg.preset or s1.meta.get("preset", "demo"))
    if preset.resolution != s1.resolution or cfg.data.resolution != s1.resolution:
        raise UsageError(f"stage-one bundle is {s1.resolution}px; preset {preset.name} is {preset.resolution}px "
                         f"and data {cfg.data.resolution}px")
    return preset


def fit(cfg: Stage2Config, images: ImageSet | None = None, stop_at: int | None = None) -> tuple[Run, dict]:
    s1 = bundle_mod.read(cfg.stage1)
    stage2_preset(cfg, s1)  # before the run folder is touched
    run = Run(cfg.run, cfg.to_dict())
    torch.manual_seed(cfg.run.seed)
    if images is None:
        # stage two needs no labels: c for G1 samples comes from the schema's sampler
        images = load_dataset(cfg.data, empty_schema(), progress=run.is_main and run.cfg.progress)
        if run.is_main:
            print(f"data: {images.summary()}", flush=True)
    stage = Stage2(cfg, run, images, s1)
    train_loop(run, stage, stop_at)
    return run, stage.modules


def fixed_pairs(batcher: PairBatcher, R: int, device):
    """Fixed edit pairs for the sample grids, two of each kind the mix draws -> (source, sketch, mask, target)."""
    rng = np.random.default_rng(4321)
    mix = batcher.mix
    per_kind = []
    for k in (k for k, w in zip(P.KINDS, mix.weights()) if w > 0):
        one = replace(mix, **{n: float(n == k) for n in P.KINDS})
        per_kind += PairBatcher(batcher.images, batcher.edges, batcher.G1, batcher.z_dim, batcher.schema,
                                one, device).pairs(rng.integers(0, len(batcher.images), 2), rng)
    b = pair_tensors(per_kind, R, device)
    return b["source"], b["sketch"], b["mask"], b["target"]


def fixed_examples(source: SketchSource, G1, s1, schema, run: Run, cfg: Stage2Config, R: int):
    """8 fixed (I1, sketch, mask) for the sample grids: 4 G1 samples and 4 real images."""
    rng = np.random.default_rng(4321)
    z = torch.from_numpy(sample_z(4, s1.z_dim, rng)).to(run.device)
    c = torch.from_numpy(schema.sample(4, rng)).to(run.device)
    with torch.no_grad():
        gen = G1.eval()(z, c)
    G1.train(cfg.joint)
    real_idx = rng.choice(len(source.images), 4, replace=False)
    real = torch.from_numpy(source.images[real_idx]).permute(0, 3, 1, 2).float().to(run.device) / 127.5 - 1
    i1 = torch.cat([gen, real])
    strokes_cfg = StrokeConfig(**{**asdict(cfg.strokes), "p_empty": 0.0})
    sk, mk = source.sketches(rng.integers(0, len(source.images), 8), rng, strokes_cfg, R)
    return i1, torch.from_numpy(sk).to(run.device), torch.from_numpy(mk).to(run.device)


def write_bundle(run: Run, cfg: Stage2Config, s1, G1, G2, g2_spec: dict, step: int):
    """A two-stage bundle that *contains* its stage-one networks, so it moves and serves alone."""
    if not run.is_main:
        return None
    path = run.out / "bundle"
    path.mkdir(parents=True, exist_ok=True)
    # every stage-one network travels along; fine-tuning G1 (--joint) retires the encoder that inverted it
    nets = {k: n for k, n in s1.info.networks.items() if k != "g2" and not (cfg.joint and k == "e")}
    for key, net in nets.items():
        if not (cfg.joint and key == "g1"):
            shutil.copyfile(s1.file(key), path / net.weights)
    if cfg.joint:
        nets["g1"] = save_module(path, "g1", G1, nets["g1"].spec)
    nets["g2"] = save_module(path, "g2", G2, g2_spec)
    training = replace(s1.info.training, stage2_step=step, stage2_config_digest=run.digest, stage1_bundle=str(s1.path))
    # the stage-one bundle's graphs are not copied: this one is exported anew
    meta = replace(s1.info.without_graphs(), kind="two-stage", name=cfg.name or s1.name, networks=nets,
                   training=training)
    return bundle_mod.write_meta(path, meta)


def train(cfg: Stage2Config, images: ImageSet | None = None, stop_at: int | None = None):
    run, _ = fit(cfg, images, stop_at)
    return bundle_mod.read(run.out / "bundle") if run.is_main else None
