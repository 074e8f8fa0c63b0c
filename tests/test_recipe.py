"""The CPU-budget stage-one recipe: resize-conv G, spectral-norm D, hinge / R1 / DiffAugment
options, projection conditioning, and warm starts from a bundle."""
from dataclasses import replace

import pytest
import torch

from neuedit.nn import augment
from neuedit.runtime import bundle as bundle_mod
from neuedit.nn.weights import load_module
from neuedit.data.datasets import DataConfig, load_dataset
from neuedit.nn.losses import d_hinge_loss, g_hinge_loss, r1_penalty
from neuedit.nn.nets import SNDiscriminator, UpGenerator
from neuedit.runtime.schema import anime_faces
from neuedit.training import RunConfig
from neuedit.stage1.train import Stage1Config, fit, train
from neuedit.training import LossConfig, OptimConfig

CPU_LOSS = LossConfig(adv="hinge", penalty="none", l_adv=1.0, l_reg=0.0, augment="color,translation,cutout")


def cpu_cfg(out, data_dir, iterations=6, loss=CPU_LOSS, **kw):
    return Stage1Config(
        data=DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=64,
                        labels=str(data_dir / "anime-faces" / "labels.csv")),
        run=RunConfig(out=str(out), iterations=iterations, batch=8, seed=5, log_every=2, sample_every=3,
                      ckpt_every=100, progress=False, tensorboard=False),
        preset="tiny_cpu", z_dim=16, loss=loss, **kw)


@pytest.fixture(scope="module")
def faces(data_dir):
    return load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=64,
                                   labels=str(data_dir / "anime-faces" / "labels.csv")), anime_faces())


# ---- losses and augmentation, by hand ------------------------------------------------------
def test_hinge_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5]; relu(1 + fake) = [0, 1]
    assert d_hinge_loss(real, fake).item() == pytest.approx(0.25 + 0.5)
    assert g_hinge_loss(fake).item() == pytest.approx(1.0)


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(4, 3, requires_grad=True)
    assert r1_penalty(x @ w, x).item() == pytest.approx(14.0)


def test_translation_shifts_content_and_pads_with_zeros():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    y = augment.translation(x, torch.Generator().manual_seed(0))
    pos = y.flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 8
    assert (y.flatten(1).sum(1) == 1).all(), "the one bright pixel must move, not vanish or blur"
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2 and (dy != 0).any() and (dx != 0).any()


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(32, 3, 16, 16)
    y = augment.cutout(x, torch.Generator().manual_seed(1))
    zeros = (y[:, 0] == 0).flatten(1).sum(1)
    assert (zeros <= 64).all() and (zeros >= 16).all()  # an 8x8 square, clipped at the borders
    assert (zeros == 64).float().mean() > 0.2
    assert torch.equal(y[:, 0] == 0, y[:, 2] == 0)


def test_color_keeps_the_hue_ordering_of_channels():
    """Brightness, saturation and contrast change colours but not which channel dominates,
    so a red-haired face stays red-haired for D's class head."""
    x = torch.rand(16, 3, 8, 8) * 0.4 - 0.2
    x[:, 0] += 0.5  # red dominant
    y = augment.color(x, torch.Generator().manual_seed(2))
    assert not torch.allclose(x, y)
    assert ((y[:, 0] >= y[:, 1]) | (y[:, 0] - y[:, 1]).abs().lt(1e-6)).float().mean() > 0.99


def test_augmentation_is_a_function_of_the_generator_and_differentiable():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    a = augment.diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(7))
    b = augment.diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.parse_policy("color,rotate")


# ---- networks --------------------------------------------------------------------------------
def test_up_generator_and_sn_discriminator_shapes_and_lipschitz_layers():
    G = UpGenerator(z_dim=8, c_dim=5, resolution=32, chans=(32, 16, 8, 8))
    x = G(torch.randn(3, 8), torch.zeros(3, 5))
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1
    D = SNDiscriminator(c_dim=5, resolution=32, chans=(8, 16, 32), projection=True).train()
    for _ in range(30):  # power iterations converge in training mode
        D(x.detach())
    w = D.features[0].weight  # the spectrally normalised weight
    assert torch.linalg.matrix_norm(w.flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.05)
    c1, c2 = torch.zeros(3, 5), torch.eye(5)[:3]
    assert not torch.allclose(D(x, c1)[0], D(x, c2)[0]), "projection: the logit must depend on c"
    with pytest.raises(ValueError, match="channel counts"):
        UpGenerator(resolution=32, chans=(8, 8))


# ---- the training loop with the recipe --------------------------------------------------------
@pytest.mark.parametrize("loss", [CPU_LOSS, replace(CPU_LOSS, penalty="r1", l_gp=0.1, cond="projection")],
                         ids=["hinge-augment", "r1-projection"])
