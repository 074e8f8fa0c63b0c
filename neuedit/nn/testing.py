"""Tiny bundles with seeded random weights, for tests and quick checks (not for users' models)."""
from __future__ import annotations

from pathlib import Path

from neuedit.nn.weights import save_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.nn import presets
from neuedit.runtime.schema import BUILTIN


def make_random_bundle(path: str | Path, preset: str = "tiny", schema: str = "anime_faces", z_dim: int = 16,
                       seed: int = 0, with_g2: bool = True, with_d: bool = True, with_e: bool = True,
                       name: str = "tiny"):
    """Write a bundle whose networks have seeded random weights (BatchNorm in eval mode with
    perturbed running statistics, so folding them into convolutions is exercised)."""
    import torch
    from neuedit.nn.nets import build
    torch.manual_seed(seed)
    p = presets.get(preset)
    sch = BUILTIN[schema]()
    specs = {"g1": presets.g_spec(p, z_dim, sch.c_dim)}
    if with_g2:
        specs["g2"] = presets.g2_spec(p)
    if with_d:
        specs["d"] = presets.d_spec(p, sch.c_dim)
    if with_e:  # the photo encoder, as small as the preset; its detail map at half the resolution
        levels = (p.resolution // 4).bit_length() - 1
        size = p.resolution // 2
        detail = (build(specs["g1"]).detail_shape(size)[1], size)
        specs["e"] = {"name": "conv_e", "kwargs": dict(z_dim=z_dim, c_dim=sch.c_dim, resolution=p.resolution,
                                                        chans=tuple(8 * 2 ** i for i in range(levels)), hidden=32,
                                                        detail=detail, detail_ch=8)}
    nets = {}
    for key, spec in specs.items():
        m = build(spec)
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.2, 0.2)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.1, 0.1)
            if key == "g2":  # the zero-initialised output layer would make G2 the identity
                torch.nn.init.normal_(m.out.weight, std=0.05)
            if key == "e":  # ... and the encoder's detail zero
                torch.nn.init.normal_(m.detail_head[-1].weight, std=0.05)
        nets[key] = save_module(path, key, m, spec)
    training = bundle_mod.Provenance(stage1_step=0, stage2_step=0 if with_g2 else None, note="random weights for tests")
    meta = bundle_mod.BundleMeta(kind="two-stage" if with_g2 else "stage1", name=name, domain=name, z_dim=z_dim,
                                 c_dim=sch.c_dim, resolution=p.resolution, schema=sch.to_dict(), preset=preset,
                                 training=training, networks=nets)
    return bundle_mod.write_meta(path, meta)
