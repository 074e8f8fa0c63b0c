"""Stage one: the conditional generator, trained with Jin et al. 2017's recipe (DRAGAN + ACGAN) or the
CPU recipe (hinge + spectral norm + DiffAugment); docs/method.md §1. The loop, the run folder
and the adversarial losses are `neuedit.training`'s; this module holds what is stage one's:
its config, networks, batches, serving statistics, sample grids and bundle."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from neuedit.nn.weights import save_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.nn import presets
from neuedit.data.datasets import DataConfig, ImageSet, load_dataset
from neuedit.errors import UsageError
from neuedit.nn.nets import build
from neuedit.runtime.schema import Schema
from neuedit.synth.colour import derive_labels, palette_lab
from neuedit.training import (LossConfig, OptimConfig, Phase, Run, RunConfig, Stage, TensorData, d_loss_terms,
                              ema_update, g_loss_terms, train_loop, unwrap, warm_start)


@dataclass(frozen=True)
class Stage1Config:
    data: DataConfig             # images (and labels) to train on
    run: RunConfig               # output folder, iterations, batch, seed, logging intervals
    preset: str = "demo"         # architecture preset (neuedit.nn.presets): tiny, demo, cpu64, report128
    schema: str = "anime_faces"  # built-in schema name or a JSON file
    z_dim: int = 128             # latent size
    c_sampling: str = "uniform"  # fake c: "uniform" (Jin et al. 2017) or "empirical" (the data's frequencies)
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
    """The 16 (z, c) of every sample grid (docs/method.md §1): one c per row of 4 when labelled."""
    rng = np.random.default_rng(seed)
    from neuedit.runtime.state import sample_z
    z = sample_z(n, z_dim, rng)
    c = np.repeat(schema.sample(n // 4, rng), 4, axis=0) if schema.c_dim else np.zeros((n, 0), np.float32)
    return torch.from_numpy(z), torch.from_numpy(c)


def sample_batch(run: Run, data: TensorData, schema: Schema, cfg: Stage1Config, step: int, freqs) -> dict:
    """One step's inputs: real images x_real [N, 3, R, R] and labels c_real [N, C], sampled z [N, Z]
    and c_fake [N, C], DRAGAN's noise alpha (x_real's shape) and the augmentation's generator."""
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
    aug_g = run.generator(step + (1 << 40))  # the augmentation's own stream: a pure function of the step
    return {"x_real": x_real, "c_real": c_real, "z": z, "c_fake": c_fake, "alpha": alpha, "aug_g": aug_g}


def write_bundle(run: Run, cfg: Stage1Config, schema: Schema, G_serving, D, g_spec, d_spec, step: int):
    """`G_serving`: the EMA generator with serving statistics (`serving_generator`)."""
    if not run.is_main:
        return None
    path = run.out / "bundle"
    nets = {"g1": save_module(path, "g1", G_serving, g_spec),
            "d": save_module(path, "d", unwrap(D), d_spec)}
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
    from neuedit.runtime.state import sample_z
    rng = np.random.default_rng(2024)
    device = next(G_ema.parameters()).device

    def inputs(_):
        z, c = sample_z(batch, z_dim, rng), schema.sample(batch, rng)
        return torch.from_numpy(z).to(device), torch.from_numpy(c).to(device)
    return standing_stats(copy.deepcopy(G_ema), inputs)


def standing_stats(G: torch.nn.Module, sample_inputs, batches: int = 32) -> torch.nn.Module:
    """Recompute G's BatchNorm statistics as the mean over `batches` forward passes of
    `sample_inputs(i) -> args` (standing statistics, as BigGAN does), in place; returns G in eval mode.

    Why: the running statistics a training run ends with are an average of recent *training*
    batches (and an EMA generator only copies G's); an editor samples z from a truncated prior
    (|z| < 1, `neuedit.runtime.state.sample_z`), whose activations are smaller. Statistics measured on
    the serving prior give sharp, correctly coloured samples (see docs/method.md §1)."""
    bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return G.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes below
    G.train()
    with torch.no_grad():
        for i in range(batches):
            G(*sample_inputs(i))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return G.eval()


def load_training_data(cfg: Stage1Config, schema: Schema, run: Run) -> tuple[ImageSet, np.ndarray | None]:
    images = load_dataset(cfg.data, schema, progress=run.is_main and run.cfg.progress)
    images = derive_labels(images, schema, cfg.data.recolour, cfg.run.seed)  # a colour condition from the pixels
    if run.is_main:
        print(f"data: {images.summary()}", flush=True)
    freqs = schema.frequencies(images.c) if cfg.c_sampling == "empirical" else None
    return images, freqs