def test_recipe_resumes_exactly(tmp_path, data_dir, faces, loss):
    train(cpu_cfg(tmp_path / "a", data_dir, loss=loss), faces)
    b = cpu_cfg(tmp_path / "b", data_dir, loss=loss)
    train(b, faces, stop_at=3)
    train(b, faces)
    wa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["modules"]
    wb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["modules"]
    for net in ("G", "D", "G_ema"):
        for k in wa[net]:
            assert torch.equal(wa[net][k], wb[net][k]), f"{net}.{k} differs after resume"
    cfg = bundle_mod.read(tmp_path / "b" / "bundle")
    assert cfg.meta["d"]["name"] == "sn_d" and cfg.meta["g1"]["name"] == "up_g"
    assert (tmp_path / "b" / "config.json").read_text().count(f'"adv": "{loss.adv}"') == 1


def test_init_from_starts_with_the_bundle_weights(tmp_path, data_dir, faces):
    first = train(cpu_cfg(tmp_path / "first", data_dir), faces)
    frozen = OptimConfig(lr=0.0, lr_end=0.0)  # Adam with lr 0 leaves the parameters where they start
    _, mods = fit(cpu_cfg(tmp_path / "warm", data_dir, iterations=1, optim=frozen, init_from=str(first.path)), faces)
    g1 = load_module(first, "g1")
    for (k, p), q in zip(mods["G"].named_parameters(), g1.parameters()):
        assert torch.equal(p, q), f"G.{k} was not loaded from the bundle"
    _, cold = fit(cpu_cfg(tmp_path / "cold", data_dir, iterations=1, optim=frozen), faces)
    assert not all(torch.equal(p, q) for p, q in zip(cold["G"].parameters(), g1.parameters()))


def test_init_from_a_different_architecture_is_a_clear_error(tmp_path, data_dir, faces, tiny_bundle):
    with pytest.raises(ValueError, match="use the same --preset"):
        fit(cpu_cfg(tmp_path / "x", data_dir, iterations=1, init_from=str(tiny_bundle.path)), faces)


def test_bad_loss_choices_are_refused():
    with pytest.raises(ValueError, match="adv loss"):
        LossConfig(adv="wasserstein")
    with pytest.raises(ValueError, match="penalty"):
        LossConfig(penalty="gp")


def test_a_runs_config_json_starts_an_identical_run(tmp_path, data_dir):
    from neuedit.cli.main import main
    images = data_dir / "anime-faces" / "images"
    flags = ["train-stage1", "--data", str(images), "--labels", str(data_dir / "anime-faces" / "labels.csv"),
             "--limit", "32", "--preset", "tiny_cpu", "--z-dim", "8", "--iterations", "3", "--batch", "4",
             "--loss", "hinge", "--penalty", "none", "--augment", "translation", "--no-progress", "--no-tensorboard"]
    assert main(flags + ["--out", str(tmp_path / "a")]) == 0
    assert main(["train-stage1", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")]) == 0
    wa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    wb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert wa["digest"] == wb["digest"]
    for k, v in wa["modules"]["G_ema"].items():
        assert torch.equal(v, wb["modules"]["G_ema"][k])


def test_recipe_files_are_valid_configs_and_flags_override_them():
    import argparse
    from neuedit.stage1 import cli
    from pathlib import Path
    recipes = sorted(Path(__file__).resolve().parents[1].joinpath("recipes").glob("*.toml"))
    assert {p.stem for p in recipes} >= {"anime", "shoes", "handbags"}
    for path in recipes:
        p = argparse.ArgumentParser()
        cli.add_arguments(p)
        cfg = cli.build_config(p.parse_args(["--config", str(path), "--iterations", "7", "--lr", "1e-3"]))
        assert cfg.preset == "cpu64" and cfg.loss.adv == "hinge" and cfg.run.iterations == 7 and cfg.optim.lr == 1e-3
        assert cfg.run.batch == 32 and cfg.data.resolution == 64


def test_unknown_recipe_settings_are_refused(tmp_path):
    import argparse
    from neuedit.stage1 import cli
    bad = tmp_path / "bad.toml"
    bad.write_text('preset = "cpu64"\n[data]\nroot = "x"\n[run]\nout = "y"\n[loss]\nadv = "hinge"\nl_advv = 1.0\n')
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    with pytest.raises(ValueError, match="unknown setting"):
        cli.build_config(p.parse_args(["--config", str(bad)]))


def test_standing_stats_measure_the_given_inputs():
    from neuedit.stage1.train import standing_stats
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    xs = [torch.randn(16, 4, generator=torch.Generator().manual_seed(i)) * 0.5 for i in range(8)]
    standing_stats(net, lambda i: (xs[i],), batches=8)
    with torch.no_grad():
        h = torch.cat([net[0](x) for x in xs])
    assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-5)
    assert net[1].momentum == 0.1 and not net.training
