"""`neuedit prepare`: detect faces with an OpenCV cascade, crop with a margin, resize, and
write an image folder ready for training (Jin et al. 2017 cropped Getchu art this way; for
anime art use an anime-face cascade such as nagadomi's lbpcascade_animeface.xml)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuedit.config import flags as tcli
from neuedit.data.datasets import IMAGE_EXTS, DataError, list_images, load_rgb
from neuedit.errors import UsageError, MissingFileError


@dataclass(frozen=True)
class PrepareConfig:
    cascade: str               # cascade XML file, or opencv:<file> for one bundled with OpenCV
                               # (e.g. opencv:haarcascade_frontalface_default.xml)
    size: int = 96             # output side in pixels
    margin: float = 0.25       # extra border around the detected box, as a fraction of its side
    min_face: int = 24         # smallest face side to detect, in pixels
    scale_factor: float = 1.1  # cascade pyramid step
    min_neighbors: int = 5     # cascade detection strictness

    def __post_init__(self):
        if self.size < 8 or self.margin < 0 or self.min_face < 1 or self.scale_factor <= 1:
            raise UsageError("size >= 8, margin >= 0, min_face >= 1 and scale_factor > 1 are required")


def load_cascade(spec: str):
    import cv2
    if spec.startswith("opencv:"):
        path = Path(cv2.data.haarcascades) / spec[len("opencv:"):]
    else:
        path = Path(spec)
    if not path.is_file():
        raise MissingFileError(f"cascade file {str(path)!r} not found")
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise DataError(f"{path} is not a valid OpenCV cascade file")
    return clf


def detect_faces(rgb: np.ndarray, clf, cfg: PrepareConfig) -> list[tuple[int, int, int, int]]:
    """rgb [H, W, 3] uint8 -> boxes (x, y, w, h), largest first."""
    import cv2
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    boxes = clf.detectMultiScale(gray, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
                                 minSize=(cfg.min_face, cfg.min_face))
    return sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3])


def crop_face(rgb: np.ndarray, box, cfg: PrepareConfig) -> np.ndarray:
    """A square crop around `box` grown by the margin (clipped to the image), resized to cfg.size."""
    from PIL import Image
    x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * cfg.margin)))
    cx, cy = x + w / 2, y + h / 2
    H, W = rgb.shape[:2]
    side = min(side, H, W)
    x0 = int(round(min(max(cx - side / 2, 0), W - side)))
    y0 = int(round(min(max(cy - side / 2, 0), H - side)))
    crop = rgb[y0:y0 + side, x0:x0 + side]
    return np.asarray(Image.fromarray(crop).resize((cfg.size, cfg.size), Image.BICUBIC))


def prepare(inputs: list[Path], out: Path, cfg: PrepareConfig, all_faces: bool = False, progress: bool = True) -> dict:
    """Crop faces from every image under `inputs` into `out`; returns counts."""
    from PIL import Image
    clf = load_cascade(cfg.cascade)
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += list_images(p)
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            files.append(p)
        else:
            raise DataError(f"{p} is neither an image nor a folder")
    if not files:
        raise DataError("no input images")
    out.mkdir(parents=True, exist_ok=True)
    counts = {"images": len(files), "faces": 0, "no_face": 0, "unreadable": 0}
    it = files
    if progress:
        from tqdm import tqdm
        it = tqdm(files, desc="prepare", unit="img")
    for f in it:
        try:
            rgb = load_rgb(f)
        except Exception:
            counts["unreadable"] += 1
            continue
        boxes = detect_faces(rgb, clf, cfg)
        if not boxes:
            counts["no_face"] += 1
            continue
        for k, box in enumerate(boxes if all_faces else boxes[:1]):
            Image.fromarray(crop_face(rgb, box, cfg)).save(out / f"{f.stem}_{k}.png")
            counts["faces"] += 1
    return counts


@dataclass(frozen=True)
class PrepareCommand:
    """Everything `neuedit prepare` takes."""
    inputs: tuple[Path, ...]   # images or folders of images
    out: Path                  # output image folder
    crop: PrepareConfig        # detecting and cropping the faces
    all_faces: bool = False    # keep every face, not just the largest


DECLARED = dict(positional=("inputs",), aliases={"inputs": "input"})  # `neuedit prepare INPUT [INPUT ...]`


COMMAND = tcli.Command(PrepareCommand, DECLARED)
add_arguments, build_config = COMMAND.add_arguments, COMMAND.build_config


def run(args) -> int:
    cmd = build_config(args)
    c = prepare(list(cmd.inputs), cmd.out, cmd.crop, all_faces=cmd.all_faces)
    print(f"{c['faces']} faces from {c['images']} images ({c['no_face']} without a face, "
          f"{c['unreadable']} unreadable) -> {cmd.out}")
    return 0
