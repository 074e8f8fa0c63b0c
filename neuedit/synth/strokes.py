"""Training sketches: synthetic user strokes drawn from real images (numpy, OpenCV, scikit-image; no torch).

Stage two learns `G2(I1, sketch, mask) -> I2` from sketches it never gets from people, so
they are synthesised here, in the form the web client sends (`neuedit.runtime.sketch`): an RGBA
uint8 image [H, W, 4] whose alpha (0 or 255) marks the strokes and whose RGB is their
colour (0 where alpha is 0). Two kinds of stroke:

- colour strokes: DeepFill-style free-form brush strokes (a short random walk swept
  with a round brush) whose colour is taken from a source image under the stroke, so
  every colour exists in the domain;
- edge strokes: dark 1-px lines of an edge map (Canny or XDoG, skeletonised, small
  fragments dropped; or the dataset's own edge drawing) cut to a random region.

The mask is always the strokes themselves (alpha), never boxes. Every function takes an
explicit `rng: np.random.Generator` and is a pure function of its arguments and the
generator's state: the same seed gives the same sketch. `synthesize_batch` turns a batch
into the model-side form: sketch [N, 3, R, R] float32 in [-1, 1], mask [N, 1, R, R] in {0, 1}.

Speed (one shared CPU core): a batch of 32 sketches at 64x64 takes ~15 ms with edge maps
precomputed once per dataset by `edge_maps`, ~25 ms when each call computes them (an edge
map costs ~0.6 ms with Canny, ~0.3 ms with XDoG at 64x64).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.morphology import remove_small_objects, skeletonize

from neuedit.runtime.sketch import from_rgba
from neuedit.errors import UsageError

EDGE_METHODS = ("canny", "xdog")
COLOUR_PICKS = ("median", "pixel")


@dataclass(frozen=True)
class StrokeConfig:
    """How training sketches are drawn; sizes are fractions of the shorter image side."""
    p_empty: float = 0.1                          # probability that a sketch has no strokes at all
    min_strokes: int = 1                          # fewest strokes in a non-empty sketch
    max_strokes: int = 4                          # most strokes in a non-empty sketch
    p_colour: float = 0.6                         # probability that a stroke is a colour stroke (else an edge stroke)
    vertices: tuple[int, int] = (2, 6)            # vertices of a free-form stroke's random walk (inclusive bounds)
    width: tuple[float, float] = (0.03, 0.1)      # brush width, fraction of the side (at least 1 px)
    length: tuple[float, float] = (0.1, 0.3)      # length of each segment of the walk, fraction of the side
    max_turn: float = 1.6                         # largest change of direction at a vertex, radians
    colour_pick: str = "median"                   # "median": covered source pixel nearest the channel medians; "pixel": a random covered one
    edge_method: str = "canny"                    # edge detector used when no edge map is given: "canny" or "xdog"
    edge_min_fragment: float = 0.1                # drop edge fragments with fewer pixels than this fraction of the side
    p_edge_blob: float = 0.5                      # probability that an edge stroke's region is a free-form blob (else a rectangle)
    edge_area: tuple[float, float] = (0.1, 0.4)   # rectangle region's area, fraction of the image
    blob_width: tuple[float, float] = (0.15, 0.35)  # brush width of a blob region, fraction of the side
    edge_colour: tuple[int, int, int] = (0, 0, 0)  # RGB of edge strokes

    def __post_init__(self):
        for name in ("p_empty", "p_colour", "p_edge_blob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if not 1 <= self.min_strokes <= self.max_strokes:
            raise UsageError(f"need 1 <= min_strokes <= max_strokes, got {self.min_strokes}, {self.max_strokes}")
        if not 1 <= self.vertices[0] <= self.vertices[1]:
            raise UsageError(f"vertices must be (lo, hi) with 1 <= lo <= hi, not {self.vertices}")
        for name in ("width", "length", "edge_area", "blob_width"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise UsageError(f"{name} must be (lo, hi) with 0 < lo <= hi, not {(lo, hi)}")
        if self.edge_area[1] > 1.0:
            raise UsageError(f"edge_area is a fraction of the image (at most 1), not {self.edge_area}")
        if self.colour_pick not in COLOUR_PICKS:
            raise UsageError(f"colour_pick must be one of {COLOUR_PICKS}, not {self.colour_pick!r}")
        if self.edge_method not in EDGE_METHODS:
            raise UsageError(f"edge_method must be one of {EDGE_METHODS}, not {self.edge_method!r}")
        if self.edge_min_fragment < 0:
            raise UsageError("edge_min_fragment must be >= 0")
        if len(self.edge_colour) != 3 or not all(0 <= int(v) <= 255 for v in self.edge_colour):
            raise UsageError(f"edge_colour must be three values in 0..255, not {self.edge_colour}")


# --------------------------------------------------------------------------- free-form strokes

def brush_widths(h: int, w: int, width: tuple[float, float]) -> tuple[int, int]:
    """Brush width bounds (fractions of the shorter side) -> inclusive bounds in pixels, at least 1."""
    side = min(h, w)
    return max(1, int(round(width[0] * side))), max(1, int(round(width[1] * side)))


@functools.lru_cache(maxsize=64)
def brush(d: int) -> np.ndarray:
    """A round brush of diameter d px -> uint8 [d, d]: the pixel centres within d/2 of its centre
    (symmetric for even d too, unlike cv2.MORPH_ELLIPSE; d = 2 and 3 are full squares)."""
    c = np.arange(d) - (d - 1) / 2
    k = ((c[:, None] ** 2 + c[None, :] ** 2) <= (d / 2) ** 2).astype(np.uint8)
    k.setflags(write=False)  # shared by the cache
    return k


def free_form_mask(h: int, w: int, rng: np.random.Generator, *, strokes: int = 1,
                   vertices: tuple[int, int] = (2, 6), width: tuple[float, float] = (0.03, 0.1),
                   length: tuple[float, float] = (0.1, 0.3), max_turn: float = 1.6,
                   start: tuple[float, float] | None = None) -> np.ndarray:
    """DeepFill-style free-form strokes -> bool [H, W].

    Each stroke is a random walk of `vertices` points (a uniform start, or `start` = (x, y)
    when given, a uniform first
    direction, then turns of at most `max_turn` radians and segments of `length` x side),
    swept with a round brush of one width drawn from `width` x side. The centre line is
    drawn with 1-px cv2.line and widened by `brush(t)` (round, so joints and ends are
    round); cv2's own thick lines are 2*(t//2)+1 px wide and thicker on diagonals.
    """
    side = min(h, w)
    lo, hi = brush_widths(h, w, width)
    out = np.zeros((h, w), np.uint8)
    line = np.zeros((h, w), np.uint8)
    for _ in range(strokes):
        t = int(rng.integers(lo, hi + 1))
        n = int(rng.integers(vertices[0], vertices[1] + 1))
        x, y = (rng.uniform(0, w - 1), rng.uniform(0, h - 1)) if start is None else map(float, start)
        a = rng.uniform(0, 2 * np.pi)
        pts = [(x, y)]
        for i in range(n - 1):
            if i:
                a += rng.uniform(-max_turn, max_turn)
            step = rng.uniform(length[0], length[1]) * side
            x = min(max(x + step * np.cos(a), 0.0), w - 1.0)
            y = min(max(y + step * np.sin(a), 0.0), h - 1.0)
            pts.append((x, y))
        line[:] = 0
        p = [(int(round(px)), int(round(py))) for px, py in pts]
        line[p[0][1], p[0][0]] = 1
        for p0, p1 in zip(p[:-1], p[1:]):
            cv2.line(line, p0, p1, 1, 1, cv2.LINE_8)
        out |= cv2.dilate(line, brush(t)) if t > 1 else line
    return out.astype(bool)


def _brush_mask(h: int, w: int, rng: np.random.Generator, cfg: StrokeConfig) -> np.ndarray:
    return free_form_mask(h, w, rng, vertices=cfg.vertices, width=cfg.width, length=cfg.length,
                          max_turn=cfg.max_turn)


# --------------------------------------------------------------------------- colour strokes

def stroke_colour(source: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                  pick: str = "median") -> np.ndarray:
    """The colour of one stroke, taken from `source` [H, W, 3] uint8 under `mask` [H, W] bool -> uint8 [3].

    "median": of the covered pixels, the one nearest (L1) to their per-channel median (a
    robust typical colour that is also an actual source pixel); "pixel": a random covered one.
    """
    covered = source[mask]  # [K, 3]
    if len(covered) == 0:
        raise UsageError("the stroke covers no pixel")
    if pick == "pixel":
        return covered[rng.integers(len(covered))].copy()
    if pick != "median":
        raise UsageError(f"pick must be one of {COLOUR_PICKS}, not {pick!r}")
    med = np.median(covered, axis=0)
    return covered[np.abs(covered - med).sum(1).argmin()].copy()


def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UsageError(f"{name} must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    return image


def _paint(rgba: np.ndarray, mask: np.ndarray, colour) -> None:
    rgba[mask, :3] = colour
    rgba[mask, 3] = 255


def _paint_colour_stroke(rgba: np.ndarray, source: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig) -> None:
    m = _brush_mask(*source.shape[:2], rng, cfg)
    _paint(rgba, m, stroke_colour(source, m, rng, cfg.colour_pick))


def colour_strokes(source: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig = StrokeConfig()) -> np.ndarray:
    """`cfg.min_strokes..max_strokes` free-form strokes coloured from `source` [H, W, 3] -> RGBA [H, W, 4].

    Each stroke's colour comes from the source pixels it covers (`stroke_colour`); later
    strokes paint over earlier ones. `source` may be another image than the one edited.
    """
    source = _check_image(source, "source")
    rgba = np.zeros(source.shape[:2] + (4,), np.uint8)
    for _ in range(int(rng.integers(cfg.min_strokes, cfg.max_strokes + 1))):
        _paint_colour_stroke(rgba, source, rng, cfg)
    return rgba


# --------------------------------------------------------------------------- edge maps

@functools.lru_cache(maxsize=1)
def _rso_takes_max_size() -> bool:
    return "max_size" in inspect.signature(remove_small_objects).parameters


def drop_fragments(lines: np.ndarray, min_fragment: int) -> np.ndarray:
    """bool [H, W] -> the same without 8-connected fragments of fewer than `min_fragment` pixels."""
    if min_fragment <= 1 or not lines.any():
        return lines
    if _rso_takes_max_size():  # scikit-image >= 0.26: removes sizes <= max_size
        return remove_small_objects(lines, max_size=min_fragment - 1, connectivity=2)
    return remove_small_objects(lines, min_size=min_fragment, connectivity=2)


def _ring_components(patch: np.ndarray) -> int:
    ring = patch.copy()
    ring[1, 1] = False
    return int(cv2.connectedComponents(ring.astype(np.uint8), connectivity=8)[0]) - 1


def one_pixel(lines: np.ndarray) -> np.ndarray:
    """bool [H, W] lines -> the same with no 2x2 block fully on (skeletonize leaves a few).

    From each block one pixel is removed, preferring one whose removal keeps its
    neighbours 8-connected (a block's pixels are mutually adjacent, so usually one is).
    """
    lines = lines.copy()
    padded = np.pad(lines, 1)
    while True:
        blocks = np.argwhere(lines[:-1, :-1] & lines[1:, :-1] & lines[:-1, 1:] & lines[1:, 1:])
        if len(blocks) == 0:
            return lines
        y, x = blocks[0]
        best = None
        for py, px in ((y, x), (y, x + 1), (y + 1, x), (y + 1, x + 1)):
            cost = _ring_components(padded[py:py + 3, px:px + 3])  # padded offset: (py, px) is the centre
            if best is None or cost < best[0]:
                best = (cost, py, px)
        _, py, px = best
        lines[py, px] = False
        padded[py + 1, px + 1] = False


def default_min_fragment(h: int, w: int, fraction: float = 0.1) -> int:
    """Fragment size threshold in pixels for an image of H x W: `fraction` of the shorter side, at least 2."""
    return max(2, int(round(fraction * min(h, w))))


def _canny(gray: np.ndarray, sigma: float, quantile: float, min_high: float) -> np.ndarray:
    g = cv2.GaussianBlur(gray, (0, 0), sigma) if sigma > 0 else gray
    # Automatic thresholds from the image's own gradient magnitudes (cv2.Canny's L1 norm of
    # 3x3 Sobel): the strongest (1 - quantile) of them seed edges, hysteresis follows down to 40%.
    dx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    dy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    high = max(float(np.quantile(np.abs(dx) + np.abs(dy), quantile)), min_high)
    return cv2.Canny(g, 0.4 * high, high, L2gradient=False) > 0


def _xdog(gray: np.ndarray, sigma: float, k: float = 1.6, tau: float = 0.98, eps: float = -0.01) -> np.ndarray:
    # XDoG (Winnemoeller et al. 2012), thresholded: D = G_sigma - tau * G_{k sigma}; a dark line where D < eps.
    g = gray.astype(np.float32) / 255.0
    d = cv2.GaussianBlur(g, (0, 0), sigma) - tau * cv2.GaussianBlur(g, (0, 0), k * sigma)
    return d < eps


def edge_map(image: np.ndarray, method: str = "canny", min_fragment: int | None = None,
             sigma: float | None = None) -> np.ndarray:
    """Edges of an image uint8 [H, W, 3] -> thin lines bool [H, W].

    "canny": cv2.Canny on a blurred grey image with thresholds set from its gradient
    magnitudes; "xdog": thresholded XDoG (dark sides of edges, like pen lines). Either is
    skeletonised to 1 px and fragments of fewer than `min_fragment` pixels (8-connected;
    default `default_min_fragment`) are dropped. `sigma`: blur in pixels, default relative
    to the image size.
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    side = min(h, w)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if method == "canny":
        raw = _canny(gray, 0.008 * side if sigma is None else sigma, quantile=0.85, min_high=40.0)
    elif method == "xdog":
        raw = _xdog(gray, max(0.5, 0.006 * side) if sigma is None else sigma)
    else:
        raise UsageError(f"method must be one of {EDGE_METHODS}, not {method!r}")
    lines = one_pixel(skeletonize(raw))
    return drop_fragments(lines, default_min_fragment(h, w) if min_fragment is None else min_fragment)


def edge_maps(images: np.ndarray, method: str = "canny", min_fragment: int | None = None) -> np.ndarray:
    """`edge_map` of each image, for precomputing once per dataset: uint8 [N, H, W, 3] -> bool [N, H, W]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise UsageError(f"images must be [N, H, W, 3], got {images.shape}")
    out = np.zeros(images.shape[:3], bool)
    for i, im in enumerate(images):
        out[i] = edge_map(im, method, min_fragment)
    return out


def edges_from_pair_half(edge_half: np.ndarray, resolution: int, threshold: float = 0.15,
                         min_fragment: int | None = None) -> np.ndarray:
    """A dataset's own edge drawing (dark lines on white) uint8 [H, W, 3] -> thin lines bool [R, R].

    Darkness (1 - grey/255) is area-resized to R x R, thresholded at `threshold` (a 1-px
    line keeps ~1/scale of its darkness when shrunk), skeletonised, and fragments of
    fewer than `min_fragment` pixels dropped (default `default_min_fragment` at R).
    """
    edge_half = _check_image(edge_half, "edge_half")
    dark = 1.0 - cv2.cvtColor(edge_half, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    if dark.shape != (resolution, resolution):
        shrink = resolution < min(dark.shape)
        dark = cv2.resize(dark, (resolution, resolution), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    lines = one_pixel(skeletonize(dark > threshold))
    return drop_fragments(lines, default_min_fragment(resolution, resolution) if min_fragment is None else min_fragment)


# --------------------------------------------------------------------------- edge strokes

def random_region(h: int, w: int, rng: np.random.Generator, cfg: StrokeConfig = StrokeConfig()) -> np.ndarray:
    """Where an edge stroke is kept -> bool [H, W]: a free-form blob (probability `cfg.p_edge_blob`,
    a wide brush stroke) or an axis-aligned rectangle of `cfg.edge_area` of the image."""
    if rng.random() < cfg.p_edge_blob:
        return free_form_mask(h, w, rng, vertices=cfg.vertices, width=cfg.blob_width, length=cfg.length,
                              max_turn=cfg.max_turn)
    area = rng.uniform(*cfg.edge_area) * h * w
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))  # height / width
    rh = int(np.clip(round(np.sqrt(area * aspect)), 1, h))
    rw = int(np.clip(round(area / rh), 1, w))
    y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    region = np.zeros((h, w), bool)
    region[y0:y0 + rh, x0:x0 + rw] = True
    return region


def _check_edges(edges: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    edges = np.asarray(edges)
    if edges.shape != shape:
        raise UsageError(f"edges must be bool {shape}, got {edges.shape}")
    return edges.astype(bool, copy=False)


def _paint_edge_stroke(rgba: np.ndarray, edges: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig,
                       tries: int = 4) -> None:
    """Edge lines inside a random region, cut fragments dropped; a few regions are tried
    until one holds lines (nothing is drawn when the edge map is too sparse)."""
    if not edges.any():
        return
    h, w = edges.shape
    min_px = default_min_fragment(h, w, cfg.edge_min_fragment)
    for _ in range(tries):
        cut = drop_fragments(edges & random_region(h, w, rng, cfg), min_px)
        if cut.any():
            _paint(rgba, cut, cfg.edge_colour)
            return


def edge_strokes(image: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig = StrokeConfig(),
                 edges: np.ndarray | None = None) -> np.ndarray:
    """One edge stroke: the edge map's 1-px lines inside a random region, in `cfg.edge_colour` -> RGBA [H, W, 4].

    `edges` bool [H, W]: a precomputed or given edge map (default: `edge_map(image, cfg.edge_method)`).
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    if edges is None:
        edges = edge_map(image, cfg.edge_method, default_min_fragment(h, w, cfg.edge_min_fragment))
    rgba = np.zeros((h, w, 4), np.uint8)
    _paint_edge_stroke(rgba, _check_edges(edges, (h, w)), rng, cfg)
    return rgba


# --------------------------------------------------------------------------- training sketches

def synthesize(image: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig = StrokeConfig(),
               colour_source: np.ndarray | None = None, edges: np.ndarray | None = None) -> np.ndarray:
    """A training sketch for `image` uint8 [H, W, 3] -> RGBA uint8 [H, W, 4].

    With probability `cfg.p_empty` it is empty; otherwise `cfg.min_strokes..max_strokes`
    strokes, each a colour stroke (probability `cfg.p_colour`, colours from `colour_source`
    [H, W, 3], default `image`) or an edge stroke (lines of `edges` bool [H, W], default the
    image's `edge_map`, computed only when needed). A non-empty draw that painted nothing
    (edge strokes over a blank edge map) gets one colour stroke, unless `p_colour` is 0.
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    source = image if colour_source is None else _check_image(colour_source, "colour_source")
    if source.shape != image.shape:
        raise UsageError(f"colour_source {source.shape} must have the image's shape {image.shape}")
    if edges is not None:
        edges = _check_edges(edges, (h, w))
    rgba = np.zeros((h, w, 4), np.uint8)
    if rng.random() < cfg.p_empty:
        return rgba
    for _ in range(int(rng.integers(cfg.min_strokes, cfg.max_strokes + 1))):
        if rng.random() < cfg.p_colour:
            _paint_colour_stroke(rgba, source, rng, cfg)
        else:
            if edges is None:
                edges = edge_map(image, cfg.edge_method, default_min_fragment(h, w, cfg.edge_min_fragment))
            _paint_edge_stroke(rgba, edges, rng, cfg)
    if cfg.p_colour > 0 and not rgba[..., 3].any():
        _paint_colour_stroke(rgba, source, rng, cfg)
    return rgba


def synthesize_batch(images: np.ndarray, rng: np.random.Generator, cfg: StrokeConfig = StrokeConfig(),
                     resolution: int | None = None, colour_sources: np.ndarray | None = None,
                     edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training sketches for a batch: images uint8 [N, H, W, 3] -> (sketch [N, 3, R, R] float32 in [-1, 1],
    mask [N, 1, R, R] float32 in {0, 1}), R = `resolution` (default H).

    Image i gets `synthesize(images[i], rng, cfg, colour_sources[i], edges[i])` in order
    (so the batch equals those calls with the same generator), converted by
    `neuedit.runtime.sketch.from_rgba`. colour_sources [N, H, W, 3] uint8, edges [N, H, W] bool.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise UsageError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    n, h, w = images.shape[:3]
    r = h if resolution is None else int(resolution)
    if colour_sources is not None and np.shape(colour_sources) != images.shape:
        raise UsageError(f"colour_sources {np.shape(colour_sources)} must match images {images.shape}")
    if edges is not None and np.shape(edges) != (n, h, w):
        raise UsageError(f"edges must be [N, H, W] = {(n, h, w)}, got {np.shape(edges)}")
    sketch = np.empty((n, 3, r, r), np.float32)
    mask = np.empty((n, 1, r, r), np.float32)
    for i in range(n):
        rgba = synthesize(images[i], rng, cfg,
                          None if colour_sources is None else colour_sources[i],
                          None if edges is None else edges[i])
        sketch[i], mask[i] = from_rgba(rgba, r)
    return sketch, mask
