"""The semantic-edit benchmark's measures (`neuedit.compare.semantic`) and the latent editor's c
parameterisation they judge."""
import json

import numpy as np
import pytest

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.compare import semantic as S
from neuedit.runtime.schema import anime_faces
from neuedit.runtime.state import C_EPS, EditState, c_from_logits, c_logits, group_matrix, sample_state


# ---- c as logits of a softmax per exclusive group --------------------------------------------------
def test_group_softmax_round_trips_and_matches_torch():
    import torch
    from neuedit.nn.backend import group_softmax
    schema = anime_faces()
    groups = group_matrix(schema)
    st = sample_state(64, 8, schema, np.random.default_rng(0))
    # soft values inside the clamp range come back as they were
    c = c_from_logits(np.random.default_rng(3).uniform(0, 3, st.c.shape), groups)
    assert c.min() > C_EPS
    c_back = c_from_logits(c_logits(c, groups), groups)
    np.testing.assert_allclose(c_back, c, atol=1e-5)
    # each exclusive group sums to at most 1 (the rest is the "none" slot)
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 8, (64, schema.c_dim)).astype(np.float32)
    c2 = c_from_logits(logits, groups)
    for g, s in schema.slices():
        if g.exclusive:
            assert (c2[:, s].sum(1) <= 1 + 1e-6).all()
    np.testing.assert_allclose(group_softmax(torch.from_numpy(logits), torch.from_numpy(groups)).numpy(), c2, atol=1e-6)
    # a one-hot hair colour starts a few Adam steps (of 0.5) from another: logits ~ 5.8 and 0
    l1 = c_logits(st.c, groups)
    assert np.abs(l1).max() < 6.0


def test_a_stepped_state_round_trips_through_json():
    schema = anime_faces()
    groups = group_matrix(schema)
    rng = np.random.default_rng(2)
    st = EditState.from_tilde(rng.normal(0, 1, (3, 8)), rng.uniform(0, 3, (3, schema.c_dim)), groups)
    back = EditState.from_dict(json.loads(json.dumps(st.to_dict())))
    assert np.array_equal(back.c, st.c) and np.array_equal(back.z, st.z)
    np.testing.assert_allclose(c_from_logits(back.c_tilde(groups), groups), st.c, atol=1e-5)


# ---- the measures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def anime():
    from neuedit.nn.backend import TorchBackend
    b = bundle_mod.read(next(p for p in bundle_mod.shipped() if p.name == "anime"))
    return b, TorchBackend(load_module(b, "g1"), None, b.schema)


@pytest.fixture(scope="module")
def judge(anime, data_dir):
    """A small evaluation classifier trained on real labelled faces (the benchmark trains a bigger one)."""
    from neuedit.evaluation import classifier as clf
    from neuedit.data.datasets import DataConfig, load_dataset
    b, _ = anime
    train = load_dataset(DataConfig(str(data_dir / "anime-faces"), 64, limit=3000, flip=False), b.schema)
    net = clf.train_classifier(train.images, train.c, b.schema, clf.ClassifierConfig(steps=300, batch=64, width=16))
    return lambda x: clf.embed(net, x)[1]


def _hair_tasks(anime, n=48, seed=0):
    b, be = anime
    palette = {"blonde": np.array([235, 205, 120], np.uint8), "blue": np.array([70, 100, 200], np.uint8),
               "black": np.array([40, 35, 45], np.uint8), "pink": np.array([240, 160, 190], np.uint8)}
    return S.anime_tasks("hair", "sample", n, be.generate, b.z_dim, b.schema, palette, np.random.default_rng(seed))


