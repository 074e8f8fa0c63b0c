"""The training loop both stages share (docs/method.md, "Training").

A stage is a small object (`Stage`): its networks (`modules`, checkpointed), its phases
(`Phase`: one optimiser, the module it trains, a loss over the step's batch), and hooks for
the step's batch, what follows the phases (EMA), sample grids and the bundle. The loop does
the rest: checkpoint resume or warm start, the learning-rate schedule, one pass over the
phases per step (only the phase's own module trainable), progress, CSV/TensorBoard rows,
grids and loss plots, atomic checkpoints with the bundle beside them, and an early stop
that behaves like a kill.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import torch

from neuedit.errors import UsageError

from neuedit.training.run import Run, unwrap


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4             # Adam learning rate (Jin et al. 2017)
    lr_end: float = 1e-5         # learning rate reached at the last iteration (Jin et al. 2017)
    decay_start: float = 0.5     # fraction of the run after which lr decays linearly (Jin et al. 2017: 50k of 100k)
    beta1: float = 0.5           # Adam beta1
    beta2: float = 0.99          # Adam beta2
    ema: float = 0.999           # EMA decay of G's weights for the released bundle (stage one)

    def adam(self, params) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=self.lr, betas=(self.beta1, self.beta2))


def lr_at(step: int, lr: float, lr_end: float, decay_start: int, iterations: int) -> float:
    """Constant `lr`, then linear decay to `lr_end` from `decay_start` to the last iteration (Jin et al. 2017)."""
    if step < decay_start or iterations <= decay_start:
        return lr
    frac = min(1.0, (step - decay_start) / max(1, iterations - decay_start))
    return lr + (lr_end - lr) * frac


@dataclass
class Phase:
    """One optimisation phase of a step: `loss(batch, step) -> terms`; `terms[total]` is
    back-propagated into `module` (the phase's network; every other phase's is frozen) and
    `opt` steps. `name` keys the optimiser in checkpoints."""
    name: str
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    loss: Callable[[dict, int], dict]
    total: str


class Stage:
    """What a stage gives the loop; the hooks' defaults do nothing."""
    name: str = "train"          # progress-bar label
    modules: dict                # name -> module: what a checkpoint holds (with the phases' optimisers)
    phases: list[Phase]
    optim: OptimConfig           # the learning-rate schedule
    plot_keys: list[str] = []    # log columns drawn in losses.png

    def batch(self, step: int) -> dict:
        """Everything the step's phases read (drawn from `run.generator(step)`, so resume is exact)."""
        return {}

    def warm_start(self) -> None:
        """Before step 0 of a new run (not on resume): e.g. weights from a bundle."""

    def end_step(self, step: int) -> None:
        """After the phases: e.g. the EMA of G."""

    def sample(self, step: int) -> None:
        """A sample grid (rank 0)."""

    def export(self, step: int) -> None:
        """The bundle beside the checkpoint (rank 0)."""


def train_loop(run: Run, stage: Stage, stop_at: int | None = None) -> int:
    """Train `stage` from its checkpoint (or step 0) to `run.cfg.iterations`; returns the
    step it started from. `stop_at` checkpoints that step and returns, as a kill would."""
    optimizers = {ph.name: ph.opt for ph in stage.phases}
    start = run.load_checkpoint(stage.modules, optimizers)
    if start == 0:
        stage.warm_start()
    run.truncate_log(start)
    total, o = run.cfg.iterations, stage.optim
    run.start_progress(start, total, stage.name)
    for step in range(start, total):
        lr = lr_at(step, o.lr, o.lr_end, int(o.decay_start * total), total)
        for opt in optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        scalars = _one_step(run, stage, step)
        done = step + 1
        run.tick(scalars)
        if done % run.cfg.log_every == 0 or done == total:
            run.log(done, {**scalars, "lr": lr})
        if done % run.cfg.sample_every == 0 or done == total:
            if run.is_main:
                stage.sample(done)
            run.plot_losses(stage.plot_keys)
        if done % run.cfg.ckpt_every == 0 or done == total or done == stop_at:
            run.save_checkpoint(done, stage.modules, optimizers)
            if run.is_main:
                stage.export(done)
        if done == stop_at:
            break
    run.close()
    return start