# ---- the stage -------------------------------------------------------------------------------
class Stage1(Stage):
    """Stage one for `neuedit.training.train_loop`: a D phase, then a G phase, then G's EMA."""

    plot_keys = ["L_D", "L_G", "L_adv_D", "L_adv_G", "L_cls_D", "L_cls_G", "L_gp", "L_colour"]

    def __init__(self, cfg: Stage1Config, run: Run, images: ImageSet, freqs):
        self.cfg, self.run, self.freqs = cfg, run, freqs
        self.name = f"stage1 {cfg.name or run.out.name}"
        self.schema = Schema.load(cfg.schema)
        # a colour condition from the pixels is sampled as the photos have it (mostly black, grey, brown),
        # not uniformly as it is trained: the bundle's samples then look like the photos
        self.serve_schema = self.schema.with_prior(images.c[:len(images) - images.copies]) if self.schema.derive \
            else self.schema
        self.palette_lab = torch.from_numpy(palette_lab()).to(run.device) if self.schema.derive == "object_colour" \
            else None
        self.data = TensorData(images, run.device)
        self.G, self.D, self.G_ema, self.g_spec, self.d_spec = build_networks(cfg, self.schema.c_dim, run.device)
        self.optim = o = cfg.optim
        self.modules = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        self.G_t, self.D_t = run.wrap(self.G), run.wrap(self.D)
        self.groups = [(s, g.exclusive) for g, s in self.schema.slices()]
        self.phases = [Phase("D", self.D, o.adam(self.D.parameters()), self.d_phase, "L_D"),
                       Phase("G", self.G, o.adam(self.G.parameters()), self.g_phase, "L_G")]
        self.z_fix, self.c_fix = (t.to(run.device) for t in fixed_samples(self.schema, cfg.z_dim))
        self._served: dict = {}

    def batch(self, step: int) -> dict:
        return sample_batch(self.run, self.data, self.schema, self.cfg, step, self.freqs)

    def d_phase(self, b: dict, step: int) -> dict:
        with torch.no_grad():
            x_fake = self.G(b["z"], b["c_fake"])
        return d_loss_terms(self.D_t, b["x_real"], x_fake, b["c_real"], b["c_fake"], b["alpha"], self.cfg.loss,
                            b["aug_g"], self.groups)

    def g_phase(self, b: dict, step: int) -> dict:
        # D frozen (by the loop) and unwrapped, so only G's gradients are synchronised
        return g_loss_terms(self.G_t, self.D, b["z"], b["c_fake"], self.cfg.loss, b["aug_g"], self.groups,
                            self.palette_lab)

    def end_step(self, step: int) -> None:
        # ramped decay: early EMA weights are not dominated by the random initialisation
        ema_update(self.G_ema, self.G, min(self.optim.ema, (1 + step) / (10 + step)))

    def warm_start(self) -> None:
        if self.cfg.init_from:
            warm_start(self.cfg.init_from, {"g1": (self.G, self.g_spec, True), "d": (self.D, self.d_spec, False)},
                       log=print if self.run.is_main else (lambda *_: None))
            self.G_ema.load_state_dict(self.G.state_dict())

    def serving(self, step: int):
        """The serving copy of G_ema at `step`, measured once for the grid and the bundle."""
        if step not in self._served:
            # statistics over every colour an edit may ask for (the training sampler), not the prior's few
            self._served = {step: serving_generator(self.G_ema, self.schema, self.cfg.z_dim)}
        return self._served[step]

    def sample(self, step: int) -> None:
        with torch.no_grad():  # what the bundle will draw
            self.run.save_grid(step, self.serving(step)(self.z_fix, self.c_fix).float().cpu().numpy(), nrow=4)

    def export(self, step: int) -> None:
        write_bundle(self.run, self.cfg, self.serve_schema, self.serving(step), self.D, self.g_spec, self.d_spec, step)


def train(cfg: Stage1Config, images: ImageSet | None = None, stop_at: int | None = None) -> bundle_mod.Bundle | None:
    """Train (or resume, when the run folder has a checkpoint) and return the bundle (rank 0).

    `stop_at` ends the process early after checkpointing that step, as a kill would: a later
    call resumes on the same schedule (used for time-boxed runs and the resume test)."""
    run, _ = fit(cfg, images, stop_at)
    return bundle_mod.read(run.out / "bundle") if run.is_main else None


def fit(cfg: Stage1Config, images: ImageSet | None = None, stop_at: int | None = None) -> tuple[Run, dict]:
    """The training run; returns the run and its modules {"G", "D", "G_ema"}."""
    schema = Schema.load(cfg.schema)
    run = Run(cfg.run, cfg.to_dict())
    torch.manual_seed(cfg.run.seed)
    if images is None:
        images, freqs = load_training_data(cfg, schema, run)
    else:
        freqs = schema.frequencies(images.c) if cfg.c_sampling == "empirical" else None
    stage = Stage1(cfg, run, images, freqs)
    train_loop(run, stage, stop_at)
    return run, stage.modules
