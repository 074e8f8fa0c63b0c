"""Stage one: the conditional generator, trained with the report recipe (DRAGAN + ACGAN) or the
CPU recipe (hinge + spectral norm + DiffAugment); docs/method.md §1."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from neuedit import bundle as bundle_mod
from neuedit import presets
from neuedit.data import DataConfig, ImageSet, load_dataset
from neuedit.augment import diff_augment, parse_policy
from neuedit.losses import ADV_LOSSES, cls_loss, dragan_perturb, group_cls_loss, gradient_penalty, l2_reg, r1_penalty
from neuedit.nets import build
from neuedit.schema import Schema

from .runner import Run, RunConfig, drive, ema_update, lr_at, standing_stats, warm_start
from neuedit.errors import UsageError


@dataclass(frozen=True)
class LossConfig:
    """Defaults are the report's recipe (DRAGAN + ACGAN); the CPU demos use hinge + DiffAugment."""
    adv: str = "logistic"        # adversarial loss: "logistic" (the report's, non-saturating G) or "hinge"
    penalty: str = "dragan"      # D penalty: "dragan" (the report's), "r1" on real images, or "none"
    l_adv: float = 2.0           # weight of the adversarial terms (report: 2)
    l_gp: float = 1.0            # weight of the penalty (report: 1 for DRAGAN; R1 uses gamma / 2 = l_gp)
    l_reg: float = 1e-4          # weight of the L2 weight regulariser (report: 1e-4)
    l_cls: float = 1.0           # weight of the ACGAN condition terms in L(D) and L(G)
    cls_on_fake: bool = True     # also train D's condition head on (G(z,c), c), as the report does
    cond: str = "acgan"          # conditioning in D: "acgan" (classifier head), or "projection" + ACGAN
    cls: str = "bce"             # condition loss: "bce" per attribute, averaged (the report's), or
                                 # "group_ce": cross-entropy per exclusive group, summed over groups
    augment: str = ""            # DiffAugment policy applied to all D inputs, e.g. "color,translation,cutout"

    def __post_init__(self):
        if self.adv not in ADV_LOSSES:
            raise UsageError(f"adv loss must be one of {', '.join(ADV_LOSSES)}, not {self.adv!r}")
        if self.penalty not in ("dragan", "r1", "none"):
            raise UsageError(f"penalty must be dragan, r1 or none, not {self.penalty!r}")
        if self.cls not in ("bce", "group_ce"):
            raise UsageError(f"cls must be bce or group_ce, not {self.cls!r}")
        if self.cond not in ("acgan", "projection"):
            raise UsageError(f"cond must be acgan or projection, not {self.cond!r}")
        parse_policy(self.augment)


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
    init_from: str = ""          # bundle whose G (and D, when it has one) start the run (fresh optimisers)

    def __post_init__(self):
        presets.get(self.preset)
        if self.c_sampling not in ("uniform", "empirical"):
            raise UsageError("c_sampling must be 'uniform' or 'empirical'")
        if self.data.resolution != presets.get(self.preset).resolution:
            raise UsageError(f"data resolution {self.data.resolution} != preset {self.preset}'s "
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
                 alpha: torch.Tensor, cfg: LossConfig, g: torch.Generator | None = None,
                 groups: list | None = None) -> dict:
    """L(D) and its terms (both stages use it). Real, fake and (for DRAGAN) perturbed images go
    through D in ONE forward, which keeps DDP to one forward per backward; D has no BatchNorm,
    so this equals separate calls. x_real, x_fake [N, 3, R, R] (x_fake detached); c_* [N, C];
    `alpha` is DRAGAN's noise; `g` draws the augmentation (needed when cfg.augment is set);
    `groups` [(slice, exclusive)] are the schema's groups (needed when cfg.cls is "group_ce")."""
    n = len(x_real)
    d_adv, _ = ADV_LOSSES[cfg.adv]
    x_real = x_real.detach().requires_grad_(cfg.penalty == "r1")
    parts, cs = [x_real, x_fake], [c_real, c_fake]
    if cfg.penalty == "dragan":
        x_hat = dragan_perturb(x_real.detach(), alpha).detach().requires_grad_(True)
        parts.append(x_hat)
        cs.append(c_real)
    x = torch.cat(parts)
    if cfg.augment:
        x = diff_augment(x, cfg.augment, g)
    logit, c_logits = D(x, torch.cat(cs) if cfg.cond == "projection" else None)
    real_logit, fake_logit = logit[:n], logit[n:2 * n]
    L_adv = d_adv(real_logit, fake_logit)
    cls = _cls_fn(cfg, groups)
    L_cls = cls(c_logits[:n], c_real)
    if cfg.cls_on_fake:
        L_cls = L_cls + cls(c_logits[n:2 * n], c_fake)
    if cfg.penalty == "dragan":
        L_gp = gradient_penalty(logit[2 * n:], x_hat)
    elif cfg.penalty == "r1":
        L_gp = r1_penalty(real_logit, x_real)
    else:
        L_gp = logit.new_zeros(())
    L_reg = l2_reg(D.parameters()) if cfg.l_reg else logit.new_zeros(())
    L_D = cfg.l_cls * L_cls + cfg.l_adv * L_adv + cfg.l_gp * L_gp + cfg.l_reg * L_reg
    return {"L_D": L_D, "L_adv_D": L_adv, "L_cls_D": L_cls, "L_gp": L_gp}


