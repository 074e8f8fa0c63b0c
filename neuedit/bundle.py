"""The model bundle (docs/method.md §5): one folder, `bundle.json` + safetensors (+ ONNX after export).

Reading metadata needs no torch; `load_module` (torch) rebuilds a network from the
architecture spec stored next to its weights, so nobody retypes sizes.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .schema import Schema
from neuedit.errors import NeueditError

FORMAT = "neuedit-bundle"
VERSION = 1


class BundleError(NeueditError, ValueError):
    """A bundle folder that is missing, malformed, or lacks a file it names."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    meta: dict

    # ---- metadata -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)

    @property
    def z_dim(self) -> int:
        return int(self.meta["z_dim"])

    @property
    def c_dim(self) -> int:
        return int(self.meta["c_dim"])

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def schema(self) -> Schema:
        return Schema.from_dict(self.meta["schema"])

    @property
    def has_g2(self) -> bool:
        return "g2" in self.meta

    def file(self, key: str) -> Path:
        """Path of a network's weights ("g1", "g2", "d") or an ONNX graph ("onnx:g1")."""
        if key.startswith("onnx:"):
            rel = self.meta.get("onnx", {}).get(key[5:])
        else:
            rel = self.meta.get(key, {}).get("weights")
        if not rel:
            raise BundleError(f"bundle {self.path} has no {key!r}")
        p = self.path / rel
        if not p.is_file():
            raise BundleError(f"bundle {self.path} names {rel} for {key!r} but the file is missing")
        return p


def config_digest(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _validate(meta: dict, where: str) -> None:
    if meta.get("format") != FORMAT:
        raise BundleError(f"{where}: not a neuedit bundle (format {meta.get('format')!r})")
    if int(meta.get("version", -1)) > VERSION:
        raise BundleError(f"{where}: bundle version {meta.get('version')} is newer than this neuedit ({VERSION})")
    for k in ("z_dim", "c_dim", "resolution", "schema", "g1"):
        if k not in meta:
            raise BundleError(f"{where}: bundle.json lacks {k!r}")
    try:
        schema = Schema.from_dict(meta["schema"])
    except ValueError as e:
        raise BundleError(f"{where}: {e}") from None
    if schema.c_dim != int(meta["c_dim"]):
        raise BundleError(f"{where}: schema has {schema.c_dim} attributes but c_dim is {meta['c_dim']}")


def read(path: str | Path) -> Bundle:
    p = Path(path)
    f = p / "bundle.json"
    if not f.is_file():
        raise BundleError(f"{p} is not a bundle folder (no bundle.json)")
    try:
        meta = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{f}: not valid JSON ({e})") from None
    _validate(meta, str(p))
    return Bundle(p, meta)


def training_steps(meta: dict) -> dict:
    """{"stage1": n, "stage2": m}: the iterations each stage of a bundle was trained for, as
    the trainers record them in `training` (stages absent from the bundle are left out)."""
    t = meta.get("training") or {}
    return {stage: int(t[f"{stage}_step"]) for stage in ("stage1", "stage2") if isinstance(t.get(f"{stage}_step"), int)}


def write_meta(path: str | Path, meta: dict) -> Bundle:
    """Validate and write bundle.json atomically; returns the bundle."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": VERSION, **meta}
    _validate(meta, str(p))
    atomic_write_bytes(p / "bundle.json", (json.dumps(meta, indent=2) + "\n").encode())
    return Bundle(p, meta)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a server running as another user must read it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def shipped_dir() -> Path:
    """Where the demo bundles that ship with the package live."""
    return Path(__file__).parent / "models"


def shipped() -> list[Path]:
    d = shipped_dir()
    return sorted(p for p in d.iterdir() if (p / "bundle.json").is_file()) if d.is_dir() else []


# ---- torch side (imported lazily so metadata reading stays torch-free) -----------------
def save_module(bundle_dir: str | Path, key: str, module, spec: dict, meta: dict) -> dict:
    """Save `module`'s state dict as <key>.safetensors and record {spec, weights} under meta[key]."""
    from safetensors.torch import save_file
    p = Path(bundle_dir)
    p.mkdir(parents=True, exist_ok=True)
    fname = f"{key}.safetensors"
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = p / f".{fname}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, p / fname)
    meta[key] = {**spec, "weights": fname}
    return meta


def load_module(bundle: Bundle, key: str, device="cpu"):
    """Rebuild network `key` ("g1", "g2", "d") from its spec and load its weights, in eval mode."""
    from safetensors.torch import load_file
    from .nets import build
    spec = bundle.meta.get(key)
    if spec is None:
        raise BundleError(f"bundle {bundle.path} has no {key!r} network")
    m = build(spec)
    try:
        m.load_state_dict(load_file(str(bundle.file(key)), device=str(device)))
    except RuntimeError as e:
        raise BundleError(f"{bundle.file(key)}: weights do not fit {spec['name']} {spec.get('kwargs')}: {e}") from None
    return m.to(device).eval().requires_grad_(False)
