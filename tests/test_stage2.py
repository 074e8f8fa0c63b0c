import numpy as np
import pytest
import torch

from neuedit.runtime import bundle as bundle_mod
from neuedit.data.datasets import DataConfig, image_to_model, load_dataset, to_unit_range
from neuedit.runtime.schema import empty
from neuedit.training import RunConfig
from neuedit.stage2.train import SketchSource, Stage2Config, dilate, fit, train
from neuedit.runtime.state import sample_state
from neuedit.synth.strokes import StrokeConfig
from neuedit.runtime.editor import Editor


def s2_cfg(stage1, out, data_dir, iterations, **kw):
    kw = {"preset": "tiny", **kw}
    return Stage2Config(
        stage1=str(stage1.path),
        data=DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=600),
        run=RunConfig(out=str(out), iterations=iterations, batch=16, seed=0, log_every=20, sample_every=1000,
                      ckpt_every=1000, progress=False, tensorboard=False), **kw)


@pytest.fixture(scope="module")
def faces(data_dir):
    return load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=600), empty())


def _eval(G2, source, held, rng_seed=11):
    """Dist on held-out real images with synthesised sketches, and L1 outside the dilated mask."""
    from neuedit.nn.losses import edit_distance, masked_l1
    rng = np.random.default_rng(rng_seed)
    cfg = StrokeConfig(p_empty=0.0)
    sk, mk = (torch.from_numpy(a) for a in source.sketches(held[::-1].copy(), rng, cfg, 16))
    i1 = torch.from_numpy(to_unit_range(source.images[held]))
    with torch.no_grad():
        i2 = G2.eval()(i1, sk, mk)
    return edit_distance(i2, sk, mk).mean().item(), masked_l1(i2, i1, 1 - dilate(mk, 5)).mean().item()


@pytest.mark.slow
def test_short_training_lowers_dist_and_keeps_the_rest(tmp_path, tiny_bundle, data_dir, faces):
    train_set = load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=536), empty())
    cfg = s2_cfg(tiny_bundle, tmp_path / "run", data_dir, 300, p_real=0.75, objective="strokes")
    run, modules = fit(cfg, train_set)
    source = SketchSource(faces, cfg, False)
    held = np.arange(536, 600)
    from neuedit.nn.nets import build
    from neuedit.nn import presets
    untrained = build(presets.g2_spec(presets.get("tiny")))
    d0, keep0 = _eval(untrained, source, held)
    d1, keep1 = _eval(modules["G2"], source, held)
    assert keep0 < 1e-4  # the untrained residual G2 is the identity (up to tanh(atanh(x)) rounding)
    assert d1 < 0.8 * d0, f"Dist {d0:.3f} -> {d1:.3f}"
    assert keep1 < 0.1, f"L1 outside the dilated mask {keep1:.3f} (value range [-1, 1])"
    b = bundle_mod.read(tmp_path / "run" / "bundle")
    assert b.meta["kind"] == "two-stage" and b.has_g2 and b.meta["training"]["stage2_step"] == 300
    assert (tmp_path / "run" / "samples" / "samples_latest.png").is_file()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).mean().item() / 4.0  # [-1, 1] -> [0, 1] units
    return 10 * np.log10(1.0 / max(mse, 1e-10))


@pytest.mark.slow
def test_pairs_training_beats_the_untrained_editor_on_held_out_triples(tmp_path, tiny_bundle, data_dir, faces):
    from neuedit.synth import pairs as P
    from neuedit.nn import presets
    from neuedit.nn.nets import build
    from neuedit.stage2.batches import pair_tensors
    from neuedit.synth.strokes import edge_map
    train_set = load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=536), empty())
    cfg = s2_cfg(tiny_bundle, tmp_path / "run", data_dir, 300, preset="tiny_cpu")
    _, modules = fit(cfg, train_set)
    held = faces.images[536:600]
    rng = np.random.default_rng(5)
    triples = [P.recolour_pair(im, held[::-1], 3, rng) if i % 2 else
               P.reshape_pair(im, edge_map(im), 3, rng, fill="blur") for i, im in enumerate(held)]
    b = pair_tensors(triples, 16, "cpu")
    untrained = build(presets.g2_spec(presets.get("tiny_cpu")))
    with torch.no_grad():
        p0 = _psnr(untrained.eval()(b["source"], b["sketch"], b["mask"]), b["target"])
        p1 = _psnr(modules["G2"].eval()(b["source"], b["sketch"], b["mask"]), b["target"])
    assert abs(p0 - _psnr(b["source"], b["target"])) < 0.1  # untrained residual G2: the identity
    assert p1 > p0 + 0.5, f"PSNR to the target {p0:.2f} -> {p1:.2f} dB"
    b = bundle_mod.read(tmp_path / "run" / "bundle")
    assert b.meta["g2"]["name"] == "edit_unet"


def test_resume_and_bundle_contains_stage_one(tmp_path, tiny_bundle, data_dir, faces, resume_is_exact):
    assert resume_is_exact(train, *(s2_cfg(tiny_bundle, tmp_path / k, data_dir, 4) for k in "ab"), faces, "G2")
    out = bundle_mod.read(tmp_path / "a" / "bundle")
    assert (out.path / "g1.safetensors").read_bytes() == tiny_bundle.file("g1").read_bytes()


