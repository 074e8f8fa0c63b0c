"""Image datasets: a folder of images with an optional `labels.csv`, or side-by-side pairs.

Images are decoded once, converted to RGB and resized to the training resolution, and
held in memory as uint8 (18k faces at 64x64 are 220 MB): training then reads batches by
index, which keeps data order a pure function of (seed, epoch) and makes resume exact.
numpy + pillow only.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuedit.runtime.schema import EncodeReport, Schema
from neuedit.errors import NeueditError, UsageError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class DataError(NeueditError, ValueError):
    """A dataset that cannot be used as given (missing folder, no images, bad labels file)."""


@dataclass(frozen=True)
class DataConfig:
    root: str                  # a folder of images (searched recursively), or of AB pairs
    resolution: int = 64       # square training resolution
    labels: str | None = None  # labels CSV (file,tags); default: <root>/labels.csv when a schema has attributes
    layout: str = "single"     # "single" images, or "pair" side-by-side files
    pair_image: str = "left"   # pair layout: which half is the photo ("left" for ../shared/data/shoes)
    limit: int | None = None   # use at most this many images (sorted by name), for tests and quick runs
    skip: int = 0              # leave out the first N images (sorted by name): a held-out split is
                               # `limit=N` for training and `skip=N` for evaluation
    flip: bool = True          # horizontal-flip augmentation
    recolour: int = 0          # a schema derived from the pixels (`object_colour`): recoloured copies of
                               # each photo added for stage one (neuedit.synth.colour), labelled with their colour

    def __post_init__(self):
        if self.layout not in ("single", "pair"):
            raise UsageError(f"layout must be 'single' or 'pair', not {self.layout!r}")
        if self.pair_image not in ("left", "right"):
            raise UsageError(f"pair_image must be 'left' or 'right', not {self.pair_image!r}")
        if self.skip < 0 or (self.limit is not None and self.limit < 1):
            raise UsageError("skip must be >= 0 and limit >= 1")
        if self.resolution < 8:
            raise UsageError("resolution must be at least 8")
        if self.recolour < 0:
            raise UsageError("recolour must be >= 0")


@dataclass
class ImageSet:
    """Decoded images and their labels. `images` [N, H, W, 3] uint8; `c` [N, c_dim] float32."""
    images: np.ndarray
    c: np.ndarray
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    label_report: EncodeReport | None = None
    missing_labelled: int = 0  # label rows whose file is not in the folder
    unlabelled: int = 0        # images with no label row
    edges: np.ndarray | None = None  # pair layout: the other half [N, H, W, 3] uint8
    copies: int = 0            # recoloured copies appended after the photos (neuedit.synth.colour)

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> str:
        parts = [f"{len(self)} images at {self.images.shape[1]}x{self.images.shape[2]}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} unreadable files skipped (first: {self.skipped[0][0]}: {self.skipped[0][1]})")
        if self.label_report is not None:
            parts.append(self.label_report.summary())
        if self.copies:
            parts.append(f"{self.copies} recoloured copies added")
        if self.missing_labelled:
            parts.append(f"{self.missing_labelled} label rows name files that are missing")
        if self.unlabelled:
            parts.append(f"{self.unlabelled} images have no label row (c left empty)")
        return "; ".join(parts)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparent pixels are composited on white (what a viewer shows)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, img).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: Path, resolution: int | None = None) -> np.ndarray:
    """Read one image file -> [H, W, 3] uint8, fully decoded (a truncated file raises)."""
    with Image.open(path) as img:
        img.load()
        img = to_rgb(img)
        if resolution is not None and img.size != (resolution, resolution):
            img = img.resize((resolution, resolution), Image.BICUBIC)
        return np.asarray(img, np.uint8)


def _split_pair(path: Path, resolution: int, image_side: str) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(path) as img:
        img.load()
        img = to_rgb(img)
        w, h = img.size
        if w < 2 * 4 or w < h:
            raise UsageError(f"pair image is {w}x{h}; expected two side-by-side halves (width = 2 x height)")
        left, right = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, 2 * (w // 2), h))
    photo, edge = (left, right) if image_side == "left" else (right, left)
    size = (resolution, resolution)
    return (np.asarray(photo.resize(size, Image.BICUBIC), np.uint8),
            np.asarray(edge.resize(size, Image.BICUBIC), np.uint8))


def list_images(root: Path) -> list[Path]:
    return sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()),
                  key=lambda p: str(p.relative_to(root)))


def read_labels(path: Path) -> dict[str, list[str]]:
    """labels.csv (`file,tags`, tags separated by spaces) -> {file: [tags]}."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"file", "tags"} <= set(reader.fieldnames):
                raise DataError(f"{path}: expected a header 'file,tags', found {reader.fieldnames}")
            return {row["file"].strip(): (row["tags"] or "").split() for row in reader if row.get("file")}
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text CSV file ({e.reason})") from None


