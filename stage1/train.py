"""Stage one: the conditional generator trained with DRAGAN + ACGAN (DESIGN.md §1)."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from neuedit import bundle as bundle_mod
from neuedit import presets
from neuedit.data import DataConfig, ImageSet, load_dataset
from neuedit.losses import cls_loss, d_adv_loss, dragan_perturb, g_adv_loss, gradient_penalty, l2_reg
from neuedit.nets import build
from neuedit.schema import Schema

from .runner import Run, RunConfig, drive, ema_update, lr_at


@dataclass(frozen=True)
class LossConfig:
    l_adv: float = 2.0           # weight of the adversarial terms (report: 2)
    l_gp: float = 1.0            # weight of the DRAGAN gradient penalty (report: 1)
    l_reg: float = 1e-4          # weight of the L2 weight regulariser (report: 1e-4)
    cls_on_fake: bool = True     # also train D's condition head on (G(z,c), c), as the report does


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4             # Adam learning rate for G and D (report)
    lr_end: float = 1e-5         # learning rate reached at the last iteration (report)
    decay_start: float = 0.5     # fraction of the run after which lr decays linearly (report: 50k of 100k)
    beta1: float = 0.5           # Adam beta1
    beta2: float = 0.99          # Adam beta2
    ema: float = 0.999           # EMA decay of G's weights for the released bundle


@dataclass(frozen=True)
class Stage1Config:
    data: DataConfig             # images (and labels) to train on
    run: RunConfig               # output folder, iterations, batch, seed, logging intervals
    preset: str = "demo"         # architecture preset: tiny, demo, report128
    schema: str = "anime_faces"  # built-in schema name or a JSON file
    z_dim: int = 128             # latent size
    c_sampling: str = "uniform"  # fake c: "uniform" (the report) or "empirical" (the data's frequencies)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    name: str = ""               # model name recorded in the bundle (default: data folder name)

    def __post_init__(self):
        presets.get(self.preset)
        if self.c_sampling not in ("uniform", "empirical"):
            raise ValueError("c_sampling must be 'uniform' or 'empirical'")
        if self.data.resolution != presets.get(self.preset).resolution:
            raise ValueError(f"data resolution {self.data.resolution} != preset {self.preset}'s "
                             f"{presets.get(self.preset).resolution}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Batch:
    """Real images [N, 3, R, R] in [-1, 1] and their labels c [N, C], plus sampled (z, c_fake)."""
    x_real: torch.Tensor
    c_real: torch.Tensor
    z: torch.Tensor
    c_fake: torch.Tensor


class TensorData:
    """An ImageSet held as one uint8 tensor on the training device; batches by index."""

    def __init__(self, images: ImageSet, device):
        self.images = torch.from_numpy(images.images).to(device)  # [N, H, W, 3] uint8
        self.c = torch.from_numpy(images.c).to(device)
        self.device = device

    def __len__(self):
        return len(self.images)

    def get(self, idx: torch.Tensor, flip: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(self.device)
        x = self.images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [N, 3, R, R]
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x, self.c[idx]


# ---- the two phases --------------------------------------------------------------------------
def d_loss_terms(D, x_real: torch.Tensor, x_fake: torch.Tensor, c_real: torch.Tensor, c_fake: torch.Tensor,
                 alpha: torch.Tensor, cfg: LossConfig) -> dict:
    """L(D) and its terms (both stages use it). Real, fake and perturbed images go through D in
    ONE forward (D has no BatchNorm, so this equals three calls), which keeps DDP to one
    forward per backward. x_real, x_fake [N, 3, R, R] (x_fake detached); c_* [N, C]."""
    x_hat = dragan_perturb(x_real, alpha).detach().requires_grad_(True)
    n = len(x_real)
    logit, c_logits = D(torch.cat([x_real, x_fake, x_hat]))
    real_logit, fake_logit, hat_logit = logit[:n], logit[n:2 * n], logit[2 * n:]
    L_adv = d_adv_loss(real_logit, fake_logit)
    L_cls = cls_loss(c_logits[:n], c_real)
    if cfg.cls_on_fake:
        L_cls = L_cls + cls_loss(c_logits[n:2 * n], c_fake)
    L_gp = gradient_penalty(hat_logit, x_hat)
    L_reg = l2_reg(D.parameters())
    L_D = L_cls + cfg.l_adv * L_adv + cfg.l_gp * L_gp + cfg.l_reg * L_reg
    return {"L_D": L_D, "L_adv_D": L_adv, "L_cls_D": L_cls, "L_gp": L_gp}


def g_loss_terms(G, D_eval, batch: Batch, cfg: LossConfig) -> dict:
    """L(G) = l_adv L_adv(G) + L_cls(G) + l_reg L2(G). `D_eval` is D without any DDP wrapper."""
    x_fake = G(batch.z, batch.c_fake)
    fake_logit, c_logits = D_eval(x_fake)
    L_adv = g_adv_loss(fake_logit)
    L_cls = cls_loss(c_logits, batch.c_fake)
    L_G = cfg.l_adv * L_adv + L_cls + cfg.l_reg * l2_reg(G.parameters())
    return {"L_G": L_G, "L_adv_G": L_adv, "L_cls_G": L_cls}


# ---- building blocks --------------------------------------------------------------------------
def build_networks(cfg: Stage1Config, c_dim: int, device):
    p = presets.get(cfg.preset)
    g_spec, d_spec = presets.g_spec(p, cfg.z_dim, c_dim), presets.d_spec(p, c_dim)
    G, D = build(g_spec).to(device), build(d_spec).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    return G, D, G_ema, g_spec, d_spec


def fixed_samples(schema: Schema, z_dim: int, n: int = 16, seed: int = 1234):
    """The 16 (z, c) of every sample grid (the report's Fig. 7): one c per row of 4 when labelled."""
    rng = np.random.default_rng(seed)
    from neuedit.state import sample_z
    z = sample_z(n, z_dim, rng)
    c = np.repeat(schema.sample(n // 4, rng), 4, axis=0) if schema.c_dim else np.zeros((n, 0), np.float32)
    return torch.from_numpy(z), torch.from_numpy(c)


def sample_batch(run: Run, data: TensorData, schema: Schema, cfg: Stage1Config, step: int, freqs) -> tuple[Batch, torch.Tensor]:
    g = run.generator(step)
    idx = run.batch_indices(len(data), step)
    n = len(idx)
    flip = (torch.rand(n, generator=g, device=run.device) < 0.5) if cfg.data.flip else None
    x_real, c_real = data.get(idx, flip)
    z = torch.randn(n, cfg.z_dim, generator=g, device=run.device)
    c_fake = torch.from_numpy(schema.sample(n, run.numpy_rng(step), freqs)).to(run.device)
    # DRAGAN perturbs every pixel (Kodali et al.: x + 0.5 * std(x) * U(0,1) of x's shape): the
    # penalty then smooths D in a neighbourhood of the data, not along one brightness direction
    alpha = torch.rand(x_real.shape, generator=g, device=run.device)
    return Batch(x_real, c_real, z, c_fake), alpha


def write_bundle(run: Run, cfg: Stage1Config, schema: Schema, G_ema, D, g_spec, d_spec, step: int):
    if not run.is_main:
        return None
    path = run.out / "bundle"
    meta = {"name": cfg.name or run.out.name, "kind": "stage1", "domain": cfg.name or run.out.name,
            "z_dim": cfg.z_dim, "c_dim": schema.c_dim, "resolution": cfg.data.resolution,
            "value_range": [-1, 1], "z_prior": "normal", "schema": schema.to_dict(), "preset": cfg.preset,
            "training": {"stage1_step": step, "config_digest": run.digest, "data": cfg.data.root}}
    bundle_mod.save_module(path, "g1", G_ema, g_spec, meta)
    bundle_mod.save_module(path, "d", _unwrap(D), d_spec, meta)
    return bundle_mod.write_meta(path, meta)


def _unwrap(m):
    return m.module if hasattr(m, "module") else m


def load_training_data(cfg: Stage1Config, schema: Schema, run: Run) -> tuple[ImageSet, np.ndarray | None]:
    images = load_dataset(cfg.data, schema, progress=run.is_main and run.cfg.progress)
    if run.is_main:
        print(f"data: {images.summary()}", flush=True)
    freqs = schema.frequencies(images.c) if cfg.c_sampling == "empirical" else None
    return images, freqs


# ---- the loop ---------------------------------------------------------------------------------
def train(cfg: Stage1Config, images: ImageSet | None = None, stop_at: int | None = None) -> bundle_mod.Bundle | None:
    """Train (or resume, when the run folder has a checkpoint) and return the bundle (rank 0).

    `stop_at` ends the process early after checkpointing that step, as a kill would: a later
    call resumes on the same schedule (used for time-boxed runs and the resume test)."""
    run, _ = fit(cfg, images, stop_at)
    return bundle_mod.read(run.out / "bundle") if run.is_main else None


def fit(cfg: Stage1Config, images: ImageSet | None = None, stop_at: int | None = None) -> tuple[Run, dict]:
    """The training loop; returns the run and its modules {"G", "D", "G_ema"}."""
    schema = Schema.load(cfg.schema)
    run = Run(cfg.run, cfg.to_dict())
    torch.manual_seed(cfg.run.seed)
    if images is None:
        images, freqs = load_training_data(cfg, schema, run)
    else:
        freqs = schema.frequencies(images.c) if cfg.c_sampling == "empirical" else None
    data = TensorData(images, run.device)
    G, D, G_ema, g_spec, d_spec = build_networks(cfg, schema.c_dim, run.device)
    o = cfg.optim
    opt_G = torch.optim.Adam(G.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
    modules, optims = {"G": G, "D": D, "G_ema": G_ema}, {"G": opt_G, "D": opt_D}
    start = run.load_checkpoint(modules, optims)
    run.truncate_log(start)
    G_t, D_t = run.wrap(G), run.wrap(D)
    z_fix, c_fix = (t.to(run.device) for t in fixed_samples(schema, cfg.z_dim))
    total = cfg.run.iterations

    def step_fn(step: int) -> dict:
        batch, alpha = sample_batch(run, data, schema, cfg, step, freqs)
        D.requires_grad_(True)
        with run.autocast():
            with torch.no_grad():
                x_fake = G(batch.z, batch.c_fake)
            d_terms = d_loss_terms(D_t, batch.x_real, x_fake, batch.c_real, batch.c_fake, alpha, cfg.loss)
        opt_D.zero_grad(set_to_none=True)
        d_terms["L_D"].backward()
        opt_D.step()
        # G phase: D frozen and unwrapped, so only G's gradients are synchronised
        D.requires_grad_(False)
        with run.autocast():
            g_terms = g_loss_terms(G_t, D, batch, cfg.loss)
        opt_G.zero_grad(set_to_none=True)
        g_terms["L_G"].backward()
        opt_G.step()
        # ramped decay: early EMA weights are not dominated by the random initialisation
        ema_update(G_ema, G, min(o.ema, (1 + step) / (10 + step)))
        return {k: v.item() for k, v in {**d_terms, **g_terms}.items()}

    def on_sample(step: int) -> None:
        with torch.no_grad():
            run.save_grid(step, G_ema(z_fix, c_fix).float().cpu().numpy(), nrow=4)

    def on_checkpoint(step: int) -> None:
        run.save_checkpoint(step, modules, optims)
        write_bundle(run, cfg, schema, G_ema, D, g_spec, d_spec, step)

    drive(run, start, total, step_fn, optims,
          lambda step: lr_at(step, o.lr, o.lr_end, int(o.decay_start * total), total),
          on_sample, on_checkpoint, ["L_D", "L_G", "L_adv_D", "L_adv_G", "L_cls_D", "L_cls_G", "L_gp"],
          stop_at, f"stage1 {cfg.name or run.out.name}")
    return run, modules