def _cls_fn(cfg: LossConfig, groups: list | None):
    if cfg.cls == "group_ce":
        if groups is None:
            raise UsageError("cls 'group_ce' needs the schema's groups")
        return lambda logits, c: group_cls_loss(logits, c, groups)
    return cls_loss


def g_loss_terms(G, D_eval, batch: Batch, cfg: LossConfig, g: torch.Generator | None = None,
                 groups: list | None = None) -> dict:
    """L(G) = l_adv L_adv(G) + l_cls L_cls(G) + l_reg L2(G). `D_eval` is D without any DDP wrapper;
    G's samples get the same augmentation D was trained on."""
    _, g_adv = ADV_LOSSES[cfg.adv]
    x_fake = G(batch.z, batch.c_fake)
    x_d = diff_augment(x_fake, cfg.augment, g) if cfg.augment else x_fake
    fake_logit, c_logits = D_eval(x_d, batch.c_fake if cfg.cond == "projection" else None)
    L_adv = g_adv(fake_logit)
    L_cls = _cls_fn(cfg, groups)(c_logits, batch.c_fake)
    L_reg = l2_reg(G.parameters()) if cfg.l_reg else fake_logit.new_zeros(())
    L_G = cfg.l_adv * L_adv + cfg.l_cls * L_cls + cfg.l_reg * L_reg
    return {"L_G": L_G, "L_adv_G": L_adv, "L_cls_G": L_cls}


# ---- building blocks --------------------------------------------------------------------------
def build_networks(cfg: Stage1Config, c_dim: int, device):
    p = presets.get(cfg.preset)
    g_spec, d_spec = presets.g_spec(p, cfg.z_dim, c_dim), presets.d_spec(p, c_dim)
    if cfg.loss.cond == "projection":
        if d_spec["name"] != "sn_d":
            raise UsageError(f"projection conditioning needs the sn_d discriminator; preset {cfg.preset} uses {d_spec['name']}")
        d_spec["kwargs"]["projection"] = True
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


def write_bundle(run: Run, cfg: Stage1Config, schema: Schema, G_serving, D, g_spec, d_spec, step: int):
    """`G_serving`: the EMA generator with serving statistics (`serving_generator`)."""
    if not run.is_main:
        return None
    path = run.out / "bundle"
    nets = {"g1": bundle_mod.save_module(path, "g1", G_serving, g_spec),
            "d": bundle_mod.save_module(path, "d", _unwrap(D), d_spec)}
    training = bundle_mod.Provenance(stage1_step=step, config_digest=run.digest, data=cfg.data.root,
                                     stage1_config=cfg.to_dict(), threads=torch.get_num_threads())
    name = cfg.name or run.out.name
    meta = bundle_mod.BundleMeta(kind="stage1", name=name, domain=name, z_dim=cfg.z_dim, c_dim=schema.c_dim,
                                 resolution=cfg.data.resolution, schema=schema.to_dict(), preset=cfg.preset,
                                 training=training, networks=nets)
    return bundle_mod.write_meta(path, meta)


