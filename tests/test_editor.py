import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.nn.backend import TorchBackend
from neuedit.runtime.editor import Editor
from neuedit.runtime.sketch import SketchError, decode_png, dist, from_rgb, from_rgba
from neuedit.runtime.state import EditConfig, EditState, StateError, group_matrix, sample_state


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_black_stroke_from_alpha_and_the_report_convention():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2, 3] = [0, 0, 0, 255]  # a black stroke pixel: invisible under the RGB-only non-zero rule
    sketch, mask = decode_png(_png(rgba), 8)
    assert mask.sum() == 1 and mask[0, 2, 3] == 1 and np.all(sketch[:, 2, 3] == -1)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[1, 1] = [255, 0, 0]
    s2, m2 = from_rgb(rgb, 8)
    assert m2.sum() == 1 and s2[0, 1, 1] == 1 and s2[1, 1, 1] == -1
    # resizing a larger sketch: a drawn 2x2 block becomes one stroke pixel of its colour
    big = np.zeros((16, 16, 4), np.uint8)
    big[4:6, 4:6] = [255, 255, 255, 255]
    s3, m3 = from_rgba(big, 8)
    assert m3[0, 2, 2] == 1 and m3.sum() == 1 and np.allclose(s3[:, 2, 2], 1)
    with pytest.raises(SketchError):
        decode_png(b"definitely not a png", 8)


def test_dist_by_hand_numpy():
    image = np.zeros((1, 3, 2, 2), np.float32)
    sketch = np.full((1, 3, 2, 2), -1.0, np.float32)
    mask = np.zeros((1, 1, 2, 2), np.float32)
    mask[..., 0, 0] = 1
    assert dist(image, sketch, mask)[0] == pytest.approx(1.5)


def _sketch_box(r, colour, box):
    sketch = np.zeros((3, r, r), np.float32)
    mask = np.zeros((1, r, r), np.float32)
    y0, y1, x0, x1 = box
    mask[:, y0:y1, x0:x1] = 1
    sketch[:, y0:y1, x0:x1] = np.asarray(colour, np.float32)[:, None, None]
    return sketch, mask


def test_gd_with_small_lr_decreases_dist_monotonically(trained_tiny_bundle):
    G = load_module(trained_tiny_bundle, "g1")
    ed = Editor(TorchBackend(G, None, trained_tiny_bundle.schema))
    st = sample_state(1, 16, trained_tiny_bundle.schema, np.random.default_rng(0))
    sketch, mask = _sketch_box(16, [1.0, -1.0, -1.0], (2, 8, 2, 8))
    r = ed.latent(st, sketch, mask, EditConfig(optimizer="gd", lr=0.05, steps=8, paste=0.0))  # the steps alone
    assert np.all(np.diff(r.trace[:, 0]) < 0), r.trace[:, 0]


def test_state_stays_in_range_after_many_large_steps(tiny_bundle):
    ed = Editor.load(tiny_bundle, backend="torch", g2=False)
    st = sample_state(2, 16, tiny_bundle.schema, np.random.default_rng(1))
    sketch, mask = _sketch_box(16, [1.0, 1.0, -1.0], (0, 16, 0, 16))
    for opt in ("gd", "adam"):
        r = ed.latent(st, sketch, mask, EditConfig(optimizer=opt, lr=500.0, steps=20))
        assert np.all(np.abs(r.state.z) < 1) and np.all((r.state.c >= 0) & (r.state.c <= 1))
        assert np.isfinite(r.image).all()
        r.state.validate(16, 25)


def test_state_json_round_trip_is_bit_exact(tiny_bundle):
    ed = Editor.load(tiny_bundle, backend="torch", g2=False)
    st = sample_state(1, 16, tiny_bundle.schema, np.random.default_rng(2))
    sketch, mask = _sketch_box(16, [0.0, 0.5, 1.0], (4, 9, 4, 9))
    r = ed.latent(st, sketch, mask, EditConfig(optimizer="adam", steps=3))
    back = EditState.from_json(json.dumps(json.loads(r.state.to_json())))
    for k in ("z", "c", "m", "v"):
        assert np.array_equal(getattr(back, k), getattr(r.state, k)) and getattr(back, k).dtype == np.float32
    assert back.t == r.state.t == 3
    # continuing from the JSON equals continuing from the object (Adam moments carried over)
    a = ed.latent(back, sketch, mask, EditConfig(optimizer="adam", steps=2))
    b = ed.latent(r.state, sketch, mask, EditConfig(optimizer="adam", steps=2))
    assert np.array_equal(a.state.z, b.state.z)


