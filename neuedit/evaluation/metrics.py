"""Edit-quality metrics: following the strokes, keeping the rest, realism; numpy + scikit-image, no torch.

Images enter in the models' form, float [3, H, W] in [-1, 1] (`image`, `before`, `sketch`),
with `mask` [1, H, W] in {0, 1} (1 on strokes); the realism features take uint8 [N, H, W, 3].

- `stroke_dist`: Dist(I, I') of docs/method.md §2 (mean L1 over stroke pixels' channels, in [-1, 1] units).
- `delta_e`: CIEDE2000 colour difference (skimage `deltaE_ciede2000` on `rgb2lab`, sRGB D65)
  between result and stroke colour on stroke pixels: the mean, and the share under 10.
- `edge_f1`: F1 between the sketch's lines and the result's edge map (`neuedit.synth.strokes.edge_map`,
  Canny), a match within `tol` px (Chebyshev); precision counts only result edges within
  `window` px of a sketch line, since a sketch only speaks for the region it was drawn in.
- `keep_metrics`: L1 (in [-1, 1] units), PSNR and SSIM (skimage, on [0, 1] RGB, SSIM's 7x7
  map averaged) over the pixels outside the mask dilated by a k x k square, against the image
  before the edit. PSNR of identical pixels is inf.
- `target_metrics`, `region_delta_e`, `chamfer`: against a known target (the ground-truth
  comparison): L1/PSNR/SSIM over the whole image, inside the changed region and outside it;
  CIEDE2000 over the region; mean distance from requested line pixels to the result's edges.
- `image_features` + `kid`: Kernel Inception Distance (Binkowski et al. 2018: unbiased MMD^2,
  cubic polynomial kernel, mean over random subsets) on a fixed handcrafted descriptor instead
  of Inception (no weights can be downloaded): Lab colour moments on a 2x2 grid, Lab colour
  histograms, HOG and uniform LBP histograms, computed at 64x64. It sees colour statistics,
  gradient layout and micro-texture, not semantics (a face with a misplaced eye can score
  well), so its values only compare methods measured against the same real images in one
  run, never with published (Inception) KIDs.
- `attribute_agreement`: the ACGAN head's verdict against known attributes c.
- `mean_ci`: mean with a percentile-bootstrap 95% interval.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt
from scipy.stats import bootstrap
from skimage.color import deltaE_ciede2000, rgb2gray, rgb2lab
from skimage.feature import hog, local_binary_pattern
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from neuedit.data.datasets import to_uint8  # noqa: F401  (M.to_uint8: one rounding for the whole project)
from neuedit.runtime.sketch import dist
from neuedit.synth.strokes import edge_map
from neuedit.errors import UsageError

FEATURE_SIZE = 64       # images are resized to this side before the realism descriptor
DE_THRESHOLD = 10.0     # a stroke pixel "has the colour" when CIEDE2000 is under this


def _check(x: np.ndarray, channels: int, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[0] != channels:
        raise UsageError(f"{name} must be [{channels}, H, W], got {x.shape}")
    return x


def _to_hwc01(x: np.ndarray) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> [H, W, 3] in [0, 1]."""
    return np.clip((np.moveaxis(x, 0, -1) + 1.0) / 2.0, 0.0, 1.0)


# ---- following the strokes --------------------------------------------------------------------
def stroke_dist(image: np.ndarray, sketch: np.ndarray, mask: np.ndarray) -> float:
    """Dist(I, I') = sum |(I - I') M| / (1 + sum |M|), per stroke pixel and channel in [-1, 1] units."""
    image, sketch, mask = _check(image, 3, "image"), _check(sketch, 3, "sketch"), _check(mask, 1, "mask")
    return float(dist(image[None], sketch[None], mask[None])[0])


def delta_e(image: np.ndarray, sketch: np.ndarray, mask: np.ndarray,
            threshold: float = DE_THRESHOLD) -> tuple[float, float]:
    """CIEDE2000 between `image` and the stroke colours on stroke pixels -> (mean, share < threshold);
    (nan, nan) without strokes."""
    image, sketch, mask = _check(image, 3, "image"), _check(sketch, 3, "sketch"), _check(mask, 1, "mask")
    on = mask[0] > 0.5
    if not on.any():
        return float("nan"), float("nan")
    lab_i = rgb2lab(_to_hwc01(image)[on][None])   # [1, K, 3]
    lab_s = rgb2lab(_to_hwc01(sketch)[on][None])
    de = deltaE_ciede2000(lab_i, lab_s)[0]
    return float(de.mean()), float((de < threshold).mean())


