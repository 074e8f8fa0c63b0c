"""The demo bundles that ship with the package: load torch-free, generate real-looking images,
and edit toward a stroke's colour."""
import subprocess
import sys

import numpy as np
import pytest

from neuedit.runtime import bundle as bundle_mod

SHIPPED = bundle_mod.shipped()
NAMES = [p.name for p in SHIPPED]


def test_the_three_demo_domains_ship():
    assert {"anime", "shoes", "handbags"} <= set(NAMES)


@pytest.fixture(scope="module", params=SHIPPED, ids=NAMES)
def engine(request):
    from neuedit.runtime.editor import Editor
    return Editor.load(request.param, threads=1)


def test_metadata_and_methods(engine):
    meta = engine.bundle.meta
    assert meta["kind"] == "two-stage" and meta["resolution"] == engine.resolution >= 32
    assert meta["training"]["stage1_step"] > 0 and meta["training"]["stage2_step"] > 0
    assert set(engine.methods) == {"two-stage", "latent"}
    assert engine.schema.c_dim == engine.c_dim


def test_engine_import_pulls_no_torch():
    code = ("import sys, neuedit.runtime.editor, neuedit.runtime.bundle as b; "
            "[neuedit.runtime.editor.Editor.load(p) for p in b.shipped()]; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def _samples(engine, n=16, seed=0):
    from neuedit.runtime.state import sample_state
    st = sample_state(n, engine.z_dim, engine.schema, np.random.default_rng(seed))
    return st, engine.generate(st.z, st.c)


# Held-out real images of each shipped domain (never seen by its stage one).
HELD_OUT = {"anime": ("anime-faces/images", "single", 16000), "shoes": ("shoes/val", "pair", 0),
            "handbags": ("handbags/val", "pair", 0)}
# Handcrafted-feature KID (colour layout, HOG, LBP) of 128 samples against 128 held-out photos.
# The first, blotch-drawing demo generators scored 1.97 (anime), 2.83 (shoes), 1.76 (handbags).
KID_MAX = 0.5


def test_generates_images_not_noise(engine, data_dir):
    _, x = _samples(engine, n=128)
    assert x.shape == (128, 3, engine.resolution, engine.resolution) and np.isfinite(x).all()
    # neighbouring pixels of a real image are strongly correlated; of noise they are not
    a, b = x[..., :, :-1].ravel(), x[..., :, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.8
    # different z give different images
    assert np.abs(x[0] - x[1]).mean() > 0.02
    # and the samples' colour, gradient and texture statistics are those of the domain's photos
    from neuedit.data.datasets import DataConfig, load_dataset, to_uint8
    from neuedit.evaluation.metrics import image_features, kid
    from neuedit.runtime.schema import empty
    folder, layout, skip = HELD_OUT[engine.name]
    real = load_dataset(DataConfig(str(data_dir / folder), engine.resolution, layout=layout, skip=skip, limit=128),
                        empty()).images
    k = kid(image_features(to_uint8(x)), image_features(real), subsets=20)[0]
    assert k < KID_MAX, f"KID {k:.3f} against held-out {engine.name} photos: samples do not look like the domain"


@pytest.fixture(scope="module")
def real_photos(data_dir):
    from neuedit.data.datasets import DataConfig, load_dataset, to_unit_range
    from neuedit.runtime.schema import empty
    return {name: to_unit_range(load_dataset(DataConfig(str(root), 64, layout=layout, limit=8), empty()).images)
            for name, root, layout in [("anime", data_dir / "anime-faces" / "images", "single"),
                                       ("shoes", data_dir / "shoes" / "val", "pair"),
                                       ("handbags", data_dir / "handbags" / "val", "pair")]}


def test_two_stage_colour_edit_moves_the_stroke_region_toward_its_colour(engine, real_photos, request):
    """On real photos of the domain, a red stroke pulls its pixels toward red and leaves the rest:
    for products, the background (a colour stroke on a shoe now recolours the shoe, as asked)."""
    if engine.name == "anime":  # a known regression of the semantic-phase G2, kept visible: it fails
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "the semantic-phase anime G2 reads a block stroke on the face as a hair-colour request and "
            "tints the whole face (README, 'Edits that do what the strokes ask')")))
    before = real_photos[engine.name]
    r = engine.resolution
    colour = np.array([1.0, -1.0, -1.0], np.float32)
    sketch = np.zeros((1, 3, r, r), np.float32)
    mask = np.zeros((1, 1, r, r), np.float32)
    mask[..., 20:42, 20:26] = 1  # a vertical stroke, 6 px wide
    sketch[:] = colour[None, :, None, None] * mask
    after = engine.two_stage(before, sketch, mask)
    m = mask[0, 0].astype(bool)
    d_before = np.abs(before[:, :, m] - colour[None, :, None]).mean()
    d_after = np.abs(after[:, :, m] - colour[None, :, None]).mean()
    assert d_after < 0.95 * d_before, (d_before, d_after)
    # the rest, per photo: a recolour may spread over the stroke's region (the next test asks it to),
    # which on a patterned bag is much of the picture, so the typical photo is judged, not the mean
    if engine.name == "anime":
        rest = np.abs(after - before)[:, :, ~m].mean(axis=(1, 2))
    else:
        from neuedit.data.datasets import to_uint8
        from neuedit.synth.pairs import object_region
        rest = np.array([np.abs(a - b).mean(0)[~object_region(u) & ~m].mean()
                         for a, b, u in zip(after, before, to_uint8(before))])
    assert np.nanmedian(rest) < 0.1, rest  # nan: a product that fills the picture, no background


