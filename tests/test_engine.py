"""The torch-free ONNX Runtime engine."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

from neuedit.data.datasets import image_to_model as resize_image  # noqa: F401
from neuedit.runtime.editor import Editor
from neuedit.runtime.engine import EngineError, OnnxBackend
from neuedit.runtime.state import EditConfig, sample_state


@pytest.fixture(params=["labels", "empty"])
def exported(request):
    return request.getfixturevalue("tiny_exported" if request.param == "labels" else "tiny_exported_empty")


@pytest.fixture
def strokes():
    rng = np.random.default_rng(5)
    sketch = rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    mask = np.zeros((1, 1, 16, 16), np.float32)
    mask[..., 4:9, 3:12] = 1
    return sketch * mask, mask


def _copy(b, tmp_path):
    return shutil.copytree(b.path, tmp_path / b.path.name)


def test_import_does_not_import_torch():
    code = "import neuedit.runtime.engine, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_engine_properties(exported):
    e = Editor.load(exported.path, threads=1)
    assert e.provider == "CPUExecutionProvider"
    assert e.methods == ["two-stage", "latent"]
    assert (e.z_dim, e.c_dim, e.resolution, e.name) == (exported.z_dim, exported.c_dim, 16, exported.name)
    assert e.schema.c_dim == exported.c_dim


def test_generate_matches_pytorch(exported):
    import torch
    from neuedit.nn.weights import load_module
    e = Editor.load(exported.path)
    st = sample_state(3, e.z_dim, e.schema, np.random.default_rng(0))
    img = e.generate(st.z, st.c)
    assert img.shape == (3, 3, 16, 16) and img.dtype == np.float32
    assert img.min() >= -1 and img.max() <= 1
    with torch.no_grad():
        ref = load_module(exported, "g1")(torch.from_numpy(st.z), torch.from_numpy(st.c)).numpy()
    np.testing.assert_allclose(img, ref, atol=1e-5)
    with pytest.raises(ValueError, match="z must be"):
        e.generate(st.z[:, :-1], st.c)


def test_two_stage_edit_matches_pytorch(exported, strokes):
    import torch
    from neuedit.nn.weights import load_module
    e = Editor.load(exported.path)
    sketch, mask = strokes
    st = sample_state(2, e.z_dim, e.schema, np.random.default_rng(1))
    out = e.two_stage(st, sketch, mask)  # a state: G1 first, sketch broadcast from 1 to N
    with torch.no_grad():
        g1, g2 = load_module(exported, "g1"), load_module(exported, "g2")
        src = g1(torch.from_numpy(st.z), torch.from_numpy(st.c))
        ref = g2(src, torch.from_numpy(sketch).expand(2, -1, -1, -1), torch.from_numpy(mask).expand(2, -1, -1, -1))
    assert out.shape == (2, 3, 16, 16)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5)
    # an image source (a photo) gives the same when it is G1's picture
    np.testing.assert_allclose(e.two_stage(src.numpy(), sketch, mask), out, atol=1e-5)
    with pytest.raises(ValueError, match="sketch"):
        e.two_stage(src.numpy(), sketch[:, :, :8], mask)


@pytest.mark.parametrize("cfg", [EditConfig("gd", steps=5, paste=0.0), EditConfig("adam", lr=0.05, steps=5),
                                 EditConfig("adam", lr=0.05, steps=5, anchor=0.2, edit_c=False, project_c=True),
                                 EditConfig(steps=5)],
                         ids=["gd", "adam", "adam-anchor-frozen-c", "default"])
def test_latent_edit_reproduces_pytorch_editor(exported, strokes, cfg):
    e = Editor.load(exported.path)
    ed = Editor.load(exported, backend="torch")
    sketch, mask = strokes
    st = sample_state(2, e.z_dim, e.schema, np.random.default_rng(2))
    r = e.latent(st, sketch, mask, cfg, 5)
    new, image, dist, trace = r.state, r.image, r.dist, r.trace
    ref = ed.latent(st, sketch, mask, cfg)
    assert np.abs(new.z - st.z).max() > 1e-3 or cfg.step_sizes(e.c_dim)[0] == 0  # the edit moved z
    assert np.abs(new.c - st.c).max(initial=0) > 1e-3 or not (cfg.edit_c and e.c_dim)  # and c
    np.testing.assert_allclose(new.z, ref.state.z, atol=1e-4)
    np.testing.assert_allclose(new.c, ref.state.c, atol=1e-4)
    np.testing.assert_allclose(image, ref.image, atol=1e-4)
    np.testing.assert_allclose(dist, ref.dist, atol=1e-5)
    assert trace.shape == (6, 2)
    np.testing.assert_allclose(trace, ref.trace, atol=1e-5)
    assert new.t == ref.state.t and (new.m is None) == (ref.state.m is None)
    if cfg.optimizer == "adam":
        np.testing.assert_allclose(new.m, ref.state.m, atol=1e-6)
        # the moments travel in the state: three more steps continue the same optimisation
        cont = EditConfig("adam", lr=cfg.lr, steps=3, anchor=cfg.anchor, edit_c=cfg.edit_c)
        new2 = e.latent(new, sketch, mask, cont, 3).state
        ref2 = ed.latent(ref.state, sketch, mask, cont)
        assert new2.t == 8
        np.testing.assert_allclose(new2.z, ref2.state.z, atol=1e-4)
    if not cfg.edit_c and e.c_dim:
        np.testing.assert_allclose(new.c, e.schema.project(st.c), atol=2e-4)  # c~ is logit of c clipped to 1e-4


def test_photo_projection_is_the_same_on_both_backends(exported):
    """The editing core's projection runs torch-free on the engine, step for step as on PyTorch."""
    e = Editor.load(exported.path)
    photos = e.generate(*(lambda s: (s.z, s.c))(sample_state(2, e.z_dim, e.schema, np.random.default_rng(4))))
    got = e.project(photos, 15, rng=np.random.default_rng(0), candidates=4)
    ref = Editor.load(exported, backend="torch", g2=False).project(photos, 15, rng=np.random.default_rng(0),
                                                                   candidates=4)
    assert got.trace.shape == (16, 2) and (got.trace[-1] < got.trace[0]).all()  # it reconstructs better
    np.testing.assert_allclose(got.state.z, ref.state.z, atol=1e-4)
    np.testing.assert_allclose(got.dist, ref.dist, atol=1e-5)


