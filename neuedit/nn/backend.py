"""The PyTorch backend of the editing core, and the latent editor's step (iGAN-style latent
optimisation over a stage-one generator).

Steps are taken on `z~ = arctanh(z)` and `c~`, the logits of a softmax per exclusive group
(docs/method.md §3), so `z` stays in (-1, 1) and each group of `c` sums to at most 1.
`latent_step` is a pure function of tensors whose parameters are the inputs of the graph contract's
latent step (`neuedit.runtime.graphs.StepFeeds`): `TorchBackend` calls it, and the ONNX export
traces exactly it, so both follow the same trajectory; the loop around it is
`neuedit.runtime.editing`, shared with the ONNX backend, and callers use
`neuedit.runtime.editor.Editor.load(bundle, backend="torch")`.
"""
from __future__ import annotations

import numpy as np
import torch

from neuedit.nn import weights
from neuedit.nn.nets import DetailG1
from neuedit.runtime.graphs import Detail, StepFeeds, StepOutputs
from neuedit.runtime.sketch import dist as edit_distance
from neuedit.runtime.state import LOGIT_MAX, group_matrix


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
        # per-sample values stay [N, 1] (keepdim): the backward pass then broadcasts [N, 1] to
        # [N, Z] and [N, 3 R R] with no rank-1 tensor in between, which OpenCV DNN 4 cannot
        # hold (it stores [N] as [1, N]; docs/export.md). Same values as [N].
        dist = edit_distance(image, sketch, mask, keepdims=True)
        loss = dist + anchor * ((z_t - z_anchor) ** 2).mean(1, keepdim=True)
        gz, gc = torch.autograd.grad(loss.sum(), [z_t, c_t])
    g = torch.cat([gz, gc * edit_c], 1)
    t1 = t + 1.0
    m1 = beta1 * m + (1 - beta1) * g
    v1 = beta2 * v + (1 - beta2) * g * g
    adam_upd = (m1 / (1 - beta1 ** t1)) / (torch.sqrt(v1 / (1 - beta2 ** t1)) + eps)
    upd = adam * adam_upd + (1 - adam) * g
    Z = z_t.shape[1]
    keep = 1 - adam  # gd leaves the moments untouched
    return (z_t.detach() - lr * upd[:, :Z], c_t.detach() - lr_c * upd[:, Z:], image.detach(), dist.detach().reshape(-1),
            adam * m1 + keep * m, adam * v1 + keep * v, adam * t1 + keep * t)


class TorchBackend:
    """The editing core's backend (`neuedit.runtime.editing.Backend`) over PyTorch networks: G1, an
    optional G2, and `latent_step` on G1. Arrays cross as float32 numpy."""

    def __init__(self, G1, G2=None, schema=None, device="cpu", E=None):
        self.G1 = G1.eval().requires_grad_(False).to(device)
        self.G2 = None if G2 is None else G2.eval().requires_grad_(False).to(device)
        self.E = None if E is None or not E.detail else E.eval().requires_grad_(False).to(device)
        self.has_encoder = self.E is not None  # (an encoder without a detail map predates the contract's r)
        self.detail = Detail(*self.E.detail) if self.E is not None else None
        self.G1d = DetailG1(self.G1, self.detail.size).eval() if self.E is not None else None
        self.schema, self.device = schema, device
        self.resolution, self.z_dim, self.c_dim = G1.resolution, G1.z_dim, G1.c_dim
        self.has_g2, self.has_step = G2 is not None, True
        self.groups = group_matrix(schema, self.c_dim)
        self._groups_t = torch.from_numpy(self.groups).to(device)

    @classmethod
    def from_bundle(cls, b, device="cpu", g2: bool = True) -> "TorchBackend":
        G2 = weights.load_module(b, "g2", device) if (g2 and b.has_g2) else None
        E = weights.load_module(b, "e", device) if "e" in b.info.networks else None
        return cls(weights.load_module(b, "g1", device), G2, b.schema, device, E)

    def _t(self, a) -> torch.Tensor:
        return torch.as_tensor(np.require(a, np.float32, ["C", "W"]), device=self.device)  # copies only read-only views

    @torch.no_grad()
    def generate(self, z, c) -> np.ndarray:
        return self.G1(self._t(z), self._t(c)).cpu().numpy()

    @torch.no_grad()
    def edit2(self, image, sketch, mask) -> np.ndarray:
        return self.G2(self._t(image), self._t(sketch), self._t(mask)).cpu().numpy()

    @torch.no_grad()
    def encode(self, image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(a.cpu().numpy() for a in self.E(self._t(image)))

    @torch.no_grad()
    def generate_detail(self, z, c, r) -> np.ndarray:
        return self.G1d(self._t(z), self._t(c), self._t(r)).cpu().numpy()

    def step(self, feeds: StepFeeds) -> StepOutputs:
        out = latent_step(self.G1, self._groups_t, *(self._t(a) for a in feeds.as_dict(c_dim=1).values()))
        return StepOutputs(*(a.cpu().numpy() for a in out))
