"""The photo encoder: `E(image) -> (z_t, c_t)`, a starting point for the latent editor that a
few refinement steps finish (iGAN's hybrid projection, Zhu et al. 2016; docs/method.md §3).

Each step's batch is part G1 samples, whose `(z, c)` are known, and part real photos, which
have no `z`: on samples E learns `z` and `c` themselves (`l_z`, `l_c`), on every row it learns
to reconstruct the picture through the frozen G1 (`l_rec`, pixel L1, and `l_feat`, L1 between
the frozen stage-one D's feature maps: a learned-feature term from the project's own weights).
Labelled photos add their labels to `l_c`. The output bundle is the input bundle plus `e`.
The loop and the run machinery (seeding, data order, logs, grids, checkpoints, resume) are
`neuedit.training`'s.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from neuedit.data.datasets import DataConfig, ImageSet, load_dataset
from neuedit.errors import UsageError
from neuedit.nn.backend import group_softmax
from neuedit.nn.losses import group_cls_loss
from neuedit.nn.nets import DetailG1, MinibatchStd, build
from neuedit.nn.weights import load_module, save_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.schema import Schema
from neuedit.synth.colour import derive_labels
from neuedit.runtime.state import group_matrix, sample_z
from neuedit.training import OptimConfig, Phase, Run, RunConfig, Stage, TensorData, train_loop, warm_start


@dataclass(frozen=True)
class EncoderLossConfig:
    l_z: float = 1.0             # weight of the squared error of z on G1 samples (their z is known)
    l_c: float = 0.5             # weight of the condition loss on G1 samples and labelled photos
    l_rec: float = 4.0           # weight of L1(G1(E(x)), x) over the picture
    l_feat: float = 1.0          # weight of L1 between the stage-one D's features of G1(E(x)) and of x
    p_real: float = 0.5          # share of each batch that is real photos (the rest G1 samples)
    l_detail: float = 4.0        # weight of L1 + the D-feature term of DetailG1(E(x)), x (with the detail r)
    l_r: float = 0.1             # weight of mean(r^2): the detail carries only what (z, c) cannot

    def __post_init__(self):
        if not 0.0 <= self.p_real <= 1.0:
            raise UsageError("p_real must be in [0, 1]")


@dataclass(frozen=True)
class EncoderConfig:
    bundle: str                  # the bundle whose G1 the encoder inverts (its D gives the feature term)
    data: DataConfig             # real photos of the bundle's domain (labels, when present, supervise c)
    run: RunConfig               # output folder, iterations, batch, seed, logging intervals
    chans: tuple[int, ...] = (32, 64, 128, 256)  # encoder channels after each halving (log2(R / 4) of them)
    hidden: int = 512            # units of the encoder's dense layer
    detail: int = 16             # size S of G1's feature map the encoder's detail r is added to (0: none)
    loss: EncoderLossConfig = field(default_factory=EncoderLossConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-4, lr_end=3e-5, decay_start=0.5,
                                                                   beta1=0.9, beta2=0.999))
    name: str = ""               # model name (default: the bundle's)
    init_from: str = ""          # a bundle whose encoder `e` (same architecture) the training starts from

    def to_dict(self) -> dict:
        return asdict(self)


def d_features(D, x: torch.Tensor) -> list[torch.Tensor]:
    """The stage-one D's feature maps of x, one per nonlinearity of its `features` stack, up to
    a minibatch-statistics layer (that one mixes the batch's rows)."""
    out = []
    for layer in D.features:
        if isinstance(layer, MinibatchStd):
            break
        x = layer(x)
        if isinstance(layer, torch.nn.LeakyReLU):
            out.append(x)
    return out


def encoder_loss_terms(E, G1, D, groups_t, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor, n_syn: int,
                       loss_groups: list, cfg: EncoderLossConfig, G1d: DetailG1 | None = None) -> dict:
    """x [N, 3, R, R]: n_syn G1 samples of known z [n_syn, Z], then photos; c [N, C] the samples'
    c and the photos' labels (rows without a label say nothing); G1d: G1 with the detail when E
    predicts one. -> loss terms, L_E their sum. (z, c) alone are trained to draw the picture as
    well as they can (L_rec, L_feat), so the detail r is what they cannot draw (L_detail, L_r)."""
    z_t, c_t, *r = E(x)
    z_hat, c_hat = torch.tanh(z_t), group_softmax(c_t, groups_t)
    rec = G1(z_hat, c_hat)
    feat = (lambda y: sum((a - b).abs().mean() for a, b in zip(d_features(D, y), d_features(D, x)))) \
        if D is not None and cfg.l_feat else (lambda y: x.new_zeros(()))
    terms = {"L_rec": (rec - x).abs().mean(), "L_feat": feat(rec)}
    terms["L_z"] = F.mse_loss(z_hat[:n_syn], z) if n_syn else x.new_zeros(())
    terms["L_c"] = group_cls_loss(c_t, c, loss_groups) if c.shape[1] else x.new_zeros(())
    if r:
        rec_d = G1d(z_hat, c_hat, r[0])
        terms["L_detail"] = (rec_d - x).abs().mean() + cfg.l_feat * feat(rec_d)
        terms["L_r"] = r[0].pow(2).mean()
    else:
        terms["L_detail"] = terms["L_r"] = x.new_zeros(())
    terms["L_E"] = (cfg.l_rec * terms["L_rec"] + cfg.l_z * terms["L_z"] + cfg.l_c * terms["L_c"]
                    + cfg.l_feat * terms["L_feat"] + cfg.l_detail * terms["L_detail"] + cfg.l_r * terms["L_r"])
    return terms


class EncoderStage(Stage):
    """The encoder for `neuedit.training.train_loop`: one phase; G1 and D frozen."""

    def __init__(self, cfg: EncoderConfig, run: Run, images: ImageSet, b: bundle_mod.Bundle):
        self.cfg, self.run, self.b = cfg, run, b
        self.name = f"encoder {cfg.name or b.name}"
        self.schema = b.schema
        self.G1 = load_module(b, "g1", run.device)
        self.D = load_module(b, "d", run.device) if "d" in b.info.networks else None
        self.groups_t = torch.from_numpy(group_matrix(self.schema, b.c_dim)).to(run.device)
        self.loss_groups = [(s, g.exclusive) for g, s in self.schema.slices()]
        self.G1d = DetailG1(self.G1, cfg.detail) if cfg.detail else None
        detail = (self.G1d.channels, cfg.detail) if cfg.detail else ()
        self.e_spec = {"name": "conv_e", "kwargs": dict(z_dim=b.z_dim, c_dim=b.c_dim, resolution=b.resolution,
                                                         chans=tuple(cfg.chans), hidden=cfg.hidden, detail=detail)}
        self.E = build(self.e_spec).to(run.device)
        if cfg.init_from:  # fine-tuning (a new loss weight, a G1 with a condition added) from an earlier encoder
            warm_start(cfg.init_from, {"e": (self.E, self.e_spec, True)}, log=print if run.is_main else (lambda *_: None))
        self.E_t = run.wrap(self.E)
        self.optim = cfg.optim
        self.phases = [Phase("E", self.E, cfg.optim.adam(self.E.parameters()), self.loss, "L_E")]
        self.modules = {"E": self.E}
        self.data = TensorData(images, run.device)
        self.plot_keys = ["L_E", "L_rec", "L_feat", "L_z", "L_c", "L_detail", "L_r"]
        rng = np.random.default_rng(4321)  # the sample grid's fixed photos and samples
        self.fixed = self._inputs(rng, torch.from_numpy(rng.choice(len(images), 4, replace=False)), 4)[0]

    def _inputs(self, rng: np.random.Generator, idx: torch.Tensor, n_syn: int, flip=None):
        b = self.b
        z = torch.from_numpy(sample_z(n_syn, b.z_dim, rng)).to(self.run.device)
        c = torch.from_numpy(self.schema.sample(n_syn, rng)).to(self.run.device)
        with torch.no_grad():
            x_syn = self.G1(z, c)
        x_real, c_real = self.data.get(idx, flip)
        return torch.cat([x_syn, x_real]), z, torch.cat([c, c_real])

    def batch(self, step: int) -> dict:
        run, cfg = self.run, self.cfg
        rng = run.numpy_rng(step)
        n = run.cfg.batch
        n_real = int(round(n * cfg.loss.p_real))
        idx = run.batch_indices(len(self.data), step)[:n_real]
        flip = (torch.rand(len(idx), generator=run.generator(step), device=run.device) < 0.5) \
            if cfg.data.flip else None
        x, z, c = self._inputs(rng, idx, n - len(idx), flip)
        return {"x": x, "z": z, "c": c, "n_syn": n - len(idx)}

    def loss(self, b: dict, step: int) -> dict:
        return encoder_loss_terms(self.E_t, self.G1, self.D, self.groups_t, b["x"], b["z"], b["c"], b["n_syn"],
                                  self.loss_groups, self.cfg.loss, self.G1d)

    def sample(self, step: int) -> None:
        x = self.fixed
        self.E.eval()
        with torch.no_grad():
            z_t, c_t, *r = self.E(x)
            z, c = torch.tanh(z_t), group_softmax(c_t, self.groups_t)
            recs = [self.G1(z, c)] + ([self.G1d(z, c, r[0])] if r else [])
        self.E.train()
        # picture | (z, c)'s reconstruction [| with the detail], 4 samples then 4 photos
        rows = torch.stack([x, *recs], 1).flatten(0, 1)
        self.run.save_grid(step, rows.float().cpu().numpy(), nrow=2 * (1 + len(recs)))

    def export(self, step: int) -> None:
        write_bundle(self.run, self.cfg, self.b, self.E, self.e_spec, step)


def write_bundle(run: Run, cfg: EncoderConfig, b: bundle_mod.Bundle, E, e_spec: dict, step: int):
    """The input bundle's networks plus `e`, in <run>/bundle (exported anew: no graphs copied)."""
    if not run.is_main:
        return None
    path = run.out / "bundle"
    path.mkdir(parents=True, exist_ok=True)
    nets = {}
    for key, net in b.info.networks.items():
        if key != "e":
            shutil.copyfile(b.file(key), path / net.weights)
            nets[key] = net
    nets["e"] = save_module(path, "e", E.eval(), e_spec)
    E.train()
    training = replace(b.info.training, encoder_step=step, encoder_config_digest=run.digest)
    meta = replace(b.info.without_graphs(), name=cfg.name or b.name, networks=nets, training=training)
    return bundle_mod.write_meta(path, meta)


def fit(cfg: EncoderConfig, images: ImageSet | None = None, stop_at: int | None = None) -> Run:
    b = bundle_mod.read(cfg.bundle)
    if cfg.data.resolution != b.resolution:
        raise UsageError(f"the bundle is {b.resolution}px, the data {cfg.data.resolution}px")
    run = Run(cfg.run, cfg.to_dict())
    torch.manual_seed(cfg.run.seed)
    if images is None:
        schema = Schema.from_dict(b.meta["schema"])
        images = derive_labels(load_dataset(cfg.data, schema, progress=run.is_main and run.cfg.progress), schema)
        if run.is_main:
            print(f"data: {images.summary()}", flush=True)
    train_loop(run, EncoderStage(cfg, run, images, b), stop_at)
    return run


def train(cfg: EncoderConfig, images: ImageSet | None = None, stop_at: int | None = None):
    run = fit(cfg, images, stop_at)
    return bundle_mod.read(run.out / "bundle") if run.is_main else None