def test_latent_edit_zero_steps_renders_the_state(tiny_exported, strokes):
    e = Editor.load(tiny_exported.path)
    st = sample_state(1, e.z_dim, e.schema, np.random.default_rng(3))
    r = e.latent(st, *strokes, steps=0)
    new, image, trace = r.state, r.image, r.trace
    assert trace.shape == (1, 1)
    np.testing.assert_allclose(image, e.generate(new.z, new.c), atol=1e-6)
    np.testing.assert_allclose(new.z, st.z, atol=1e-6)  # c moves by the 1e-4 clip of its logit only
    np.testing.assert_allclose(new.c, st.c, atol=2e-4)


def test_garbage_and_truncated_onnx_refused(tiny_exported, tmp_path):
    p = _copy(tiny_exported, tmp_path)
    (p / "g2.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(EngineError, match="g2.onnx"):
        OnnxBackend(p)
    data = (tiny_exported.path / "latent_step.onnx").read_bytes()
    shutil.copy(tiny_exported.path / "g2.onnx", p / "g2.onnx")
    (p / "latent_step.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(EngineError, match="latent_step.onnx"):
        OnnxBackend(p)


def test_missing_onnx_refused(tiny_exported, tiny_bundle, tmp_path):
    p = _copy(tiny_exported, tmp_path)
    (p / "g1.onnx").unlink()
    with pytest.raises(EngineError, match="g1.onnx"):
        OnnxBackend(p)
    with pytest.raises(EngineError, match="export"):
        OnnxBackend(tiny_bundle.path)  # never exported


def test_onnx_from_another_bundle_refused(tiny_exported, tiny_exported_empty, tmp_path):
    p = _copy(tiny_exported, tmp_path)
    shutil.copy(tiny_exported_empty.path / "latent_step.onnx", p / "latent_step.onnx")
    with pytest.raises(EngineError, match="latent_step.onnx.*different model"):
        OnnxBackend(p)
    # the right graph under the wrong name
    p2 = _copy(tiny_exported_empty, tmp_path / "x")
    shutil.copy(p2 / "g1.onnx", p2 / "g2.onnx")
    with pytest.raises(EngineError, match="g2.onnx"):
        OnnxBackend(p2)


def test_onnx_of_other_weights_refused(tiny_exported, tmp_path):
    """Same architecture, retrained (or another seed's) weights: the graph is stale."""
    from neuedit.nn.testing import make_random_bundle
    other = make_random_bundle(tmp_path / "other", seed=7)
    p = _copy(tiny_exported, tmp_path)
    shutil.copy(other.path / "g1.safetensors", p / "g1.safetensors")
    with pytest.raises(EngineError, match="g1.onnx.*other weights"):
        OnnxBackend(p)


def test_unavailable_provider_refused(tiny_exported):
    with pytest.raises(EngineError, match="not available"):
        OnnxBackend(tiny_exported.path, providers="NoSuchExecutionProvider")
    assert Editor.load(tiny_exported.path, providers="cpu").provider == "CPUExecutionProvider"


def test_resize_image():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (90, 60, 3), dtype=np.uint8)
    out = resize_image(photo, 16)
    assert out.shape == (3, 16, 16) and out.dtype == np.float32
    assert -1 <= out.min() and out.max() <= 1
    flat = np.full((40, 80, 3), 255, np.uint8)
    flat[:, :20] = 0  # outside the centre crop
    np.testing.assert_allclose(resize_image(flat, 16), 1.0, atol=1e-6)
    same = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(resize_image(same, 16), np.moveaxis(same, -1, 0) / 127.5 - 1, atol=1e-6)
    assert resize_image(same[..., 0], 8).shape == (3, 8, 8)
    with pytest.raises(ValueError):
        resize_image(np.zeros((4, 4, 2), np.uint8), 8)


def test_projection_starts_from_the_encoder_on_both_backends(exported):
    """With an encoder in the bundle, zero refinement steps give exactly its guess (ONNX = PyTorch),
    and the guess is not what the random-start search would pick."""
    import torch
    from neuedit.nn.weights import load_module
    e = Editor.load(exported.path)
    photos = e.render(sample_state(3, e.z_dim, e.schema, np.random.default_rng(7)))
    got = e.project(photos)  # the default with an encoder: no refinement steps
    z_t, _, r = load_module(exported, "e")(torch.from_numpy(photos))
    np.testing.assert_allclose(got.state.z, np.tanh(z_t.numpy()), atol=1e-5)
    np.testing.assert_allclose(got.state.r, r.numpy().reshape(3, -1), atol=1e-5)
    assert np.abs(got.state.r).max() > 1e-3  # the tiny encoder's detail is not zero...
    np.testing.assert_allclose(got.image, e.backend.generate_detail(got.state.z, got.state.c, r.numpy()), atol=1e-4)
    assert np.abs(got.image - e.generate(got.state.z, got.state.c)).max() > 1e-3  # ...and it is drawn
    ref = Editor.load(exported, backend="torch").project(photos, 0)
    np.testing.assert_allclose(got.state.z, ref.state.z, atol=1e-5)
    np.testing.assert_allclose(got.state.c, ref.state.c, atol=1e-5)
    np.testing.assert_allclose(got.image, ref.image, atol=1e-4)
    random_start = e.project(photos, 0, encoder=False)
    assert np.abs(random_start.state.z - got.state.z).max() > 1e-2
