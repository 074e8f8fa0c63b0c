"""Architecture presets: G, D and G2 keyword arguments for a resolution and budget.

`report128` is the model of docs/method.md §1 (Jin et al. 2017: 128x128, 16 residual blocks in G, deep
residual D); `demo` trains in about an hour on 2 CPU cores at 64x64; `tiny` is for tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from neuedit.errors import UsageError


@dataclass(frozen=True)
class Preset:
    name: str
    resolution: int    # output side in pixels
    g: dict            # Generator kwargs except z_dim, c_dim, resolution
    d: dict            # Discriminator kwargs except c_dim, resolution
    g2: dict           # stage-two editor kwargs except resolution
    batch: int = 64    # default batch size
    g_name: str = "resnet_g"  # architecture names in nets.ARCHS
    d_name: str = "resnet_d"
    g2_name: str = "edit_g2"
    d2: dict = field(default_factory=lambda: dict(chans=(16, 32, 64)))  # stage two's conditional PatchGAN kwargs


PRESETS = {
    "tiny": Preset("tiny", 16, g=dict(ch=16, n_res=1, base=8, ch_min=8), d=dict(ch=8, n_res=1, final=4),
                   g2=dict(ch=8, n_down=1, n_res=1), batch=8),
    "demo": Preset("demo", 64, g=dict(ch=64, n_res=3, base=8, ch_min=16, out_kernel=3), d=dict(ch=16, n_res=1, final=4, ch_max=256, mbstd_group=4),
                   g2=dict(ch=16, n_down=2, n_res=2), batch=32),
    # The CPU-budget demo recipe: resize-conv G with most channels where the pixels are, spectral-norm D.
    "cpu64": Preset("cpu64", 64, g=dict(chans=(256, 128, 64, 32, 16)), d=dict(chans=(32, 64, 128, 256)),
                    g2=dict(chans=(16, 32, 64, 128), n_res=3), batch=32, g_name="up_g", d_name="sn_d",
                    g2_name="edit_unet"),
    "tiny_cpu": Preset("tiny_cpu", 16, g=dict(chans=(32, 16, 8)), d=dict(chans=(8, 16)),
                       g2=dict(chans=(8, 16), n_res=1), batch=8, g_name="up_g", d_name="sn_d",
                       g2_name="edit_unet", d2=dict(chans=(8, 16))),
    "report128": Preset("report128", 128, g=dict(ch=64, n_res=16, base=16, ch_min=64),
                        d=dict(ch=32, n_res=3, final=4, mbstd_group=4), g2=dict(ch=32, n_down=3, n_res=6, ch_max=128), batch=64),
}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def g_spec(p: Preset, z_dim: int, c_dim: int) -> dict:
    return {"name": p.g_name, "kwargs": dict(z_dim=z_dim, c_dim=c_dim, resolution=p.resolution, **p.g)}


def d_spec(p: Preset, c_dim: int) -> dict:
    return {"name": p.d_name, "kwargs": dict(c_dim=c_dim, resolution=p.resolution, **p.d)}


def g2_spec(p: Preset) -> dict:
    return {"name": p.g2_name, "kwargs": dict(resolution=p.resolution, **p.g2)}


def d2_spec(p: Preset) -> dict:
    """Stage two's conditional discriminator (the pairs objective; the strokes objective uses `d_spec`)."""
    return {"name": "patch_d", "kwargs": dict(resolution=p.resolution, **p.d2)}