def dilate(mask: np.ndarray, k: int) -> np.ndarray:
    """Binary dilation of bool [H, W] by a k x k square (k odd; `neuedit.stage2.train.dilate` in numpy)."""
    if k < 1 or k % 2 == 0:
        raise UsageError("k must be a positive odd number")
    m = np.asarray(mask, bool)
    if k == 1:
        return m.copy()
    r = k // 2
    p = np.pad(m, r)
    h, w = m.shape
    out = np.zeros_like(m)
    for dy in range(k):
        for dx in range(k):
            out |= p[dy:dy + h, dx:dx + w]
    return out


def edge_f1(pred: np.ndarray, true: np.ndarray, tol: int = 1, window: int | None = None) -> tuple[float, float, float]:
    """Precision, recall and F1 of line map `pred` against `true` (bool [H, W]) with a `tol`-px match.

    Recall: share of `true` pixels within `tol` of a `pred` pixel. Precision: share of the
    `pred` pixels within `window` px of `true` (all of them when None) that lie within `tol`
    of a `true` pixel. (nan, nan, nan) when `true` is empty; 0 where nothing was predicted.
    """
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise UsageError(f"line maps differ in shape: {pred.shape} vs {true.shape}")
    if not true.any():
        return float("nan"), float("nan"), float("nan")
    k = 2 * tol + 1
    recall = float((true & dilate(pred, k)).sum() / true.sum())
    counted = pred if window is None else pred & dilate(true, 2 * window + 1)
    precision = float((counted & dilate(true, k)).sum() / counted.sum()) if counted.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, float(f1)


def result_edges(image: np.ndarray, method: str = "canny") -> np.ndarray:
    """The edge map of a result [3, H, W] in [-1, 1] -> bool [H, W] (`neuedit.synth.strokes.edge_map`)."""
    return edge_map(to_uint8(_check(image, 3, "image")), method)


# ---- keeping the rest -----------------------------------------------------------------------------
def keep_metrics(image: np.ndarray, before: np.ndarray, mask: np.ndarray, k: int = 5) -> dict:
    """L1, PSNR and SSIM of `image` against `before` outside the mask dilated by k x k ->
    {"l1_out", "psnr_out", "ssim_out"} (nan when nothing is left outside)."""
    image, before, mask = _check(image, 3, "image"), _check(before, 3, "before"), _check(mask, 1, "mask")
    keep = ~dilate(mask[0] > 0.5, k)
    l1, psnr, ssim = _masked_scores(image, before, _ssim_map(image, before), keep)
    return {"l1_out": l1, "psnr_out": psnr, "ssim_out": ssim}