def test_hair_success_fails_an_editor_that_changes_nothing_and_passes_the_ideal_edit(anime, judge):
    b, be = anime
    t = _hair_tasks(anime)
    g, s = next((g, s) for g, s in b.schema.slices() if g.name == "hair_colour")
    c2 = t.state.c.copy()
    c2[:, s] = 0.0
    c2[np.arange(len(t)), s.start + np.asarray(t.target)] = 1.0
    ideal = be.generate(t.state.z, c2)
    unchanged = S.score(t, t.source, judge, b.schema)
    perfect = S.score(t, ideal, judge, b.schema)
    # painting only the strokes is no edit: they are put back from the source before judging
    painted = S.score(t, t.source * (1 - t.mask) + t.sketch * t.mask, judge, b.schema)
    assert unchanged["success"].mean() < 0.2 and painted["success"].mean() < 0.25
    assert perfect["success"].mean() > unchanged["success"].mean() + 0.3, (perfect["success"].mean(),
                                                                           unchanged["success"].mean())
    assert unchanged["centre_ssim"].min() == pytest.approx(1.0)
    assert perfect["centre_ssim"].mean() < 1.0


def test_hair_strokes_are_brushes_on_the_top_of_the_head(anime):
    t = _hair_tasks(anime, n=16)
    m = t.mask[:, 0] > 0
    r = m.shape[-1]
    assert m.any(axis=(1, 2)).all()
    assert not m[:, int(S.UPPER * r):].any()                  # the top 40 % only
    assert 0.01 < m.mean(axis=(1, 2)).mean() < 0.12            # a few strokes, not a fill
    # every stroke pixel holds the requested colour
    col = t.sketch.transpose(0, 2, 3, 1)[m]
    assert np.abs(col - (np.repeat(t.colour, m.sum(axis=(1, 2)), 0) / 127.5 - 1)).max() < 0.01


def test_object_success_is_the_objects_colour_halving_toward_the_stroke(data_dir):
    from neuedit.data.datasets import DataConfig, load_dataset, to_unit_range
    from neuedit.runtime.schema import empty
    photos = to_unit_range(load_dataset(DataConfig(str(data_dir / "shoes" / "val"), 64, layout="pair", limit=16,
                                                   flip=False), empty()).images)
    t = S.object_tasks("real", 16, photos, np.random.default_rng(0))
    unchanged = S.score(t, t.source)
    # the ideal recolour: the object takes the colour, shading kept (lightness of the source)
    reg = t.extra["region"][:, None]
    col = (t.colour.astype(np.float32) / 127.5 - 1)[:, :, None, None]
    recoloured = np.where(reg, np.clip(col + 0.15 * (t.source - t.source.mean((1, 2, 3), keepdims=True)), -1, 1),
                          t.source)
    ideal = S.score(t, recoloured)
    assert unchanged["success"].mean() == 0.0 and ideal["success"].mean() > 0.9
    # the benchmark's reference row: the object moved to the stroke colour in Lab, the rest untouched
    lab_moved = S.ideal_recolour(t)
    far = np.repeat(~np.stack([S.dilate(r, 5) for r in t.extra["region"]])[:, None], 3, 1)  # beyond the feather
    assert S.score(t, lab_moved)["success"].mean() > 0.8 and np.array_equal(lab_moved[far], t.source[far])
    assert unchanged["edge_f1"].min() == pytest.approx(1.0)
    moved = np.roll(t.source, 8, axis=-1)  # the same product 8 px to the side: its edges are not kept
    assert np.nan_to_num(S.score(t, moved)["edge_f1"]).mean() < 0.5


def test_paste_keeps_the_pictures_own_pixels_where_the_strokes_are_not_about(anime):
    from neuedit.runtime import editing
    b, be = anime
    t = _hair_tasks(anime, n=8)
    changed = np.clip(t.source + 0.5, -1, 1)             # G1 changed everything
    out = editing.paste(t.source, changed, t.mask, 25.0)
    w = editing.paste_region(t.source, t.mask, changed, 25.0)
    assert ((w == 0) <= (out == t.source).all(1, keepdims=True)).all()  # weight 0: the source's exact pixels
    assert (w[t.mask > 0] > 0.9).mean() > 0.9                           # under the strokes it takes the change
    assert 0.02 < (w > 0.5).mean() < 0.7                                # a region, not the whole picture
    # where G1 changed nothing, nothing changes
    assert np.array_equal(editing.paste(t.source, t.source.copy(), t.mask, 25.0), t.source)