def load_dataset(cfg: DataConfig, schema: Schema, progress: bool = False) -> ImageSet:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"data folder {str(root)!r} does not exist or is not a folder")
    files = list_images(root)
    files = files[cfg.skip:]
    if cfg.limit is not None:
        files = files[: cfg.limit]
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) found under {root}")

    labels: dict[str, list[str]] | None = None
    label_path = Path(cfg.labels) if cfg.labels else root / "labels.csv"
    if schema.c_dim and not schema.derive:  # a derived schema's c comes from the pixels (neuedit.synth.colour)
        if not label_path.is_file():
            raise DataError(f"schema {schema.name!r} has {schema.c_dim} attributes but there is no labels file "
                            f"{label_path} (use --schema empty for unlabelled data)")
        labels = read_labels(label_path)

    it = files
    if progress:
        from tqdm import tqdm
        it = tqdm(files, desc=f"loading {root.name}", unit="img", leave=False)
    images, edges, kept, skipped = [], [], [], []
    for p in it:
        try:
            if cfg.layout == "pair":
                photo, edge = _split_pair(p, cfg.resolution, cfg.pair_image)
                edges.append(edge)
            else:
                photo = load_rgb(p, cfg.resolution)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
            skipped.append((str(p.relative_to(root)), str(e) or type(e).__name__))
            continue
        images.append(photo)
        kept.append(str(p.relative_to(root)).replace("\\", "/"))
    if not images:
        raise DataError(f"none of the {len(files)} image files under {root} could be read "
                        f"(first error: {skipped[0][0]}: {skipped[0][1]})")

    report, missing, unlabelled = None, 0, 0
    if labels is not None:
        rows = []
        for f in kept:
            tags = labels.get(f, labels.get(Path(f).name))
            if tags is None:
                unlabelled += 1
                tags = []
            rows.append(tags)
        c, report = schema.encode_rows(rows)
        names = set(kept) | {Path(f).name for f in kept}
        if cfg.limit is None and not cfg.skip:
            missing = sum(1 for f in labels if f not in names)
    else:
        c = np.zeros((len(kept), schema.c_dim), np.float32)
    return ImageSet(images=np.stack(images), c=c, files=kept, skipped=skipped, label_report=report,
                    missing_labelled=missing, unlabelled=unlabelled,
                    edges=np.stack(edges) if edges else None)


def image_to_model(rgb: np.ndarray, resolution: int) -> np.ndarray:
    """A photo of any size, uint8 [H, W, 3] (grey [H, W] and RGBA are accepted too) ->
    float32 [3, R, R] in [-1, 1]: centre-cropped to a square (no stretching), then resized
    with Lanczos (area-like when shrinking)."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise UsageError(f"image must be [H, W, 3] (RGB), got {list(a.shape)}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = Image.fromarray(np.ascontiguousarray(a[top:top + s, left:left + s]), "RGB")
    if s != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    out = np.asarray(img, np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(np.moveaxis(out, -1, 0))  # [3, R, R]


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] in [-1, 1] (the models' value range)."""
    x = images.astype(np.float32) / 127.5 - 1.0
    return np.moveaxis(x, -1, -3)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3]."""
    x = np.clip((np.asarray(x, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.moveaxis(x, -3, -1)


def image_grid(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """uint8 [N, H, W, 3] -> one uint8 grid image with `nrow` images per row."""
    n, h, w, _ = images.shape
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[i]
    return grid