def _ssim_map(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SSIM map [H, W] (skimage, 7x7 window, on [0, 1] RGB) of two [3, H, W] images in [-1, 1]."""
    a, b = _to_hwc01(image), _to_hwc01(reference)
    side = min(a.shape[:2])
    win = 7 if side >= 7 else side - (1 - side % 2)  # odd and no larger than the image
    _, smap = structural_similarity(b, a, channel_axis=-1, data_range=1.0, full=True, win_size=win)
    return smap


def _masked_scores(image: np.ndarray, reference: np.ndarray, smap: np.ndarray,
                   where: np.ndarray) -> tuple[float, float, float]:
    """(L1 in [-1, 1] units, PSNR on [0, 1] RGB, mean of the SSIM map) over pixels `where` bool [H, W];
    PSNR is inf where they are identical, all nan where `where` is empty."""
    if not where.any():
        return float("nan"), float("nan"), float("nan")
    l1 = float(np.abs(image - reference)[:, where].mean())
    a, b = _to_hwc01(image), _to_hwc01(reference)
    mse = float(((a - b)[where] ** 2).mean())
    psnr = float("inf") if mse == 0 else float(peak_signal_noise_ratio(b[where], a[where], data_range=1.0))
    return l1, psnr, float(smap[where].mean())


# ---- against a known answer (the ground-truth comparison) -------------------------------------------
def target_metrics(image: np.ndarray, target: np.ndarray, region: np.ndarray) -> dict:
    """L1, PSNR and SSIM of `image` against `target` (both [3, H, W] in [-1, 1]) over the whole
    image, inside `region` bool [H, W] (what the edit should change) and outside it ->
    {"l1", "psnr", "ssim", "l1_in", "psnr_in", "ssim_in", "l1_rest", "psnr_rest", "ssim_rest"}.

    As `keep_metrics`: L1 in [-1, 1] units, PSNR and SSIM on [0, 1] RGB, SSIM's 7x7 map (computed
    on the whole image, so a window may reach across the region's border) averaged over the
    pixels; identical pixels give an inf PSNR (`mean_ci` counts it as PSNR_CAP); an empty part
    gives nan."""
    image, target = _check(image, 3, "image"), _check(target, 3, "target")
    region = np.asarray(region, bool)
    if region.shape != image.shape[1:]:
        raise UsageError(f"region must be bool {image.shape[1:]}, got {region.shape}")
    smap = _ssim_map(image, target)
    out = {}
    for suffix, where in (("", np.ones_like(region)), ("_in", region), ("_rest", ~region)):
        out[f"l1{suffix}"], out[f"psnr{suffix}"], out[f"ssim{suffix}"] = _masked_scores(image, target, smap, where)
    return out


def region_delta_e(image: np.ndarray, target: np.ndarray, region: np.ndarray) -> float:
    """Mean CIEDE2000 between `image` and `target` ([3, H, W] in [-1, 1]) over `region` bool [H, W]
    (every pixel the edit should change, not only the stroke pixels); nan for an empty region."""
    image, target = _check(image, 3, "image"), _check(target, 3, "target")
    region = np.asarray(region, bool)
    if not region.any():
        return float("nan")
    lab_i = rgb2lab(_to_hwc01(image)[region][None])   # [1, K, 3]
    lab_t = rgb2lab(_to_hwc01(target)[region][None])
    return float(deltaE_ciede2000(lab_i, lab_t).mean())


def chamfer(lines: np.ndarray, edges: np.ndarray) -> float:
    """Mean Euclidean distance (px) from each pixel of `lines` to the nearest pixel of `edges`
    (bool [H, W]; one-sided: how far the result's edges are from the requested lines).

    nan without lines; with no edges at all, every line pixel counts as the image diagonal
    (the farthest an edge could be), so that means stay finite and such results rank last."""
    lines, edges = np.asarray(lines, bool), np.asarray(edges, bool)
    if lines.shape != edges.shape:
        raise UsageError(f"line maps differ in shape: {lines.shape} vs {edges.shape}")
    if not lines.any():
        return float("nan")
    if not edges.any():
        return float(np.hypot(*lines.shape))
    return float(distance_transform_edt(~edges)[lines].mean())


# ---- realism ---------------------------------------------------------------------------------------
def _hellinger(counts: np.ndarray) -> np.ndarray:
    s = counts.sum()
    return np.sqrt(counts / s) if s > 0 else counts.astype(np.float64)


def _colour_moments(lab: np.ndarray) -> np.ndarray:
    h, w = lab.shape[:2]
    regions = [lab, lab[:h // 2, :w // 2], lab[:h // 2, w // 2:], lab[h // 2:, :w // 2], lab[h // 2:, w // 2:]]
    scale_mean, scale_std = np.array([100.0, 100.0, 100.0]), np.array([50.0, 50.0, 50.0])
    v = np.concatenate([np.concatenate([r.reshape(-1, 3).mean(0) / scale_mean, r.reshape(-1, 3).std(0) / scale_std])
                        for r in regions])
    return v / np.sqrt(len(v) / 3)  # ~unit norm for typical images


def _colour_histograms(lab: np.ndarray) -> np.ndarray:
    L = np.histogram(lab[..., 0], bins=8, range=(0, 100))[0].astype(np.float64)
    ab = np.histogram2d(np.clip(lab[..., 1], -80, 79.9).ravel(), np.clip(lab[..., 2], -80, 79.9).ravel(),
                        bins=8, range=((-80, 80), (-80, 80)))[0].ravel()
    return np.concatenate([_hellinger(L), _hellinger(ab)]) / np.sqrt(2)


def _hog(gray: np.ndarray) -> np.ndarray:
    f = hog(gray, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), block_norm="L2-Hys",
            feature_vector=True)
    return f / np.sqrt(len(f) / 36)  # each 2x2-cell block has norm ~1


def _lbp(gray8: np.ndarray) -> np.ndarray:
    a = local_binary_pattern(gray8, 8, 1, method="uniform")
    b = local_binary_pattern(gray8, 16, 2, method="uniform")
    ha = np.bincount(a.astype(int).ravel(), minlength=10)[:10].astype(np.float64)
    hb = np.bincount(b.astype(int).ravel(), minlength=18)[:18].astype(np.float64)
    return np.concatenate([_hellinger(ha), _hellinger(hb)]) / np.sqrt(2)


def image_features(images: np.ndarray) -> np.ndarray:
    """The fixed realism descriptor: uint8 [N, H, W, 3] -> float64 [N, D] (D = 454).

    Each image is resized (bicubic) to 64x64; four groups, each scaled to about unit norm and
    then weighted so each contributes equally to x . y / D: Lab mean and std on the whole
    image and its four quadrants (30), Lab histograms (L: 8 bins, ab: 8x8, square-rooted),
    HOG (9 orientations, 16 px cells, 2x2 blocks, L2-Hys: 324), uniform LBP histograms
    (P=8 R=1 and P=16 R=2, square-rooted: 28).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise UsageError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    rows = []
    for im in images:
        if im.shape[:2] != (FEATURE_SIZE, FEATURE_SIZE):
            im = np.asarray(Image.fromarray(im).resize((FEATURE_SIZE, FEATURE_SIZE), Image.BICUBIC))
        rgb = im.astype(np.float64) / 255.0
        lab = rgb2lab(rgb)
        gray = rgb2gray(rgb)
        gray8 = (gray * 255).round().astype(np.uint8)
        rows.append([_colour_moments(lab), _colour_histograms(lab), _hog(gray), _lbp(gray8)])
    if not rows:
        return np.zeros((0, 454))
    dims = [len(g) for g in rows[0]]
    d = sum(dims)
    w = [np.sqrt(d / len(dims))] * len(dims)
    return np.stack([np.concatenate([wi * g for wi, g in zip(w, r)]) for r in rows])


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid(fx: np.ndarray, fy: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID between feature sets fx [N, D] and fy [M, D] -> (mean, std) over `subsets` random
    subsets of min(N, M, subset_size) rows each (drawn without replacement); nan with < 2 rows."""
    fx, fy = np.asarray(fx, np.float64), np.asarray(fy, np.float64)
    m = min(len(fx), len(fy), subset_size)
    if m < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = fx[rng.choice(len(fx), m, replace=False)]
        y = fy[rng.choice(len(fy), m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        off = m * (m - 1)
        vals.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def attribute_agreement(c_logits: np.ndarray, c: np.ndarray, schema) -> float:
    """Share of the known attributes that D's ACGAN head agrees with; c_logits, c [c_dim].

    An exclusive group counts when c sets exactly one of its attributes (agreement: that one
    has the largest logit in the group); every attribute of a free group counts (agreement:
    logit > 0 exactly when c > 0.5). nan when nothing is known.
    """
    c_logits, c = np.asarray(c_logits, np.float64).ravel(), np.asarray(c, np.float64).ravel()
    hits = total = 0
    for g, s in schema.slices():
        on = c[s] > 0.5
        if g.exclusive and len(g.attributes) > 1:
            if on.sum() != 1:
                continue
            total += 1
            hits += int(np.argmax(c_logits[s]) == np.argmax(on))
        else:
            total += len(on)
            hits += int(((c_logits[s] > 0) == on).sum())
    return hits / total if total else float("nan")


# ---- statistics -------------------------------------------------------------------------------------
PSNR_CAP = 100.0  # dB: identical pixels (inf) count as this in means


def mean_ci(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of the finite values (inf PSNR capped at PSNR_CAP first) with a percentile-bootstrap
    interval (`scipy.stats.bootstrap`, `n_boot` resamples, seeded) -> (mean, lo, hi, n); the
    interval is nan with fewer than 2 values."""
    v = np.asarray(values, np.float64).ravel()
    v = np.where(np.isposinf(v), PSNR_CAP, v)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(v.mean())
    if len(v) < 2:  # a single value has no spread to resample (scipy refuses it too)
        return mean, float("nan"), float("nan"), 1
    # percentile, not scipy's default BCa: BCa is nan on constant samples, which are common
    # here (the source rows' capped PSNR and zero ms, for one)
    ci = bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
                   rng=np.random.default_rng(seed)).confidence_interval
    return mean, float(ci.low), float(ci.high), int(len(v))
