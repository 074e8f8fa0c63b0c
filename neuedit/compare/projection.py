"""Projection of real photos into G1's latent space, so that the latent editor can start from them."""
from __future__ import annotations

import numpy as np
import torch

from ..state import EditState, sample_z


def project(G, image: np.ndarray, steps: int = 200, *, rng: np.random.Generator | None = None,
            c0: np.ndarray | None = None, schema=None, lr: float = 0.05,
            candidates: int = 16) -> tuple[EditState, np.ndarray, np.ndarray]:
    """Project real images into G's latent space (iGAN-style): the best of `candidates` random
    z (c: `c0` [N, c_dim] when the labels are known, else sampled from `schema`), then `steps`
    Adam steps on (z~, c~) minimising the mean squared error.

    image [N, 3, R, R] in [-1, 1] -> (state with N rows, reconstruction [N, 3, R, R], MSE [N]).
    Images are projected independently (a batch changes nothing but speed).
    """
    x = torch.as_tensor(np.asarray(image, np.float32))
    assert x.dim() == 4 and x.shape[1:] == (3, G.resolution, G.resolution), \
        f"image must be [N, 3, {G.resolution}, {G.resolution}], got {tuple(x.shape)}"
    n, z_dim, c_dim = len(x), G.z_dim, G.c_dim
    rng = np.random.default_rng(0) if rng is None else rng
    zs = sample_z(candidates, z_dim, rng)
    if c0 is None:
        cs = (schema.sample(candidates, rng) if (schema is not None and c_dim)
              else np.full((candidates, c_dim), 0.5, np.float32))
        cs = np.broadcast_to(cs, (n, candidates, c_dim))
    else:
        cs = np.repeat(np.asarray(c0, np.float32)[:, None], candidates, 1)
    z0, c_start = np.empty((n, z_dim), np.float32), np.empty((n, c_dim), np.float32)
    with torch.no_grad():
        for i in range(n):
            rec = G(torch.from_numpy(zs), torch.from_numpy(np.array(cs[i], np.float32)))
            k = int(((rec - x[i:i + 1]) ** 2).flatten(1).mean(1).argmin())
            z0[i], c_start[i] = zs[k], cs[i, k]
    start = EditState(z0, c_start)
    z_t = torch.from_numpy(start.z_tilde()).requires_grad_(True)
    c_t = torch.from_numpy(start.c_tilde()).requires_grad_(True)
    opt = torch.optim.Adam([z_t, c_t] if c_dim else [z_t], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            rec = G(torch.tanh(z_t), torch.sigmoid(c_t))
            loss = ((rec - x) ** 2).flatten(1).mean(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
    state = EditState.from_tilde(z_t.detach().numpy(), c_t.detach().numpy())
    with torch.no_grad():
        rec = G(torch.from_numpy(state.z), torch.from_numpy(state.c))
        mse = ((rec - x) ** 2).flatten(1).mean(1)
    return state, rec.numpy(), mse.numpy()
