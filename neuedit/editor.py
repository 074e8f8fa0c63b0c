"""The baseline one-stage editor: latent optimisation over a stage-one generator (iGAN-style).

Steps are taken on `z~ = arctanh(z)` and `c~ = logit(c)` (docs/method.md §3), so `z` stays in
(-1, 1) and `c` in (0, 1). `latent_step` is a pure function of tensors: the PyTorch editor
calls it, and the ONNX export traces exactly it, so both follow the same trajectory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .losses import edit_distance
from .state import EditConfig, EditState, sample_z  # noqa: F401  (EditConfig re-exported)


def latent_step(G, z_t: torch.Tensor, c_t: torch.Tensor, sketch: torch.Tensor, mask: torch.Tensor,
                lr: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: torch.Tensor,
                adam: torch.Tensor, z_anchor: torch.Tensor, anchor: torch.Tensor, edit_c: torch.Tensor,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
    """One optimisation step, batched and traceable.

    z_t [N, Z], c_t [N, C]: the unconstrained state; sketch [N, 3, R, R], mask [N, 1, R, R];
    lr, t, adam (0/1), anchor, edit_c (0/1): scalars [] float; m, v [N, Z + C] Adam moments;
    z_anchor [N, Z]: z~ to pull toward with weight `anchor`.
    Returns (z_t', c_t', image [N, 3, R, R] and dist [N] at the *input* state, m', v', t').
    """
    with torch.enable_grad():
        z_t = z_t.detach().requires_grad_(True)
        c_t = c_t.detach().requires_grad_(True)
        image = G(torch.tanh(z_t), torch.sigmoid(c_t))
        dist = edit_distance(image, sketch, mask)
        loss = dist + anchor * ((z_t - z_anchor) ** 2).mean(1)
        gz, gc = torch.autograd.grad(loss.sum(), [z_t, c_t])
    g = torch.cat([gz, gc * edit_c], 1)
    t1 = t + 1.0
    m1 = beta1 * m + (1 - beta1) * g
    v1 = beta2 * v + (1 - beta2) * g * g
    adam_upd = (m1 / (1 - beta1 ** t1)) / (torch.sqrt(v1 / (1 - beta2 ** t1)) + eps)
    upd = adam * adam_upd + (1 - adam) * g
    x1 = torch.cat([z_t, c_t], 1).detach() - lr * upd
    Z = z_t.shape[1]
    keep = 1 - adam  # gd leaves the moments untouched
    return (x1[:, :Z], x1[:, Z:], image.detach(), dist.detach(),
            adam * m1 + keep * m, adam * v1 + keep * v, adam * t1 + keep * t)


@dataclass
class StepResult:
    state: EditState          # the new state
    image: np.ndarray         # [N, 3, R, R] float32 in [-1, 1], of the new state
    dist: np.ndarray          # [N] Dist of `image`
    trace: np.ndarray         # [steps + 1, N] Dist before each step and after the last
    frames: list | None = None  # [N, 3, R, R] images before each step, when asked for


class LatentEditor:
    """Latent optimisation over a stage-one generator `G(z, c)` (eval mode, frozen)."""

    def __init__(self, G, schema=None, device="cpu"):
        self.G = G.eval().requires_grad_(False).to(device)
        self.schema, self.device = schema, device
        self.z_dim, self.c_dim = G.z_dim, G.c_dim

    def _t(self, a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, np.float32), device=self.device)

    @torch.no_grad()
    def render(self, state: EditState) -> np.ndarray:
        return self.G(self._t(state.z), self._t(state.c)).cpu().numpy()

    def edit(self, state: EditState, sketch: np.ndarray, mask: np.ndarray, cfg: EditConfig = EditConfig(),
             frames: bool = False) -> StepResult:
        """`cfg.steps` steps from `state` toward the sketch [N or 1, 3, R, R] / mask [N or 1, 1, R, R].

        One step with steps=1 is the report's interactive "submit"; Adam moments carry over
        in the returned state so successive calls continue one optimisation.
        """
        state.validate(self.z_dim, self.c_dim)
        n = len(state)
        sk = self._t(sketch).expand(n, -1, -1, -1) if np.ndim(sketch) == 4 else self._t(sketch)[None].expand(n, -1, -1, -1)
        mk = self._t(mask).expand(n, -1, -1, -1) if np.ndim(mask) == 4 else self._t(mask)[None].expand(n, -1, -1, -1)
        adam = cfg.optimizer == "adam"
        z_t, c_t = self._t(state.z_tilde()), self._t(state.c_tilde())
        width = self.z_dim + self.c_dim
        if adam and state.m is not None:
            m, v, t = self._t(state.m), self._t(state.v), float(state.t)
        else:
            m, v, t = torch.zeros(n, width, device=self.device), torch.zeros(n, width, device=self.device), 0.0
        scal = lambda x: torch.tensor(float(x), device=self.device)  # noqa: E731
        lr, ad, anc, ec = scal(cfg.step_size), scal(adam), scal(cfg.anchor), scal(cfg.edit_c)
        z_anchor = z_t.clone()
        t_t = scal(t)
        trace, imgs = [], []
        for _ in range(cfg.steps):
            z_t, c_t, image, d, m, v, t_t = latent_step(self.G, z_t, c_t, sk, mk, lr, m, v, t_t, ad, z_anchor,
                                                        anc, ec, cfg.beta1, cfg.beta2, cfg.eps)
            trace.append(d.cpu().numpy())
            if frames:
                imgs.append(image.cpu().numpy())
        new = EditState.from_tilde(z_t.cpu().numpy(), c_t.cpu().numpy(),
                                   m.cpu().numpy() if adam else None, v.cpu().numpy() if adam else None,
                                   int(round(float(t_t))) if adam else 0)
        if cfg.project_c and self.schema is not None and self.c_dim:
            new.c = self.schema.project(new.c)
        with torch.no_grad():
            image = self.G(self._t(new.z), self._t(new.c))
            d = edit_distance(image, sk, mk).cpu().numpy()
        trace.append(d)
        if frames:
            imgs.append(image.cpu().numpy())
        return StepResult(new, image.cpu().numpy(), d, np.stack(trace), imgs if frames else None)

    def edit_restarts(self, state: EditState, sketch, mask, cfg: EditConfig, rng: np.random.Generator,
                      frames: bool = False) -> StepResult:
        """Batch mode with `cfg.restarts` starts: the given state plus random z's (same c); keeps
        the start whose final Dist, averaged over the batch, is lowest."""
        best = self.edit(state, sketch, mask, cfg, frames)
        for _ in range(cfg.restarts - 1):
            alt = EditState(sample_z(len(state), self.z_dim, rng), state.c.copy())
            r = self.edit(alt, sketch, mask, cfg, frames)
            if r.dist.mean() < best.dist.mean():
                best = r
        return best
