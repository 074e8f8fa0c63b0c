"""Two-stage editing in PyTorch: `I1 = G1(z, c)` (or any image), then `I2 = G2(I1, sketch, mask)`
in one forward pass. The torch-free twin for serving is `neuedit.engine.Engine`."""
from __future__ import annotations

import numpy as np
import torch

from . import bundle as bundle_mod
from .state import EditState
from neuedit.errors import UsageError


class TwoStageEditor:
    def __init__(self, G1, G2, device="cpu"):
        self.G1 = G1.eval().requires_grad_(False).to(device)
        self.G2 = G2.eval().requires_grad_(False).to(device)
        self.device = device
        self.resolution = G2.resolution

    @classmethod
    def from_bundle(cls, b: bundle_mod.Bundle, device="cpu") -> "TwoStageEditor":
        if not b.has_g2:
            raise bundle_mod.BundleError(f"bundle {b.path} has no stage-two generator (train one with train-stage2)")
        return cls(bundle_mod.load_module(b, "g1", device), bundle_mod.load_module(b, "g2", device), device)

    def _t(self, a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, np.float32), device=self.device)

    @torch.no_grad()
    def source_image(self, source: EditState | np.ndarray) -> np.ndarray:
        """A state -> G1's image; an image [N, 3, R, R] in [-1, 1] passes through."""
        if isinstance(source, EditState):
            source.validate(self.G1.z_dim, self.G1.c_dim)
            return self.G1(self._t(source.z), self._t(source.c)).cpu().numpy()
        image = np.asarray(source, np.float32)
        r = self.resolution
        if image.ndim != 4 or image.shape[1:] != (3, r, r):
            raise UsageError(f"image must be [N, 3, {r}, {r}] in [-1, 1] (use neuedit.data.image_to_model)")
        return image

    @torch.no_grad()
    def edit(self, source: EditState | np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """-> I2 [N, 3, R, R]; sketch [N or 1, 3, R, R] (or [3, R, R]), mask likewise with 1 channel."""
        i1 = self._t(self.source_image(source))
        n = len(i1)
        sk = self._t(sketch).reshape(-1, 3, self.resolution, self.resolution).expand(n, -1, -1, -1)
        mk = self._t(mask).reshape(-1, 1, self.resolution, self.resolution).expand(n, -1, -1, -1)
        return self.G2(i1, sk, mk).cpu().numpy()


def two_stage_edit(b: bundle_mod.Bundle | str, source, sketch, mask) -> np.ndarray:
    """One-call API: load the bundle's G1 and G2 and edit `source` (a state or an image) in one pass."""
    b = bundle_mod.read(b) if not isinstance(b, bundle_mod.Bundle) else b
    return TwoStageEditor.from_bundle(b).edit(source, sketch, mask)