def test_the_servers_numpy_lab_matches_scikit_image():
    from skimage.color import rgb2lab
    from neuedit.runtime import editing
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    ref = rgb2lab((x.transpose(0, 2, 3, 1) + 1) / 2)
    np.testing.assert_allclose(editing._lab(x), ref, atol=0.3)


# ---- the benchmark through the comparison's runner, on a tiny bundle ---------------------------------
def test_the_semantic_kind_runs_every_editor_on_every_batch_and_writes_the_report(tiny_bundle, tmp_path):
    from neuedit.compare.kind_semantic import IDEAL, IDEAL_OBJECT, Semantic, SemanticConfig, semantic_editors, semantic_tasks
    from neuedit.compare.run import run
    from neuedit.runtime.editor import Editor
    from neuedit.runtime.state import EditConfig
    editor = Editor.load(tiny_bundle, backend="torch")
    w = np.random.default_rng(0).normal(0, 0.05, (3 * 16 * 16, tiny_bundle.c_dim)).astype(np.float32)
    judge = lambda x: x.reshape(len(x), -1) @ w  # noqa: E731  (a stand-in classifier: logits [N, C])
    features = lambda x: x.reshape(len(x), -1)[:, ::32]  # noqa: E731
    photos = np.random.default_rng(1).uniform(-1, 1, (6, 3, 16, 16)).astype(np.float32)
    cfg = SemanticConfig(kinds=("hair", "object"), n=3, project_steps=2, boot=50,
                         figure=("latent default, 2 steps", "two-stage"))
    palettes = {"hair": {"blonde": np.array([235, 205, 120], np.uint8), "blue": np.array([70, 100, 200], np.uint8)},
                "eyes": {}}
    batches = semantic_tasks(cfg, editor, photos[:3], palettes)
    assert [(t.kind, t.origin, len(t)) for t in batches] == [("hair", "sample", 3), ("hair", "real", 3),
                                                             ("object", "sample", 3), ("object", "real", 3)]
    editors = semantic_editors(editor, {"default": (EditConfig(), (2,))}, cfg.project_steps)
    report = run(Semantic(tiny_bundle, editor, batches, editors, judge, features, photos[3:], cfg), tmp_path,
                 progress=False)
    two = ["two-stage", "two-stage, paste 25"]
    want = {"hair / sample": ["unedited", IDEAL] + two + ["latent default, 2 steps"], "hair / real": ["unedited"] + two,
            "object / sample": ["unedited", IDEAL_OBJECT] + two + ["latent default, 2 steps"],
            "object / real": ["unedited", IDEAL_OBJECT] + two}
    table = report.summary["table"]
    assert [(r["task"], r["editor"]) for r in table] == [(k, e) for k, es in want.items() for e in es]
    for r, t in zip([r for r in table if r["editor"] == "unedited"], batches):  # no edit: the source's own scores
        assert r["n"] == 3 and r["KID"] == r["KID source"]
        assert r["success %"] == pytest.approx(100 * S.score(t, t.source, judge, tiny_bundle.schema)["success"].mean())
        assert r["edge F1"] == 1 if t.kind == "object" else r["centre SSIM"] == pytest.approx(1.0)
    assert all(r["ms/edit"] > 0 for r in table if r["editor"] != "unedited")
    for f in ("config.json", "results.csv", "summary.md", "summary.json", "semantic.json"):
        assert (tmp_path / f).is_file()
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + 3 * sum(map(len, want.values()))
    assert json.loads((tmp_path / "semantic.json").read_text())[0]["editor"] == "unedited"
    md = (tmp_path / "summary.md").read_text()
    assert all(f"## {k}" in md for k in want) and f"| {IDEAL} |" in md
    from PIL import Image
    with Image.open(tmp_path / "semantic-hair-sample.png") as im:  # original | strokes | latent | two-stage, x2
        assert im.size == (2 * (2 + 4 * 18), 2 * (2 + 3 * 18))
    with Image.open(tmp_path / "semantic-hair-real.png") as im:  # no latent edit of photos by default
        assert im.width == 2 * (2 + 3 * 18)