def _one_step(run: Run, stage: Stage, step: int) -> dict:
    batch = stage.batch(step)
    scalars = {}
    for ph in stage.phases:
        for other in stage.phases:
            unwrap(other.module).requires_grad_(other is ph)
        with run.autocast():
            terms = ph.loss(batch, step)
        ph.opt.zero_grad(set_to_none=True)
        terms[ph.total].backward()
        ph.opt.step()
        scalars.update({k: v.item() for k, v in terms.items()})
    stage.end_step(step)
    return scalars


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model for parameters; buffers (BN statistics) copied."""
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), unwrap(model).parameters()):
            pe.lerp_(p.detach(), 1.0 - beta)
        for be, b in zip(ema.buffers(), unwrap(model).buffers()):
            be.copy_(b)


# a condition's new input columns start this many times the spread of the bundle's weights: the ratio
# of condition to latent columns in the shipped anime G1, which learnt its condition from the start (at
# zero, Adam grew them by at most lr a step and z kept deciding the colour; at the size of a row's
# whole response to z, each colour drew one shoe)
GROWN_SCALE = 2.0


def warm_start(bundle_dir: str, targets: dict, log=print) -> list[str]:
    """Copy a bundle's weights into fresh networks before step 0 (`--init-from`): `targets` maps
    a bundle key ("g1", "d", "g2") to (module, spec) or (module, spec, required). Optimisers stay
    fresh. The architectures must match, or the run's network must *extend* the bundle's (same
    name, every bundle tensor present with its shape, e.g. D with a projection head added): the
    new tensors keep their initialisation. A 2-D weight may also take more inputs (a condition
    `c` added to G's input layer): the bundle's columns are copied, so an input of zeros there draws
    what the bundle drew, and the new columns start at GROWN_SCALE times the spread of the old
    weights, so a one-hot `c` is heard from the first step (docs/method.md, "A colour condition from
    the pixels"). Returns the keys loaded."""
    from safetensors.torch import load_file
    from neuedit.runtime import bundle as bundle_mod
    b = bundle_mod.read(bundle_dir)
    loaded = []
    for key, (module, spec, *req) in targets.items():
        net = b.info.networks.get(key)
        if net is None:
            if req and req[0]:
                raise UsageError(f"--init-from {b.path}: the bundle has no {key!r} network")
            continue
        if net.weights is None:
            raise UsageError(f"--init-from {b.path}: it holds no {key} weights (a serve-only bundle has none)")
        mismatch = UsageError(f"--init-from {b.path}: its {key} is {net.name} {net.kwargs}, this run builds "
                              f"{spec['name']} {json.loads(json.dumps(spec.get('kwargs')))}; use the same --preset and schema")
        if net.name != spec["name"]:
            raise mismatch
        state = load_file(str(b.file(key)), device=str(next(module.parameters()).device))
        own = unwrap(module).state_dict()
        if any(k not in own or not (own[k].shape == v.shape or _grown_input(own[k], v)) for k, v in state.items()):
            raise mismatch
        fresh = sorted(set(own) - set(state))
        for k, v in state.items():
            if own[k].shape != v.shape:  # a condition added to the input: see the docstring
                gen = torch.Generator().manual_seed(0)
                grown = torch.randn(own[k].shape, generator=gen).to(v) * (GROWN_SCALE * v.std())
                grown[..., :v.shape[-1]] = v
                state[k] = grown
                fresh.append(f"{k} (input {v.shape[-1]} -> {own[k].shape[-1]})")
        unwrap(module).load_state_dict(state, strict=False)
        loaded.append((key, fresh))
    log(f"initialised {', '.join(k + (f' (new: {len(f)} tensors)' if f else '') for k, f in loaded) or 'nothing'} "
        f"from {b.path}")
    return [k for k, _ in loaded]


def _grown_input(own: torch.Tensor, saved: torch.Tensor) -> bool:
    """A 2-D weight with the same outputs and more inputs than the bundle's."""
    return own.dim() == saved.dim() == 2 and own.shape[0] == saved.shape[0] and own.shape[1] > saved.shape[1]
