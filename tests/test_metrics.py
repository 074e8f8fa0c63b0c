"""Edit-quality metrics (neuedit.evaluation.metrics) against hand-made cases and real images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from neuedit.evaluation import metrics as M
from neuedit.runtime.schema import Group, Schema, anime_faces

R = 32


def _smooth(seed: int = 0, r: int = R) -> np.ndarray:
    """A smooth colourful image [3, r, r] in [-1, 1] (no strong edges)."""
    y, x = np.mgrid[0:r, 0:r] / r
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, 3)
    return np.stack([np.sin(a[k] * (x + 0.5 * y) + k) * 0.6 for k in range(3)]).astype(np.float32)


def _strokes(r: int = R) -> tuple[np.ndarray, np.ndarray]:
    """A saturated red and a blue blob: sketch [3, r, r], mask [1, r, r]."""
    sketch = np.zeros((3, r, r), np.float32)
    mask = np.zeros((1, r, r), np.float32)
    mask[0, 4:10, 4:20] = 1
    sketch[:, 4:10, 4:20] = np.array([1.0, -1.0, -1.0])[:, None, None]
    mask[0, 20:26, 10:14] = 1
    sketch[:, 20:26, 10:14] = np.array([-1.0, -0.6, 1.0])[:, None, None]
    return sketch, mask


def _paint(image, sketch, mask):
    return image * (1 - mask) + sketch * mask


# ---- following the strokes ----------------------------------------------------------------------
def test_identical_images_score_perfectly():
    img = _smooth()
    sketch, mask = _strokes()
    painted = _paint(img, sketch, mask)
    assert M.stroke_dist(painted, sketch, mask) == 0.0
    assert M.delta_e(painted, sketch, mask) == (0.0, 1.0)
    keep = M.keep_metrics(img, img, mask)
    assert keep["l1_out"] == 0.0 and keep["psnr_out"] == float("inf") and keep["ssim_out"] == pytest.approx(1.0)


def test_a_result_that_ignores_the_strokes_scores_worse_than_one_that_paints_them():
    img = _smooth()
    sketch, mask = _strokes()
    painted, ignored = _paint(img, sketch, mask), img
    half = img * (1 - mask) + 0.5 * (img + sketch) * mask  # halfway toward the strokes
    d = [M.stroke_dist(x, sketch, mask) for x in (painted, half, ignored)]
    e = [M.delta_e(x, sketch, mask) for x in (painted, half, ignored)]
    assert d[0] < d[1] < d[2]
    assert e[0][0] < e[1][0] < e[2][0]
    assert e[0][1] == 1.0 and e[2][1] == 0.0  # the smooth image is nowhere near saturated red or blue
    # a stroke-following edit that also changes the rest keeps less
    wrecked = painted + 0.3 * (1 - mask) * np.sign(_smooth(1))
    k_good, k_bad = M.keep_metrics(painted, img, mask), M.keep_metrics(np.clip(wrecked, -1, 1), img, mask)
    assert k_good["psnr_out"] == float("inf") and k_bad["psnr_out"] < 30
    assert k_bad["l1_out"] > 0.1 and k_bad["ssim_out"] < k_good["ssim_out"]


def test_delta_e_is_ciede2000_of_a_known_pair():
    # CIEDE2000 between pure sRGB red and pure green is about 86.6 (a standard reference value)
    mask = np.ones((1, 2, 2), np.float32)
    red = np.broadcast_to(np.array([1.0, -1, -1], np.float32)[:, None, None], (3, 2, 2))
    green = np.broadcast_to(np.array([-1.0, 1, -1], np.float32)[:, None, None], (3, 2, 2))
    de, under = M.delta_e(red, green, mask)
    assert de == pytest.approx(86.6, abs=0.2) and under == 0.0
    assert np.isnan(M.delta_e(red, green, np.zeros_like(mask))[0])


def test_keep_metrics_leave_out_the_dilated_mask_only():
    img = _smooth()
    sketch, mask = _strokes()
    ring = M.dilate(mask[0] > 0, 5) & ~(mask[0] > 0)
    changed = img.copy()
    changed[:, ring] = -img[:, ring]  # changes only within the dilation: invisible to the metric
    assert M.keep_metrics(changed, img, mask, k=5)["psnr_out"] == float("inf")
    assert M.keep_metrics(changed, img, mask, k=1)["psnr_out"] < 40


def test_dilate_matches_stage_two_dilate():
    from neuedit.stage2.train import dilate as torch_dilate
    rng = np.random.default_rng(0)
    m = rng.random((20, 23)) < 0.05
    for k in (1, 3, 5, 7):
        ref = torch_dilate(torch.from_numpy(m.astype(np.float32))[None, None], k)[0, 0].numpy() > 0
        assert np.array_equal(M.dilate(m, k), ref)


def test_edge_f1_of_line_maps():
    lines = np.zeros((R, R), bool)
    lines[8, 4:28] = True
    lines[8:24, 20] = True
    assert M.edge_f1(lines, lines) == (1.0, 1.0, 1.0)
    shifted = np.roll(lines, (1, 1), axis=(0, 1))  # one pixel diagonally
    assert M.edge_f1(shifted, lines, tol=1)[2] == 1.0
    assert M.edge_f1(shifted, lines, tol=0)[2] < 0.1
    assert M.edge_f1(np.zeros_like(lines), lines)[2] == 0.0
    far = lines.copy()
    far[28, :] = True  # edges far from the sketch: counted without a window, ignored within one
    p_all, _, _ = M.edge_f1(far, lines, tol=1)
    p_win, _, f_win = M.edge_f1(far, lines, tol=1, window=3)
    assert p_all < 0.7 and p_win == 1.0 and f_win == 1.0
    assert np.isnan(M.edge_f1(lines, np.zeros_like(lines))[2])


def test_edge_f1_rewards_a_result_that_draws_the_lines():
    r = 64
    img = _smooth(r=r)
    mask = np.zeros((1, r, r), np.float32)
    mask[0, 16, 10:50] = 1
    mask[0, 16:48, 40] = 1
    sketch = -np.ones((3, r, r), np.float32) * mask  # black lines
    lines = mask[0] > 0
    drawn, ignored = _paint(img, sketch, mask), img
    f_drawn = M.edge_f1(M.result_edges(drawn), lines, tol=1, window=4)[2]
    f_ignored = M.edge_f1(M.result_edges(ignored), lines, tol=1, window=4)[2]
    assert f_drawn > 0.8 and f_ignored < 0.2


# ---- realism -------------------------------------------------------------------------------------
def _load(files, size=64):
    out = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if im.width == 2 * im.height:
                im = im.crop((0, 0, im.height, im.height))  # the photo half of a pair
            out.append(np.asarray(im.resize((size, size), Image.BICUBIC)))
    return np.stack(out)


@pytest.fixture(scope="module")
def faces_and_shoes(data_dir):
    faces = _load(sorted((data_dir / "anime-faces" / "images").glob("*.jpg"))[:40])
    shoes = _load(sorted((data_dir / "shoes" / "val").glob("*_AB.jpg"))[:20])
    return faces, shoes


def test_features_are_fixed_and_per_image(faces_and_shoes):
    faces, _ = faces_and_shoes
    f = M.image_features(faces[:6])
    assert f.shape == (6, 454) and np.isfinite(f).all()
    assert np.array_equal(f[2:4], M.image_features(faces[2:4]))  # no batch statistics
    assert np.linalg.norm(f, axis=1) == pytest.approx(np.sqrt(454), rel=0.3)  # groups scaled as documented
    small = M.image_features(np.stack([np.asarray(Image.fromarray(x).resize((32, 32))) for x in faces[:2]]))
    assert small.shape == (2, 454)  # any size is resized to 64


def test_kid_of_a_set_with_itself_is_about_zero_and_of_different_sets_positive(faces_and_shoes):
    faces, shoes = faces_and_shoes
    ff, fs = M.image_features(faces), M.image_features(shoes)
    same, _ = M.kid(ff, ff, subsets=20, subset_size=15)
    halves, _ = M.kid(ff[:20], ff[20:], subsets=20)
    other, _ = M.kid(ff[:20], fs, subsets=20)
    noise, _ = M.kid(ff, M.image_features(np.random.default_rng(0).integers(0, 256, (20, 64, 64, 3), np.uint8)),
                     subsets=20)
    assert abs(same) < 0.05 * other and abs(halves) < 0.1 * other
    assert other > 0 and noise > other
    assert np.isnan(M.kid(ff[:1], fs)[0])


def test_attribute_agreement():
    s = anime_faces()
    c = np.zeros(s.c_dim, np.float32)
    c[0] = 1  # blonde hair; hair length and eye colour unknown
    logits = np.full(s.c_dim, -3.0)
    logits[0] = 2.0
    assert M.attribute_agreement(logits, c, s) == 1.0
    logits[3] = 5.0  # blue hair wins the group
    assert M.attribute_agreement(logits, c, s) == 0.0
    assert np.isnan(M.attribute_agreement(logits, np.zeros_like(c), s))
    free = Schema("free", (Group("smile", ("smile",), False), Group("hat", ("hat",), False)))
    assert M.attribute_agreement(np.array([1.0, 1.0]), np.array([1.0, 0.0]), free) == 0.5


def test_mean_ci():
    assert M.mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0, 3)
    v = np.random.default_rng(0).normal(1.0, 1.0, 200)
    mean, lo, hi, n = M.mean_ci(v)
    assert lo < mean < hi and n == 200 and lo < 1.0 < hi and hi - lo < 0.5
    assert M.mean_ci([float("inf"), 20.0])[0] == (M.PSNR_CAP + 20) / 2
    assert M.mean_ci([float("nan")])[3] == 0