def serving_generator(G_ema, schema: Schema, z_dim: int, batch: int = 64):
    """A copy of the EMA generator with standing BatchNorm statistics measured on the prior an
    editor samples from (truncated z, the schema's c sampler), fixed seed; the training copy is
    untouched, so resume stays exact."""
    from neuedit.state import sample_z
    rng = np.random.default_rng(2024)
    device = next(G_ema.parameters()).device

    def inputs(_):
        z, c = sample_z(batch, z_dim, rng), schema.sample(batch, rng)
        return torch.from_numpy(z).to(device), torch.from_numpy(c).to(device)
    return standing_stats(copy.deepcopy(G_ema), inputs)


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
    if start == 0 and cfg.init_from:
        warm_start(cfg.init_from, {"g1": (G, g_spec, True), "d": (D, d_spec, False)},
                   log=print if run.is_main else (lambda *_: None))
        G_ema.load_state_dict(G.state_dict())
    run.truncate_log(start)
    G_t, D_t = run.wrap(G), run.wrap(D)
    z_fix, c_fix = (t.to(run.device) for t in fixed_samples(schema, cfg.z_dim))
    groups = [(s, g.exclusive) for g, s in schema.slices()]
    total = cfg.run.iterations

    def step_fn(step: int) -> dict:
        batch, alpha = sample_batch(run, data, schema, cfg, step, freqs)
        aug_g = run.generator(step + (1 << 40))  # the augmentation's own stream: a pure function of the step
        D.requires_grad_(True)
        with run.autocast():
            with torch.no_grad():
                x_fake = G(batch.z, batch.c_fake)
            d_terms = d_loss_terms(D_t, batch.x_real, x_fake, batch.c_real, batch.c_fake, alpha, cfg.loss, aug_g, groups)
        opt_D.zero_grad(set_to_none=True)
        d_terms["L_D"].backward()
        opt_D.step()
        # G phase: D frozen and unwrapped, so only G's gradients are synchronised
        D.requires_grad_(False)
        with run.autocast():
            g_terms = g_loss_terms(G_t, D, batch, cfg.loss, aug_g, groups)
        opt_G.zero_grad(set_to_none=True)
        g_terms["L_G"].backward()
        opt_G.step()
        # ramped decay: early EMA weights are not dominated by the random initialisation
        ema_update(G_ema, G, min(o.ema, (1 + step) / (10 + step)))
        return {k: v.item() for k, v in {**d_terms, **g_terms}.items()}

    served: dict = {}

    def serving(step: int):
        """The serving copy of G_ema at `step`, measured once for the grid and the bundle."""
        if step not in served:
            served.clear()
            served[step] = serving_generator(G_ema, schema, cfg.z_dim)
        return served[step]

    def on_sample(step: int) -> None:
        if not run.is_main:
            return
        with torch.no_grad():  # what the bundle will draw
            run.save_grid(step, serving(step)(z_fix, c_fix).float().cpu().numpy(), nrow=4)

    def on_checkpoint(step: int) -> None:
        run.save_checkpoint(step, modules, optims)
        if run.is_main:
            write_bundle(run, cfg, schema, serving(step), D, g_spec, d_spec, step)

    drive(run, start, total, step_fn, optims,
          lambda step: lr_at(step, o.lr, o.lr_end, int(o.decay_start * total), total),
          on_sample, on_checkpoint, ["L_D", "L_G", "L_adv_D", "L_adv_G", "L_cls_D", "L_cls_G", "L_gp"],
          stop_at, f"stage1 {cfg.name or run.out.name}")
    return run, modules