def test_two_stage_recolour_spreads_over_the_region(engine, data_dir):
    """Held-out photos, a colour region asked to take a new colour with 3 strokes (a pair with a
    known answer): beyond the stroke pixels, the region moves toward its target colour."""
    from neuedit.synth import pairs as P
    from neuedit.data.datasets import DataConfig, load_dataset, to_unit_range
    from neuedit.runtime.schema import empty
    from neuedit.runtime.sketch import from_rgba
    folder, layout, skip = {"anime": ("anime-faces/images", "single", 16000), "shoes": ("shoes/val", "pair", 0),
                            "handbags": ("handbags/val", "pair", 0)}[engine.name]
    photos = load_dataset(DataConfig(str(data_dir / folder), 64, layout=layout, skip=skip, limit=40, flip=False),
                          empty()).images
    rng = np.random.default_rng(0)
    pairs = [P.recolour_request(im, photos, 3, rng) for im in photos[:24]]
    sketch, mask = (np.stack(a) for a in zip(*(from_rgba(p.sketch, 64) for p in pairs)))
    source, target = to_unit_range(np.stack([p.source for p in pairs])), to_unit_range(np.stack([p.target for p in pairs]))
    after = engine.two_stage(source, sketch, mask)
    beyond = np.stack([p.region for p in pairs])[:, None] & (mask == 0)  # the region without the stroke pixels
    d_before = np.abs(source - target).mean(1, keepdims=True)[beyond].mean()
    d_after = np.abs(after - target).mean(1, keepdims=True)[beyond].mean()
    assert d_after < 0.8 * d_before, f"L1 to the target beyond the strokes {d_before:.3f} -> {d_after:.3f}"


def test_one_default_latent_step_moves_the_picture_toward_the_strokes(engine, real_photos):
    """What the page's Submit does with the defaults: a colour stroke over each sample's middle,
    one step; Dist to the strokes falls on every shipped model."""
    from neuedit.runtime.state import EditConfig
    st, before = _samples(engine, n=8, seed=3)
    r = engine.resolution
    mask = np.zeros((1, 1, r, r), np.float32)
    mask[..., r // 4:r // 2, r // 4:3 * r // 4] = 1
    colour = np.array([0.8, -0.8, -0.6], np.float32)
    sketch = colour[None, :, None, None] * mask
    from neuedit.runtime.sketch import dist
    d0 = dist(before, sketch, mask)
    res = engine.latent(st, sketch, mask, EditConfig(), 1)
    assert (res.dist < d0).mean() >= 0.75 and res.dist.mean() < d0.mean(), (d0, res.dist)


def test_every_file_a_shipped_bundle_names_exists():
    for path in SHIPPED:
        meta = bundle_mod.read(path).meta
        named = [meta[k]["weights"] for k in ("g1", "g2", "d") if k in meta]
        named += list(meta.get("onnx", {}).values()) + list(meta.get("files", []))
        assert named, f"{path.name} names no files"
        for f in named:
            assert (path / f).is_file(), f"{path.name}/bundle.json names {f}, which is missing"


@pytest.mark.asyncio
async def test_api_models_reports_the_shipped_training_steps(aiohttp_client):
    from neuedit.server.app import create_app
    from neuedit.server.config import ServerConfig
    client = await aiohttp_client(create_app(ServerConfig(bundles=tuple(str(p) for p in SHIPPED), threads=1)))
    models = {m["name"]: m for m in (await (await client.get("/api/models")).json())["models"]}
    assert set(models) == set(NAMES)
    for path in SHIPPED:
        t = bundle_mod.read(path).meta["training"]
        assert models[path.name]["training_steps"] == {"stage1": t["stage1_step"], "stage2": t["stage2_step"],
                                                       "encoder": t["encoder_step"]}
        assert models[path.name]["projection"] == "encoder"  # each demo ships its photo encoder
        assert models[path.name]["training_steps"]["stage1"] > 0
