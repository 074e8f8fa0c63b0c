"""Two-stage editing in PyTorch: `I1 = G1(z, c)` (or any image), then `I2 = G2(I1, sketch, mask)`
in one forward pass: the editing core (`neuedit.runtime.editing.two_stage`) on the PyTorch backend.
The torch-free twin for serving is `neuedit.runtime.engine.Engine`, over the same core."""
from __future__ import annotations

import numpy as np

from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime import editing
from neuedit.nn.backend import TorchBackend
from neuedit.runtime.state import EditState


class TwoStageEditor:
    def __init__(self, G1, G2, device="cpu", schema=None):
        self.backend = TorchBackend(G1, G2, schema, device)
        self.G1, self.G2 = self.backend.G1, self.backend.G2
        self.resolution = G2.resolution

    @classmethod
    def from_bundle(cls, b: bundle_mod.Bundle, device="cpu") -> "TwoStageEditor":
        if not b.has_g2:
            raise bundle_mod.BundleError(f"bundle {b.path} has no stage-two generator (train one with train-stage2)")
        return cls(bundle_mod.load_module(b, "g1", device), bundle_mod.load_module(b, "g2", device), device, b.schema)

    def source_image(self, source: EditState | np.ndarray) -> np.ndarray:
        """A state -> G1's image; an image [N, 3, R, R] in [-1, 1] passes through."""
        return editing.source_image(self.backend, source)

    def edit(self, source: EditState | np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """-> I2 [N, 3, R, R]; sketch [N or 1, 3, R, R] (or [3, R, R]), mask likewise with 1 channel."""
        return editing.two_stage(self.backend, source, sketch, mask)


def two_stage_edit(b: bundle_mod.Bundle | str, source, sketch, mask) -> np.ndarray:
    """One-call API: load the bundle's G1 and G2 and edit `source` (a state or an image) in one pass."""
    b = bundle_mod.read(b) if not isinstance(b, bundle_mod.Bundle) else b
    return TwoStageEditor.from_bundle(b).edit(source, sketch, mask)
