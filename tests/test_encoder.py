"""The photo encoder's trainer (neuedit.encoder.train): it learns to invert G1, resumes exactly,
and writes a bundle that is the input bundle plus `e`."""
import numpy as np
import pytest
import torch

from neuedit.data.datasets import DataConfig, load_dataset, to_unit_range
from neuedit.encoder.train import EncoderConfig, EncoderLossConfig, train
from neuedit.nn.backend import group_softmax
from neuedit.nn.nets import DetailG1, build
from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.schema import empty
from neuedit.runtime.state import group_matrix
from neuedit.training import RunConfig


def e_cfg(b, out, data_dir, iterations, **kw):
    return EncoderConfig(
        bundle=str(b.path),
        data=DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=512,
                        labels=str(data_dir / "anime-faces" / "labels.csv")),
        run=RunConfig(out=str(out), iterations=iterations, batch=16, seed=0, log_every=20, sample_every=1000,
                      ckpt_every=1000, progress=False, tensorboard=False),
        **{"chans": (8, 16), "hidden": 64, "detail": 8, **kw})


@pytest.fixture(scope="module")
def faces(data_dir, trained_tiny_bundle):
    return load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=512,
                                   labels=str(data_dir / "anime-faces" / "labels.csv")), trained_tiny_bundle.schema)


def _reconstruction_error(b, E, photos) -> float:
    G1 = load_module(b, "g1")
    groups = torch.from_numpy(group_matrix(b.schema, b.c_dim))
    with torch.no_grad():
        z_t, c_t, *r = E(photos)
        z, c = torch.tanh(z_t), group_softmax(c_t, groups)
        return float((G1(z, c) - photos).abs().mean()), float((DetailG1(G1, 8)(z, c, r[0]) - photos).abs().mean())


@pytest.mark.slow
def test_training_inverts_g1_on_held_out_photos(tmp_path, trained_tiny_bundle, data_dir, faces):
    held = load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, skip=16000, limit=64),
                        empty())
    photos = torch.from_numpy(to_unit_range(held.images))  # [N, 3, R, R]
    cfg = e_cfg(trained_tiny_bundle, tmp_path / "e", data_dir, 300)
    torch.manual_seed(0)
    untrained = build({"name": "conv_e", "kwargs": dict(z_dim=trained_tiny_bundle.z_dim, c_dim=trained_tiny_bundle.c_dim,
                                                        resolution=16, chans=cfg.chans, hidden=cfg.hidden,
                                                        detail=(16, 8))}).eval()
    before, _ = _reconstruction_error(trained_tiny_bundle, untrained, photos)
    out = train(cfg, faces)
    after, with_detail = _reconstruction_error(trained_tiny_bundle, load_module(out, "e"), photos)
    assert after < 0.8 * before, (before, after)
    assert with_detail < 0.8 * after, (after, with_detail)  # the detail draws what (z, c) cannot


def test_resume_is_exact_and_the_bundle_adds_e(tmp_path, trained_tiny_bundle, data_dir, faces, resume_is_exact):
    cfgs = [e_cfg(trained_tiny_bundle, tmp_path / k, data_dir, 4, loss=EncoderLossConfig(p_real=0.5)) for k in "ab"]
    assert resume_is_exact(train, *cfgs, faces, "E")
    out = bundle_mod.read(tmp_path / "a" / "bundle")
    assert set(out.info.networks) == set(trained_tiny_bundle.info.networks) | {"e"}
    assert out.training_steps["encoder"] == 4
    assert out.file("g1").read_bytes() == trained_tiny_bundle.file("g1").read_bytes()
    z_t, c_t, r = load_module(out, "e")(torch.zeros(2, 3, 16, 16))
    assert z_t.shape == (2, out.z_dim) and c_t.shape == (2, out.c_dim) and r.shape == (2, 16, 8, 8)
    assert np.isfinite(z_t.numpy()).all()


def test_a_phase_starts_from_an_earlier_encoder(tmp_path, trained_tiny_bundle, data_dir, faces):
    from neuedit.errors import UsageError
    from neuedit.training import OptimConfig
    first = train(e_cfg(trained_tiny_bundle, tmp_path / "a", data_dir, 2), faces)
    tiny_lr = OptimConfig(lr=1e-12, lr_end=1e-12)
    second = train(e_cfg(trained_tiny_bundle, tmp_path / "b", data_dir, 1, init_from=str(first.path), optim=tiny_lr), faces)
    a, b = (load_module(x, "e").detail_head[-1].weight for x in (first, second))
    assert float(a.abs().sum()) > 0 and torch.allclose(a, b, atol=1e-8)  # the detail head's zero start was replaced
    fresh = train(e_cfg(trained_tiny_bundle, tmp_path / "c", data_dir, 1, optim=tiny_lr), faces)
    assert float(load_module(fresh, "e").detail_head[-1].weight.abs().max()) < 1e-6
    with pytest.raises(UsageError, match="use the same"):
        train(e_cfg(trained_tiny_bundle, tmp_path / "d", data_dir, 1, init_from=str(first.path), hidden=32), faces)
