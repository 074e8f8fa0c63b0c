"""A colour condition derived from the pixels (neuedit.synth.colour): labels, recoloured copies, the
schema's prior, and a stage-one phase that adds the condition to an unconditional G1."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from neuedit.data.datasets import DataConfig, ImageSet, load_dataset
from neuedit.errors import UsageError
from neuedit.evaluation.metrics import dilate
from neuedit.runtime.schema import PALETTE, Group, Schema, object_colour
from neuedit.runtime.state import seed_state
from neuedit.synth.colour import derive_labels, object_colours, recoloured_copies
from neuedit.synth.pairs import object_region, to_lab


def product(colour, r=32) -> np.ndarray:
    """A product photo: an ellipse of `colour` with some shading on a white background, uint8 [r, r, 3]."""
    yy, xx = np.mgrid[:r, :r]
    inside = ((yy - r / 2) / (r / 3)) ** 2 + ((xx - r / 2) / (r / 2.5)) ** 2 < 1
    im = np.full((r, r, 3), 250, np.uint8)
    shade = (0.85 + 0.15 * (yy / r))[..., None]
    im[inside] = np.clip(np.asarray(colour, np.float32) * shade, 0, 255)[inside]
    return im


def test_each_photo_is_named_by_its_objects_colour():
    photos = np.stack([product(PALETTE[n]) for n in ("red", "blue", "black", "tan")] + [np.full((32, 32, 3), 250, np.uint8)])
    assert object_colours(photos) == ["red", "blue", "black", "tan", ""]  # the last has no object


def test_recoloured_copies_take_another_palette_colour_and_keep_the_shape():
    photos = np.stack([product(PALETTE["black"]), product(PALETTE["brown"])])
    copies, names = recoloured_copies(photos, 3, np.random.default_rng(0))
    assert copies.shape == (6, 32, 32, 3) and len(names) == 6
    assert names[:3] != ["black"] * 3 and "black" not in names[:3] and "brown" not in names[3:]
    for im, name, src in zip(copies, names, np.repeat(photos, 3, 0)):
        region = object_region(src)
        if name != "white":  # the object stays where it was (the feathered border may add a pixel)
            now = object_region(im)
            assert (now & region).sum() / (now | region).sum() > 0.85
        mean = to_lab(im)[region].mean(0)
        target = to_lab(np.array(PALETTE[name], np.uint8)[None, None])[0, 0]
        assert np.linalg.norm(mean - target) < 12  # its colour is the label's (give or take the jitter)
        far = ~dilate(region, 5)
        assert np.array_equal(im[far], src[far])  # the background stays (beyond the feathered border)


def test_derive_labels_gives_c_and_appends_labelled_copies():
    schema = object_colour()
    photos = np.stack([product(PALETTE[n]) for n in ("red", "green")])
    images = ImageSet(photos, np.zeros((2, schema.c_dim), np.float32), ["a.png", "b.png"])
    out = derive_labels(images, schema, copies=2, seed=1)
    assert len(out) == 6 and out.copies == 4 and out.files[2:] == ["a.png#recoloured0", "a.png#recoloured1",
                                                                    "b.png#recoloured0", "b.png#recoloured1"]
    assert [schema.decode(c) for c in out.c[:2]] == [["red"], ["green"]]
    assert all(len(schema.decode(c)) == 1 for c in out.c)
    assert object_colours(out.images[2:]) == [schema.decode(c)[0] for c in out.c[2:]]
    assert derive_labels(images, Schema("empty")) is images  # other schemas: untouched


def test_a_derived_schema_needs_no_labels_file(data_dir):
    cfg = DataConfig(str(data_dir / "shoes" / "train"), resolution=32, layout="pair", limit=4)
    images = load_dataset(cfg, object_colour())
    assert images.c.shape == (4, 12) and not images.c.any()  # left for derive_labels
    assert derive_labels(images, object_colour()).c.sum(1).tolist() == [1.0] * 4  # every shoe has a colour


def test_schema_prior_round_trips_and_is_what_samples_follow():
    s = object_colour().with_prior(np.eye(12, dtype=np.float32)[[2, 2, 2, 7]])
    assert s.groups[0].prior[2] == 0.75 and s.groups[0].prior[7] == 0.25 and s.groups[0].prior[-1] == 0.0
    again = Schema.from_dict(s.to_dict())
    assert again == s and again.derive == "object_colour"
    picks = s.sample(2000, np.random.default_rng(0)).argmax(1)
    assert set(picks.tolist()) == {2, 7} and 0.7 < (picks == 2).mean() < 0.8
    seeded = [seed_state(k, 8, s).c[0].argmax() for k in range(200)]  # the server's and the page's sampler
    assert set(seeded) == {2, 7}
    with pytest.raises(UsageError, match="prior"):
        Group("g", ("a", "b"), True, prior=(0.5, 0.2, 0.2))  # does not sum to 1
    with pytest.raises(UsageError, match="derive"):
        Schema("x", (), derive="tags")


def test_a_phase_adds_the_condition_to_an_unconditional_g1(tmp_path, data_dir):
    """From an unconditional bundle: with c = 0 step 0 draws what it drew, and each colour is heard
    from the start. The bundle samples c as the photos have it (their prior), not uniformly."""
    from test_recipe import cpu_cfg
    from neuedit.nn.weights import load_module
    from neuedit.runtime import bundle as bundle_mod
    from neuedit.stage1.train import fit, train
    from neuedit.training import OptimConfig
    shoes = lambda **kw: DataConfig(str(data_dir / "shoes" / "train"), resolution=16, layout="pair", limit=24,  # noqa: E731
                                    flip=False, **kw)
    first = train(replace(cpu_cfg(tmp_path / "a", data_dir, iterations=2, schema="empty"), data=shoes()))
    frozen = OptimConfig(lr=0.0, lr_end=0.0)
    run, mods = fit(replace(cpu_cfg(tmp_path / "b", data_dir, iterations=1, schema="object_colour", optim=frozen,
                                    init_from=str(first.path)), data=shoes(recolour=1)))
    G0, G = load_module(first, "g1").train(), mods["G"].train()
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    c = torch.from_numpy(object_colour().sample(8, np.random.default_rng(0)))
    G0.eval(), G.eval()  # (the running statistics are the bundle's: lr 0 for one step moved only them)
    G.load_state_dict({**G.state_dict(), **{k: v for k, v in G0.state_dict().items() if "running" in k}})
    with torch.no_grad():
        torch.testing.assert_close(G(z, torch.zeros(8, 12)), G0(z, torch.zeros(8, 0)))
        assert float((G(z, c) - G0(z, torch.zeros(8, 0))).abs().mean()) > 0.05  # a colour changes the picture
    b = bundle_mod.read(tmp_path / "b" / "bundle")
    assert b.c_dim == 12 and b.schema.derive == "object_colour"
    prior = np.array(b.schema.groups[0].prior)
    assert prior[-1] == 0 and prior[:12].max() > 1 / 12 + 0.05  # the shoes' own colours, not uniform


def test_object_colour_loss_is_the_objects_distance_to_the_colour_c_names():
    from neuedit.data.datasets import to_unit_range
    from neuedit.nn.losses import object_colour_loss
    from neuedit.synth.colour import palette_lab
    pal = torch.from_numpy(palette_lab())
    red, blue = (torch.from_numpy(to_unit_range(np.stack([product(PALETTE[n]) for n in ns]))) for ns in (["red"], ["blue"]))
    c = torch.zeros(1, 12)
    c[0, 0] = 1  # red
    near, far = object_colour_loss(red, c, pal), object_colour_loss(blue, c, pal)
    assert float(near) == 0.0 < 0.4 < float(far)  # within the tolerance: nothing to pull
    assert float(object_colour_loss(blue, torch.zeros(1, 12), pal)) == 0.0  # no colour asked: nothing to pull
    x = blue.clone().requires_grad_(True)
    object_colour_loss(x, c, pal).backward()
    g = x.grad[0].abs().sum(0)
    obj = torch.from_numpy(object_region(product(PALETTE["blue"])))
    assert float(g[~obj].max()) == 0.0 and float(g[obj].min()) > 0  # every object pixel moves, the background not