def test_bad_states_are_refused():
    with pytest.raises(StateError):
        EditState(np.full((1, 4), 1.0), np.zeros((1, 2))).validate(4, 2)
    with pytest.raises(StateError):
        EditState(np.zeros((1, 3)), np.zeros((1, 2))).validate(4, 2)
    with pytest.raises(StateError):
        EditState(np.array([[np.nan, 0, 0, 0]]), np.zeros((1, 2))).validate(4, 2)
    with pytest.raises(StateError):
        EditState.from_dict({"z": ["a"], "c": []})
    schema = __import__("neuedit.runtime.schema").runtime.schema.anime_faces()
    st = sample_state(100, 8, schema, np.random.default_rng(0))
    assert np.isfinite(st.z_tilde()).all() and np.isfinite(st.c_tilde(group_matrix(schema))).all()


def test_edit_pulls_a_region_toward_a_colour_and_leaves_the_rest(trained_tiny_bundle):
    G = load_module(trained_tiny_bundle, "g1")
    ed = Editor(TorchBackend(G, None, trained_tiny_bundle.schema))
    st = sample_state(4, 16, trained_tiny_bundle.schema, np.random.default_rng(5))
    before = ed.render(st)
    colour = np.array([1.0, -1.0, -1.0], np.float32)  # pure red over the top-left
    sketch, mask = _sketch_box(16, colour, (0, 6, 0, 6))
    r = ed.latent(st, sketch, mask, EditConfig(optimizer="adam", lr=0.05, steps=40))
    m = mask[0].astype(bool)
    d_before = np.abs(before[:, :, m] - colour[None, :, None]).mean()
    d_after = np.abs(r.image[:, :, m] - colour[None, :, None]).mean()
    assert d_after < d_before - 0.05, (d_before, d_after)
    change_in = np.abs(r.image - before)[:, :, m].mean()
    change_out = np.abs(r.image - before)[:, :, ~m].mean()
    assert change_out < change_in


def test_restarts_keep_the_best(trained_tiny_bundle):
    ed = Editor.load(trained_tiny_bundle, backend="torch", g2=False)
    st = sample_state(1, 16, trained_tiny_bundle.schema, np.random.default_rng(9))
    sketch, mask = _sketch_box(16, [-1.0, -1.0, 1.0], (8, 16, 8, 16))
    one = ed.latent(st, sketch, mask, EditConfig(optimizer="adam", steps=5))
    best = ed.latent(st, sketch, mask, EditConfig(optimizer="adam", steps=5, restarts=4), rng=np.random.default_rng(0))
    assert best.dist[0] <= one.dist[0]


