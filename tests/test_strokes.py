"""Training-sketch synthesis (neuedit.synth.strokes) on real faces and shoes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from neuedit.runtime.sketch import from_rgba
from neuedit.synth.strokes import (StrokeConfig, brush, brush_widths, colour_strokes, default_min_fragment, edge_map,
                             edge_maps, edge_strokes, edges_from_pair_half, free_form_mask, one_pixel,
                             stroke_colour, synthesize, synthesize_batch)


def _load(path, size):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC), np.uint8)


@pytest.fixture(scope="module")
def faces(data_dir):
    """16 real anime faces at 64x64, uint8 [16, 64, 64, 3]."""
    files = sorted((data_dir / "anime-faces" / "images").glob("*.jpg"))[:16]
    return np.stack([_load(f, 64) for f in files])


@pytest.fixture(scope="module")
def shoe_pairs(data_dir):
    """12 real shoe pairs: (photos [12, 64, 64, 3] uint8, edge halves [12, 256, 256, 3] uint8 at full size)."""
    photos, halves = [], []
    for f in sorted((data_dir / "shoes" / "val").glob("*_AB.jpg"))[:12]:
        with Image.open(f) as im:
            ab = np.asarray(im.convert("RGB"))
        w = ab.shape[1] // 2
        photos.append(np.asarray(Image.fromarray(ab[:, :w]).resize((64, 64), Image.BICUBIC)))
        halves.append(ab[:, w:])
    return np.stack(photos), np.stack(halves)


def _blocks(m: np.ndarray) -> int:
    """Number of fully-on 2x2 blocks (0 for 1-px lines)."""
    return int((m[:-1, :-1] & m[1:, :-1] & m[:-1, 1:] & m[1:, 1:]).sum())


def _opening(mask: np.ndarray, d: int) -> np.ndarray:
    """Morphological opening by `brush(d)` (outside the image counts as stroke while eroding, so
    strokes cut by the border survive): the union of all brush placements that fit in the mask."""
    k, a = brush(d), d // 2
    m = np.pad(mask.astype(np.uint8), d, constant_values=1)
    inside = cv2.erode(m, k, anchor=(a, a))
    opened = cv2.dilate(inside, k, anchor=(d - 1 - a, d - 1 - a))  # the reflected anchor: a true opening
    return opened[d:-d, d:-d] > 0


def _fits(mask: np.ndarray, d: int) -> bool:
    """Whether a round brush of diameter d fits somewhere inside the mask."""
    return bool(cv2.erode(mask.astype(np.uint8), brush(d), borderType=cv2.BORDER_CONSTANT, borderValue=0).any())


def _colours_in(colours: np.ndarray, image: np.ndarray, tol: int = 2) -> np.ndarray:
    """For each colour [K, 3], whether some pixel of image [H, W, 3] is within tol in every channel."""
    pix = image.reshape(-1, 3).astype(np.int16)
    return np.array([(np.abs(pix - c.astype(np.int16)).max(1) <= tol).any() for c in colours])


# --------------------------------------------------------------------------- free-form strokes

@pytest.mark.parametrize("size", [16, 64, 256])
def test_free_form_width_within_bounds(size):
    rng = np.random.default_rng(0)
    for t in sorted({1, 2, 3, 4, max(1, size // 16), max(1, size // 10)}):
        frac = t / size
        assert brush_widths(size, size, (frac, frac)) == (t, t)
        for _ in range(4):
            # a walk of 2-6 vertices swept by a brush of diameter t is exactly the union of the
            # t-brush placements that fit in it: no part is thinner than t
            m = free_form_mask(size, size, rng, width=(frac, frac))
            assert m.dtype == bool and m.shape == (size, size) and m.any()
            np.testing.assert_array_equal(_opening(m, t), m)
            assert m.mean() < 0.5  # strokes, not a filled image
            # one straight segment (a walk may cross itself): no brush of diameter t + 2 fits
            m = free_form_mask(size, size, rng, vertices=(2, 2), width=(frac, frac))
            np.testing.assert_array_equal(_opening(m, t), m)
            assert not _fits(m, t + 2), (size, t)


def test_brush_widths_scale_with_image():
    assert brush_widths(16, 16, (0.03, 0.1)) == (1, 2)
    assert brush_widths(256, 128, (0.03, 0.1)) == (4, 13)


# --------------------------------------------------------------------------- colour strokes

def test_colour_strokes_width_within_config(faces):
    rng = np.random.default_rng(1)
    for width in ((0.08, 0.08), (0.05, 0.12)):
        cfg = StrokeConfig(min_strokes=1, max_strokes=1, vertices=(2, 2), width=width)
        lo, hi = brush_widths(64, 64, cfg.width)
        for face in faces[:8]:
            a = colour_strokes(face, rng, cfg)[..., 3] > 0
            assert a.any() and not _fits(a, hi + 2)
            if lo == hi:
                np.testing.assert_array_equal(_opening(a, lo), a)
            else:  # wider digital disks are not quite unions of smaller ones at the tips
                assert _opening(a, lo).sum() >= 0.8 * a.sum()


def test_stroke_colour_is_a_covered_source_pixel():
    src = np.zeros((32, 32, 3), np.uint8)
    src[:, :16] = (200, 30, 40)   # left half red
    src[:, 16:] = (10, 20, 220)   # right half blue
    mask = np.zeros((32, 32), bool)
    mask[5:10, 2:16] = True       # 14 red columns ...
    mask[5:10, 16:20] = True      # ... and 4 blue ones
    rng = np.random.default_rng(0)
    assert stroke_colour(src, mask, rng, "median").tolist() == [200, 30, 40]
    mask[:] = False
    mask[:, 20:] = True
    for pick in ("median", "pixel"):
        assert stroke_colour(src, mask, rng, pick).tolist() == [10, 20, 220]


@pytest.mark.parametrize("pick", ["median", "pixel"])
def test_colour_strokes_colours_exist_in_source(faces, shoe_pairs, pick):
    photos, _ = shoe_pairs
    cfg = StrokeConfig(colour_pick=pick, min_strokes=3, max_strokes=5)
    rng = np.random.default_rng(2)
    for src in list(faces[:4]) + list(photos[:4]):
        rgba = colour_strokes(src, rng, cfg)
        on = rgba[..., 3] > 0
        colours = np.unique(rgba[on][:, :3], axis=0)
        assert len(colours) >= 2
        assert _colours_in(colours, src).all()


def test_synthesize_takes_colours_from_colour_source(faces, shoe_pairs):
    photos, _ = shoe_pairs
    cfg = StrokeConfig(p_empty=0.0, p_colour=1.0, min_strokes=3, max_strokes=5)
    rng = np.random.default_rng(3)
    in_face = []
    for face, shoe in zip(faces[:8], photos[:8]):
        rgba = synthesize(face, rng, cfg, colour_source=shoe)
        colours = np.unique(rgba[rgba[..., 3] > 0][:, :3], axis=0)
        assert _colours_in(colours, shoe).all()
        in_face.append(_colours_in(colours, face))
    # the shoe palette is not the face palette: colours really come from colour_source
    assert np.concatenate(in_face).mean() < 0.8


# --------------------------------------------------------------------------- edges

@pytest.mark.parametrize("method", ["canny", "xdog"])
@pytest.mark.parametrize("size", [16, 64])
def test_edge_map_is_thin_without_small_fragments(faces, method, size):
    ims = faces if size == 64 else np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in faces])
    edges = edge_maps(ims, method)
    assert edges.dtype == bool and edges.shape == ims.shape[:3]
    assert edges.sum((1, 2)).min() > 0
    min_px = default_min_fragment(size, size)
    for e in edges:
        assert _blocks(e) == 0
        labels, n = ndimage.label(e, np.ones((3, 3)))
        assert np.bincount(labels.ravel())[1:].min() >= min_px


def test_one_pixel_removes_blocks_without_breaking_lines():
    m = np.zeros((8, 12), bool)
    m[3, 0:12] = True
    m[4, 5:7] = True              # a 2x2 lump on a horizontal line
    m[0:8, 9] = True              # a crossing line
    out = one_pixel(m)
    assert _blocks(m) > 0 and _blocks(out) == 0
    assert ndimage.label(out, np.ones((3, 3)))[1] == 1
    assert (out <= m).all() and m.sum() - out.sum() == 1


@pytest.mark.parametrize("method", ["canny", "xdog"])
def test_edge_map_of_photo_overlaps_dataset_edges(shoe_pairs, method):
    photos, halves = shoe_pairs
    gt = np.stack([edges_from_pair_half(h, 64) for h in halves])
    near = np.stack([cv2.dilate(g.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for g in gt])  # within 1 px
    hit, chance, mismatched = [], [], []
    for i, photo in enumerate(photos):
        e = edge_map(photo, method)
        hit.append(near[i][e].mean())
        chance.append(near[i].mean())
        mismatched.append(near[(i + 1) % len(photos)][e].mean())  # another shoe's drawing
    hit, chance, mismatched = map(np.mean, (hit, chance, mismatched))
    assert hit > 2.0 * chance, (hit, chance)
    assert hit > mismatched + 0.15, (hit, mismatched)


def test_edges_from_pair_half_thin_lines(shoe_pairs):
    _, halves = shoe_pairs
    for r in (32, 64, 256):
        e = edges_from_pair_half(halves[0], r)
        assert e.shape == (r, r) and e.dtype == bool
        assert _blocks(e) == 0
        assert 0.002 < e.mean() < 0.2
        # the lines lie on the drawing's dark pixels (within a pixel at the new size)
        dark = cv2.resize((halves[0].min(-1) < 128).astype(np.float32), (r, r), interpolation=cv2.INTER_AREA) > 0
        assert (cv2.dilate(dark.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)[e].all()


@pytest.mark.parametrize("method", ["canny", "xdog"])
def test_edge_strokes_are_cut_one_pixel_edges(faces, method):
    cfg = StrokeConfig(edge_method=method)
    rng = np.random.default_rng(4)
    edges = edge_maps(faces, method)
    fractions = []
    for face, e in zip(faces, edges):
        rgba = edge_strokes(face, rng, cfg, edges=e)
        on = rgba[..., 3] > 0
        assert set(np.unique(rgba[..., 3])) <= {0, 255}
        assert (on <= e).all()                           # only lines of the edge map
        assert _blocks(on) == 0                          # 1 px wide
        assert (rgba[on][:, :3] == cfg.edge_colour).all() and (rgba[~on] == 0).all()
        fractions.append(on.sum() / e.sum())
        # without a given map the image's own edge map is used
        again = edge_strokes(face, np.random.default_rng(5), cfg)
        assert ((again[..., 3] > 0) <= edge_map(face, method, default_min_fragment(64, 64, cfg.edge_min_fragment))).all()
    assert 0.0 < np.mean(fractions) < 0.7  # a region of the map, not all of it
    assert np.mean([f > 0 for f in fractions]) > 0.8


# --------------------------------------------------------------------------- training sketches

def test_synthesize_mask_is_the_strokes(faces):
    rng = np.random.default_rng(6)
    edges = edge_maps(faces)
    cfg = StrokeConfig(p_empty=0.0)
    kinds = set()
    for i, face in enumerate(faces):
        rgba = synthesize(face, rng, cfg, colour_source=faces[-1 - i], edges=edges[i])
        on = rgba[..., 3] > 0
        assert rgba.shape == (64, 64, 4) and rgba.dtype == np.uint8
        assert on.any() and set(np.unique(rgba[..., 3])) <= {0, 255}
        assert (rgba[~on] == 0).all()
        ys, xs = np.nonzero(on)
        box = (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
        assert on.sum() < 0.7 * box  # strokes, not boxes
        # every stroke pixel is an edge-map line in the edge colour or a colour of the source
        black_edge = (rgba[..., :3] == 0).all(-1) & edges[i] & on
        other = np.unique(rgba[on & ~black_edge][:, :3], axis=0)
        assert _colours_in(other, faces[-1 - i]).all()
        kinds.update({"edge"} if black_edge.any() else set())
        kinds.update({"colour"} if len(other) else set())
    assert kinds == {"edge", "colour"}

    only_edges = StrokeConfig(p_empty=0.0, p_colour=0.0)
    for i, face in enumerate(faces[:8]):
        on = synthesize(face, rng, only_edges, edges=edges[i])[..., 3] > 0
        assert on.any() and (on <= edges[i]).all() and _blocks(on) == 0


@pytest.mark.parametrize("resolution", [64, 32])
def test_synthesize_batch_matches_from_rgba(faces, resolution):
    cfg = StrokeConfig(p_empty=0.2)
    edges = edge_maps(faces)
    sources = faces[::-1].copy()
    sketch, mask = synthesize_batch(faces, np.random.default_rng(7), cfg, resolution,
                                    colour_sources=sources, edges=edges)
    assert sketch.shape == (16, 3, resolution, resolution) and sketch.dtype == np.float32
    assert mask.shape == (16, 1, resolution, resolution) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0} and sketch.min() >= -1 and sketch.max() <= 1
    rng = np.random.default_rng(7)
    for i in range(16):
        rgba = synthesize(faces[i], rng, cfg, colour_source=sources[i], edges=edges[i])
        s, m = from_rgba(rgba, resolution)
        np.testing.assert_array_equal(mask[i], m)
        np.testing.assert_array_equal(sketch[i], s)
        if resolution == 64:
            np.testing.assert_array_equal(mask[i, 0] > 0, rgba[..., 3] > 0)
    assert (mask.sum((1, 2, 3)) > 0).sum() >= 8


def test_no_strokes_probability(faces):
    small = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in faces])
    edges = edge_maps(small)
    images = np.repeat(small, 25, axis=0)  # 400 sketches
    rates = {}
    for p in (0.0, 0.3, 1.0):
        _, mask = synthesize_batch(images, np.random.default_rng(8), StrokeConfig(p_empty=p),
                                   edges=np.repeat(edges, 25, axis=0))
        rates[p] = (mask.sum((1, 2, 3)) == 0).mean()
    assert rates[0.0] == 0.0 and rates[1.0] == 1.0
    assert abs(rates[0.3] - 0.3) < 0.07, rates  # 3 standard deviations of 400 draws


def test_blank_edge_map_falls_back_to_colour(faces):
    blank = np.zeros((64, 64), bool)
    one = StrokeConfig(p_empty=0.0, p_colour=0.5, min_strokes=1, max_strokes=1)
    rng = np.random.default_rng(12)
    drawn = [(synthesize(face, rng, one, edges=blank)[..., 3] > 0).any() for face in faces]
    assert all(drawn)  # an edge stroke over no edges is replaced by a colour stroke
    only_edges = StrokeConfig(p_empty=0.0, p_colour=0.0)
    assert not synthesize(faces[0], rng, only_edges, edges=blank)[..., 3].any()
    flat = np.full((32, 32, 3), 90, np.uint8)
    assert not edge_map(flat).any() and not edge_map(flat, "xdog").any()


def test_same_seed_same_sketches(faces):
    cfg = StrokeConfig(p_empty=0.1)
    a = synthesize_batch(faces, np.random.default_rng(9), cfg, 32)  # edge maps computed inside
    b = synthesize_batch(faces, np.random.default_rng(9), cfg, 32)
    c = synthesize_batch(faces, np.random.default_rng(10), cfg, 32)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    rgba = [colour_strokes(faces[0], np.random.default_rng(11)) for _ in range(2)]
    np.testing.assert_array_equal(*rgba)


def test_config_and_shape_errors(faces):
    for bad in (dict(p_empty=1.5), dict(min_strokes=3, max_strokes=2), dict(width=(0.1, 0.05)),
                dict(edge_method="sobel"), dict(colour_pick="mean"), dict(vertices=(0, 3)),
                dict(edge_colour=(0, 0, 300))):
        with pytest.raises(ValueError):
            StrokeConfig(**bad)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthesize(faces[0].astype(np.float32), rng)
    with pytest.raises(ValueError):
        synthesize(faces[0], rng, colour_source=faces[0][:32])
    with pytest.raises(ValueError):
        synthesize_batch(faces, rng, edges=np.zeros((16, 32, 32), bool))
