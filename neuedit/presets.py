"""Architecture presets: G, D and G2 keyword arguments for a resolution and budget.

`report128` is the report's model (Jin et al.: 128x128, 16 residual blocks in G, deep
residual D); `demo` trains in about an hour on 2 CPU cores at 64x64; `tiny` is for tests.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    resolution: int    # output side in pixels
    g: dict            # Generator kwargs except z_dim, c_dim, resolution
    d: dict            # Discriminator kwargs except c_dim, resolution
    g2: dict           # EditGenerator kwargs except resolution
    batch: int = 64    # default batch size


PRESETS = {
    "tiny": Preset("tiny", 16, g=dict(ch=16, n_res=1, base=8, ch_min=8), d=dict(ch=8, n_res=1, final=4),
                   g2=dict(ch=8, n_down=1, n_res=1), batch=8),
    "demo": Preset("demo", 64, g=dict(ch=64, n_res=3, base=8, ch_min=16, out_kernel=3), d=dict(ch=16, n_res=1, final=4, ch_max=256, mbstd_group=4),
                   g2=dict(ch=16, n_down=2, n_res=2), batch=32),
    "report128": Preset("report128", 128, g=dict(ch=64, n_res=16, base=16, ch_min=64),
                        d=dict(ch=32, n_res=3, final=4, mbstd_group=4), g2=dict(ch=32, n_down=3, n_res=6, ch_max=128), batch=64),
}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def g_spec(p: Preset, z_dim: int, c_dim: int) -> dict:
    return {"name": "resnet_g", "kwargs": dict(z_dim=z_dim, c_dim=c_dim, resolution=p.resolution, **p.g)}


def d_spec(p: Preset, c_dim: int) -> dict:
    return {"name": "resnet_d", "kwargs": dict(c_dim=c_dim, resolution=p.resolution, **p.d)}


def g2_spec(p: Preset) -> dict:
    return {"name": "edit_g2", "kwargs": dict(resolution=p.resolution, **p.g2)}