def test_two_stage_edit_api_on_state_and_real_photo(tiny_bundle, data_dir):
    from PIL import Image
    ed = Editor.load(tiny_bundle, backend="torch")
    st = sample_state(2, tiny_bundle.z_dim, tiny_bundle.schema, np.random.default_rng(0))
    sketch = np.zeros((3, 16, 16), np.float32)
    mask = np.zeros((1, 16, 16), np.float32)
    mask[:, 4:8, 4:8] = 1
    out = ed.two_stage(st, sketch, mask)
    assert out.shape == (2, 3, 16, 16)
    photo = np.asarray(Image.open(data_dir / "shoes" / "val" / sorted((data_dir / "shoes" / "val").iterdir())[0].name))
    img = image_to_model(photo, 16)[None]  # a 512x256 pair file: any size is resized
    out2 = Editor.load(tiny_bundle.path, backend="torch").two_stage(img, sketch, mask)
    assert out2.shape == (1, 3, 16, 16) and np.isfinite(out2).all()
    with pytest.raises(ValueError):
        ed.two_stage(np.zeros((1, 3, 8, 8), np.float32), sketch, mask)


def test_line_terms_act_on_the_line_strokes_only():
    from neuedit.nn import presets
    from neuedit.nn.nets import build
    from neuedit.stage2.train import Stage2LossConfig, g2_pair_loss_terms
    torch.manual_seed(0)
    p = presets.get("tiny")
    G2, D2 = build(presets.g2_spec(p)).eval(), build(presets.d2_spec(p)).eval()  # eval: the same I2 twice
    n, r = 2, p.resolution
    target = torch.rand(n, 3, r, r) * 2 - 1
    mask, colour = torch.zeros(n, 1, r, r), torch.zeros(n, 1, r, r)
    mask[:, :, 8, 2:14] = 1.0                # a line stroke: in the mask, not a colour stroke
    b = {"source": target.flip(3), "target": target, "sketch": torch.full((n, 3, r, r), -1.0) * mask,
         "mask": mask, "colour": colour, "region": mask}
    off, _ = g2_pair_loss_terms(G2, D2, b, Stage2LossConfig(l_reg=0.0))
    assert "L_edge" not in off
    assert off["L_line"] > 0                 # Dist on the line stroke, on by default
    on, _ = g2_pair_loss_terms(G2, D2, b, Stage2LossConfig(l_edge=3.0, l_reg=0.0))
    assert on["L_edge"] > 0
    assert torch.isclose(on["L_G2"] - off["L_G2"], 3.0 * on["L_edge"], atol=0.02)  # float32 at the size of L_G2
    on["L_edge"].backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in G2.parameters())
    # without line strokes there is no edge to ask for
    none, _ = g2_pair_loss_terms(G2, D2, {**b, "colour": mask.clone()}, Stage2LossConfig(l_edge=3.0))
    assert none["L_edge"] == 0 and none["L_line"] == 0


@pytest.mark.parametrize("p_gen", [0.0, 1.0])
def test_object_recolours_come_from_stage_one_samples_as_often_as_asked(p_gen):
    """p_generated_object: the recoloured product is a G1 sample instead of a real photo."""
    from neuedit.stage2.batches import PairBatcher, PairMix
    r = 32
    real = np.full((4, r, r, 3), 255, np.uint8)
    real[:, 8:24, 8:24] = (60, 60, 60)            # a grey object on white
    drawn = np.full((3, r, r), 1.0, np.float32)
    drawn[:, 4:28, 10:20] = -0.5                   # G1 draws a taller, lighter one
    G1 = lambda z, c: torch.from_numpy(np.repeat(drawn[None], len(z), 0))  # noqa: E731
    mix = PairMix(recolour=0, reshape=0, differ=0, empty=0, object=1.0, p_generated_object=p_gen)
    batcher = PairBatcher(real, np.zeros((4, r, r), bool), G1, 8, empty(), mix, "cpu")
    pairs = batcher.pairs(np.arange(4), np.random.default_rng(0))
    heights = {int(np.ptp(np.argwhere((p.source != 255).any(-1))[:, 0])) for p in pairs}  # feathered: up to 2 px more
    assert all(h >= 22 for h in heights) if p_gen else all(h <= 19 for h in heights)


def test_keep_unchanged_gives_back_what_g2_barely_moved():
    """A faint tint (~3 ΔE) goes, a recoloured block stays, a stroke pixel always takes G2's output;
    with keep 0 the U-Net's output is untouched (the layer is off)."""
    from neuedit.nn.nets import EditUNet, keep_unchanged
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32) * 1.2 - 0.6
    out = image + 0.02                                    # a tint over everything
    out[:, :, 8:20, 8:20] = torch.tensor([0.9, -0.8, -0.8])[:, None, None]  # a region painted red
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 28, 28] = 1.0                              # a stroke pixel in the tinted part
    got = keep_unchanged(image, out, mask, 12.0)
    assert torch.allclose(got[:, :, 24:27, 2:8], image[:, :, 24:27, 2:8])      # the tint: the input's pixels
    assert torch.allclose(got[:, :, 11:17, 11:17], out[:, :, 11:17, 11:17])    # the recolour: G2's
    assert torch.allclose(got[0, :, 28, 28], out[0, :, 28, 28])                 # the stroke: G2's
    g2 = EditUNet(32, chans=(8, 16), n_res=1).eval()
    with torch.no_grad():
        for p in g2.out.parameters():
            p.normal_(0, 0.3)
    g2k = EditUNet(32, chans=(8, 16), n_res=1, keep=12.0).eval()
    g2k.load_state_dict(g2.state_dict())
    sk = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = g2(image, sk, mask), g2k(image, sk, mask)
    assert not torch.allclose(a, b)
    assert torch.allclose(b, keep_unchanged(image, a, mask, 12.0))
