"""The baseline one-stage editor: latent optimisation over a stage-one generator (iGAN-style).

Steps are taken on `z~ = arctanh(z)` and `c~`, the logits of a softmax per exclusive group
(docs/method.md §3), so `z` stays in (-1, 1) and each group of `c` sums to at most 1.
`latent_step` is a pure function of tensors: the PyTorch editor backend calls it, and the ONNX
export traces exactly it, so both follow the same trajectory;
the loop around it is `neuedit.runtime.editing`, shared with the ONNX engine.
"""
from __future__ import annotations

import numpy as np
import torch

from neuedit.runtime import editing
from neuedit.runtime.editing import StepResult  # noqa: F401  (re-exported)
from neuedit.runtime.sketch import dist as edit_distance
from neuedit.runtime.state import LOGIT_MAX, EditConfig, EditState, group_matrix  # noqa: F401  (EditConfig re-exported)


def group_softmax(c_t: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """c~ [N, C] -> c [N, C], a softmax per exclusive group with a "none" slot of logit 0
    (`neuedit.runtime.state.c_from_logits`, the same formula in numpy); groups [C, C] from
    `neuedit.runtime.state.group_matrix`."""
    if c_t.shape[1] == 0:  # no condition (shoes, handbags): amax over nothing is undefined
        return c_t
    l = c_t.clamp(-LOGIT_MAX, LOGIT_MAX)
    top = l.amax(1, keepdim=True).clamp(min=0.0)
    e = torch.exp(l - top)
    return e / (torch.exp(-top) + e @ groups)


def latent_step(G, groups: torch.Tensor, z_t: torch.Tensor, c_t: torch.Tensor, sketch: torch.Tensor,
                mask: torch.Tensor, lr: torch.Tensor, lr_c: torch.Tensor, m: torch.Tensor, v: torch.Tensor,
                t: torch.Tensor, adam: torch.Tensor, z_anchor: torch.Tensor, anchor: torch.Tensor,
                edit_c: torch.Tensor, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
    """One optimisation step, batched and traceable; `groups` [C, C] is the bundle's constant.

    z_t [N, Z], c_t [N, C]: the unconstrained state (z = tanh(z~), c = group_softmax(c~));
    sketch [N, 3, R, R], mask [N, 1, R, R] (weights in [0, 1]: the strokes, and the keep term's
    pixels when the core adds them); lr, lr_c (step sizes of z~ and c~), t, adam (0/1), anchor,
    edit_c (0/1): scalars [] float; m, v [N, Z + C] Adam moments; z_anchor [N, Z]: z~ to pull
    toward with weight `anchor`.
    Returns (z_t', c_t', image [N, 3, R, R] and dist [N] at the *input* state, m', v', t').
    """
    with torch.enable_grad():
        z_t = z_t.detach().requires_grad_(True)
        c_t = c_t.detach().requires_grad_(True)
        image = G(torch.tanh(z_t), group_softmax(c_t, groups))
        dist = edit_distance(image, sketch, mask)
        loss = dist + anchor * ((z_t - z_anchor) ** 2).mean(1)
        gz, gc = torch.autograd.grad(loss.sum(), [z_t, c_t])
    g = torch.cat([gz, gc * edit_c], 1)
    t1 = t + 1.0
    m1 = beta1 * m + (1 - beta1) * g
    v1 = beta2 * v + (1 - beta2) * g * g
    adam_upd = (m1 / (1 - beta1 ** t1)) / (torch.sqrt(v1 / (1 - beta2 ** t1)) + eps)
    upd = adam * adam_upd + (1 - adam) * g
    Z = z_t.shape[1]
    keep = 1 - adam  # gd leaves the moments untouched
    return (z_t.detach() - lr * upd[:, :Z], c_t.detach() - lr_c * upd[:, Z:], image.detach(), dist.detach(),
            adam * m1 + keep * m, adam * v1 + keep * v, adam * t1 + keep * t)


class TorchBackend:
    """The editing core's backend (`neuedit.runtime.editing.Backend`) over PyTorch networks: G1, an
    optional G2, and `latent_step` on G1. Arrays cross as float32 numpy."""

    def __init__(self, G1, G2=None, schema=None, device="cpu"):
        self.G1 = G1.eval().requires_grad_(False).to(device)
        self.G2 = None if G2 is None else G2.eval().requires_grad_(False).to(device)
        self.schema, self.device = schema, device
        self.resolution, self.z_dim, self.c_dim = G1.resolution, G1.z_dim, G1.c_dim
        self.has_g2 = G2 is not None
        self.groups = group_matrix(schema, self.c_dim)
        self._groups_t = torch.from_numpy(self.groups).to(device)

    @classmethod
    def from_bundle(cls, b, device="cpu", g2: bool = True) -> "TorchBackend":
        from neuedit.runtime import bundle as bundle_mod
        G2 = bundle_mod.load_module(b, "g2", device) if (g2 and b.has_g2) else None
        return cls(bundle_mod.load_module(b, "g1", device), G2, b.schema, device)

    def _t(self, a) -> torch.Tensor:
        return torch.as_tensor(np.require(a, np.float32, ["C", "W"]), device=self.device)  # copies only read-only views

    @torch.no_grad()
    def generate(self, z, c) -> np.ndarray:
        return self.G1(self._t(z), self._t(c)).cpu().numpy()

    @torch.no_grad()
    def edit2(self, image, sketch, mask) -> np.ndarray:
        return self.G2(self._t(image), self._t(sketch), self._t(mask)).cpu().numpy()

    def step(self, feeds: dict) -> dict:
        out = latent_step(self.G1, self._groups_t, *(self._t(feeds[k]) for k in editing.STEP_INPUTS))
        return {k: v.cpu().numpy() for k, v in zip(editing.STEP_OUTPUTS, out)}


class LatentEditor:
    """Latent optimisation over a stage-one generator `G(z, c)` (eval mode, frozen): the
    editing core (`neuedit.runtime.editing`) on a PyTorch backend."""

    def __init__(self, G, schema=None, device="cpu"):
        self.backend = TorchBackend(G, None, schema, device)
        self.G, self.schema = self.backend.G1, schema
        self.z_dim, self.c_dim = G.z_dim, G.c_dim

    def render(self, state: EditState) -> np.ndarray:
        return editing.source_image(self.backend, state)

    def edit(self, state: EditState, sketch: np.ndarray, mask: np.ndarray, cfg: EditConfig = EditConfig(),
             frames: bool = False) -> StepResult:
        """`cfg.steps` steps from `state` toward the sketch [N or 1, 3, R, R] / mask [N or 1, 1, R, R]."""
        return editing.latent_edit(self.backend, state, sketch, mask, cfg, frames=frames)

    def edit_restarts(self, state: EditState, sketch, mask, cfg: EditConfig, rng: np.random.Generator,
                      frames: bool = False) -> StepResult:
        """Batch mode: the lowest final Dist of `cfg.restarts` starts (`neuedit.runtime.editing`)."""
        return editing.latent_edit_restarts(self.backend, state, sketch, mask, cfg, rng, frames)
