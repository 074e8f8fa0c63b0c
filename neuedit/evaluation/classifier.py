"""The evaluation classifier: a small CNN trained by the project on *real* images, whose
penultimate layer is `evaluate`'s learned feature space (for KID and diversity) and whose
attribute heads judge whether a generator obeys its condition `c`.

It learns two tasks at once, so it has useful features for unlabelled domains too:
- the schema's attributes (softmax per exclusive group over the images labelled in that group,
  binary cross-entropy for free attributes);
- which of four rotations (0, 90, 180, 270 degrees) an image was given (Gidaris et al. 2018),
  a self-supervised task that needs the object's shape and layout, not only its colours.

Nothing is downloaded: weights are trained in a couple of CPU minutes and cached by digest.
Images enter as float32 [N, 3, R, R] in [-1, 1] and are resized to `SIDE`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuedit.nn.losses import group_cls_loss
from neuedit.runtime.schema import Schema

SIDE = 64  # every image is judged at 64x64


@dataclass(frozen=True)
class ClassifierConfig:
    steps: int = 1500          # optimisation steps
    batch: int = 64
    lr: float = 1e-3
    width: int = 32            # channels of the first conv; doubled at each of 4 stride-2 stages
    seed: int = 0


class AttributeNet(nn.Module):
    """x [N, 3, 64, 64] -> (features [N, 8*width], attribute logits [N, C], rotation logits [N, 4])."""

    def __init__(self, c_dim: int, width: int = 32):
        super().__init__()
        # stride first at every scale: 64 -> 32 -> 16 -> 8 -> 4, a 3x3 conv after each but the last
        layers, c_in = [], 3
        for i in range(4):
            c_out = width * 2 ** i
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            if i < 3:
                layers += [nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head_attr = nn.Linear(c_in, c_dim)
        self.head_rot = nn.Linear(c_in, 4)
        self.feature_dim = c_in

    def forward(self, x):
        h = self.features(x)
        return h, self.head_attr(h), self.head_rot(h)


def attribute_loss(logits: torch.Tensor, c: torch.Tensor, schema: Schema) -> torch.Tensor:
    """The schema-aware condition loss (`losses.group_cls_loss`) over the schema's groups."""
    return group_cls_loss(logits, c, [(s, g.exclusive) for g, s in schema.slices()])


def _resize(x: torch.Tensor) -> torch.Tensor:
    return x if x.shape[-1] == SIDE else F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", antialias=True,
                                                        align_corners=False)


def _rotations(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate image i of x [N, 3, S, S] by k[i] * 90 degrees."""
    out = x.clone()
    for r in range(1, 4):
        sel = k == r
        if sel.any():
            out[sel] = torch.rot90(x[sel], r, (2, 3))
    return out


def train_classifier(images: np.ndarray, c: np.ndarray, schema: Schema, cfg: ClassifierConfig = ClassifierConfig(),
                     progress: bool = False) -> AttributeNet:
    """images uint8 [N, H, W, 3] (real, labelled by c [N, C]) -> a trained AttributeNet (eval mode)."""
    torch.manual_seed(cfg.seed)
    net = AttributeNet(schema.c_dim, cfg.width)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    x_all = torch.from_numpy(images)  # [N, H, W, 3] uint8
    c_all = torch.from_numpy(np.asarray(c, np.float32))
    g = torch.Generator().manual_seed(cfg.seed)
    it = range(cfg.steps)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="evaluation classifier", unit="it")
    net.train()
    for _ in it:
        idx = torch.randint(len(x_all), (cfg.batch,), generator=g)
        x = _resize(x_all[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0)
        flip = torch.rand(cfg.batch, generator=g) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        k = torch.randint(4, (cfg.batch,), generator=g)
        upright = k == 0  # attributes are learned on upright images, as generators draw them
        _, a_logits, _ = net(x)
        _, _, r_logits = net(_rotations(x, k))
        loss = attribute_loss(a_logits[upright], c_all[idx][upright], schema) + F.cross_entropy(r_logits, k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def embed(net: AttributeNet, x: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """x float32 [N, 3, R, R] in [-1, 1] -> (features [N, D] float64, attribute logits [N, C])."""
    feats, logits = [], []
    for i in range(0, len(x), chunk):
        h, a, _ = net(_resize(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk], np.float32))))
        feats.append(h.double().numpy())
        logits.append(a.numpy())
    return np.concatenate(feats), np.concatenate(logits)


def group_predictions(logits: np.ndarray, schema: Schema) -> dict[str, np.ndarray]:
    """Exclusive groups -> predicted attribute index per image [N]."""
    return {g.name: logits[:, s].argmax(1) for g, s in schema.slices() if g.exclusive}


def digest(train_files: list[str], schema: Schema, cfg: ClassifierConfig) -> str:
    h = hashlib.sha256(json.dumps({"files": train_files, "schema": schema.to_dict(), "cfg": asdict(cfg)},
                                  sort_keys=True).encode())
    return h.hexdigest()[:16]


def load_or_train(path: Path, key: str, images: np.ndarray, c: np.ndarray, schema: Schema,
                  cfg: ClassifierConfig, progress: bool = False) -> AttributeNet:
    """Reuse the classifier cached at `path` when it was trained on the same files and config
    (`key` from `digest`), so bundles evaluated against one set are judged by one classifier."""
    from safetensors.torch import load_file, save_file
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()).get("digest") == key:
        net = AttributeNet(schema.c_dim, cfg.width)
        net.load_state_dict(load_file(str(path)))
        return net.eval().requires_grad_(False)
    net = train_classifier(images, c, schema, cfg, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    meta_path.write_text(json.dumps({"digest": key, "config": asdict(cfg), "images": len(images)}, indent=2) + "\n")
    return net