def test_cli_writes_image_state_and_frames(tmp_path, trained_tiny_bundle):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:10, :10] = [0, 0, 0, 255]
    (tmp_path / "s.png").write_bytes(_png(rgba))
    cmd = [sys.executable, "-m", "neuedit.cli.main", "edit", "--bundle", str(trained_tiny_bundle.path),
           "--sketch", str(tmp_path / "s.png"), "--steps", "3", "--out", str(tmp_path / "o.png"),
           "--frames", str(tmp_path / "frames")]
    subprocess.run(cmd, check=True, capture_output=True)
    assert Image.open(tmp_path / "o.png").size == (16, 16)
    st = EditState.from_json((tmp_path / "o.json").read_text())
    assert st.z.shape == (1, 16)
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4
    bad = subprocess.run(cmd[:-2] + ["--state", str(tmp_path / "s.png")], capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_a_photo_latent_edit_returns_the_photo_where_the_edit_changed_nothing(trained_tiny_bundle):
    ed = Editor.load(trained_tiny_bundle, backend="torch")
    R = ed.resolution
    rng = np.random.default_rng(0)  # a "photo": dark hair over the top third, light skin below, some noise
    photo = np.empty((2, 3, R, R), np.float32)
    photo[:, :, : R // 3], photo[:, :, R // 3:] = -0.6, 0.7
    photo = np.clip(photo + rng.normal(0, 0.03, photo.shape), -1, 1).astype(np.float32)
    sketch, mask = np.zeros((2, 3, R, R), np.float32), np.zeros((2, 1, R, R), np.float32)
    sketch[:, 0, 2:5, 3:12], mask[:, :, 2:5, 3:12] = 0.9, 1.0  # a red bar near the top
    res = ed.latent_photo(photo, sketch, mask, EditConfig(lr=0.05), steps=5, project_steps=5)
    changed = np.abs(res.image - photo).max(1)  # [N, R, R]
    assert changed[:, 2:5, 3:12].min() > 0  # the strokes' pixels took the change
    assert (changed == 0).mean() > 0.3  # elsewhere mostly the photo's exact pixels
    assert res.state.z0 is not None and not np.array_equal(res.state.z, res.state.z0)
    # continuing from the returned state: no new projection, the same starting point
    more = ed.latent_photo(photo, sketch, mask, EditConfig(lr=0.05), steps=2, state=res.state)
    np.testing.assert_array_equal(more.state.z0, res.state.z0)
    assert (np.abs(more.image - photo).max(1) == 0).mean() > 0.3
    # without paste the change goes everywhere (Neural Photo Editor's unmasked transfer)
    whole = ed.latent_photo(photo[:1], sketch[:1], mask[:1], EditConfig(lr=0.05, paste=0.0), steps=5, state=res.state.row(0))
    assert (np.abs(whole.image - photo[:1]).max(1) == 0).mean() < 0.3


@pytest.mark.parametrize("which", ["trained_tiny_bundle", "tiny_exported"])  # without / with a photo encoder
def test_cli_edits_a_photo_with_the_latent_editor_and_continues(tmp_path, which, request):
    bundle = request.getfixturevalue(which)
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[2:6, 4:28] = [230, 40, 40, 255]
    (tmp_path / "s.png").write_bytes(_png(rgba))
    photo = np.full((40, 40, 3), 200, np.uint8)
    photo[:14] = [40, 30, 20]
    Image.fromarray(photo).save(tmp_path / "p.png")
    cmd = [sys.executable, "-m", "neuedit.cli.main", "edit", "--bundle", str(bundle.path),
           "--sketch", str(tmp_path / "s.png"), "--image", str(tmp_path / "p.png"), "--steps", "2"]
    subprocess.run(cmd + ["--out", str(tmp_path / "o.png")], check=True, capture_output=True)
    st = EditState.from_json((tmp_path / "o.json").read_text())
    assert st.z0 is not None and Image.open(tmp_path / "o.png").size == (16, 16)
    assert (st.r is not None) == (which == "tiny_exported")  # the photo's detail map travels in the state
    subprocess.run(cmd + ["--out", str(tmp_path / "o2.png"), "--state", str(tmp_path / "o.json")], check=True,
                   capture_output=True)
    assert EditState.from_json((tmp_path / "o2.json").read_text()).z0.tolist() == st.z0.tolist()  # continued


def test_a_model_without_an_encoder_projects_from_random_starts(tmp_path):
    """No photo encoder: projection falls back to the best random start + steps, /api/models says so,
    and a photo's detail map r is refused, clearly."""
    from neuedit.nn.testing import make_random_bundle
    from neuedit.server.api import describe
    from neuedit.runtime.state import StateError
    plain = Editor.load(make_random_bundle(tmp_path / "plain", with_e=False), backend="torch")
    assert not plain.has_encoder and describe(plain)["projection"] == "random starts + steps"
    assert describe(plain)["detail"] is None
    res = plain.project(plain.render(plain.sample(1, seed=3)))
    assert res.state.r is None and res.trace.shape[0] == 101  # PROJECT_STEPS steps
    with_e = Editor.load(make_random_bundle(tmp_path / "e"), backend="torch")
    assert describe(with_e)["projection"] == "encoder" and describe(with_e)["detail"] == {"channels": 16, "size": 8}
    st = with_e.project(plain.render(plain.sample(1, seed=3))).state
    with pytest.raises(StateError, match="photo encoder"):
        plain.render(st)


def test_a_photo_state_round_trips_through_json_and_keeps_its_picture(trained_tiny_bundle, tmp_path):
    from neuedit.nn.testing import make_random_bundle
    ed = Editor.load(make_random_bundle(tmp_path / "e"), backend="torch")
    photo = ed.render(ed.sample(2, seed=1))
    st = ed.project(photo).state
    back = EditState.from_json(st.to_json())
    np.testing.assert_array_equal(back.r, st.r)
    np.testing.assert_array_equal(ed.render(back), ed.render(st))
    assert np.abs(ed.render(st) - ed.generate(st.z, st.c)).max() > 1e-3  # r is drawn
    np.testing.assert_array_equal(st.row(1).r, st.r[1:])
    assert st.r.shape == (2, 16 * 8 * 8)  # flat per row, like z
    bad = EditState.from_dict({**st.row(0).to_dict(), "r": st.r[:1, :-1].tolist()})
    with pytest.raises(ValueError, match="r must have 1024 values"):
        bad.validate(ed.z_dim, ed.c_dim, ed.detail)
