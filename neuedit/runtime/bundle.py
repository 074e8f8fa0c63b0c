"""The model bundle (docs/method.md §5): one folder, `bundle.json` + safetensors (+ ONNX after export).

`BundleMeta` is bundle.json as typed fields; `to_dict` writes the layout of §5 and `from_dict`
is the one place it is checked. Reading metadata needs no torch; `neuedit.nn.weights.load_module` (torch) rebuilds
a network from the architecture spec stored next to its weights, so nobody retypes sizes.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from neuedit.runtime.schema import Schema
from neuedit.errors import NeueditError

FORMAT = "neuedit-bundle"
VERSION = 1
KINDS = ("stage1", "two-stage")
NETWORKS = ("g1", "d", "g2", "e")  # the order bundle.json lists them in (e: the photo encoder)


class BundleError(NeueditError, ValueError):
    """A bundle folder that is missing, malformed, or lacks a file it names."""


# ---- checking parsed JSON ------------------------------------------------------------------------
_TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object", list: "a list"}


def _typed(value, typ: type, what: str):
    # JSON true/false parse as bool, which Python counts as int: a size or step must not be one
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
        raise BundleError(f"{what} must be {_TYPE_NAMES.get(typ, typ.__name__)}, not {json.dumps(value)[:60]}")
    return value


def _field(d: dict, key: str, typ: type, where: str, required: bool = True):
    if key not in d:
        if required:
            raise BundleError(f"{where} lacks {key!r}")
        return None
    return _typed(d[key], typ, f"{where}: {key!r}")


def _file_name(value, what: str) -> str:
    """A file inside the bundle folder: a plain name, so a bundle cannot point outside itself."""
    _typed(value, str, what)
    if not value or value in (".", "..") or Path(value).name != value or "\\" in value:
        raise BundleError(f"{what} must be a file name inside the bundle folder, not {value!r}")
    return value


def _plain(x):
    """The JSON form of `x` (tuples -> lists, a fresh copy), so a meta built in memory equals
    the same meta read back from disk."""
    return json.loads(json.dumps(x))


# ---- the typed metadata --------------------------------------------------------------------------
@dataclass(frozen=True)
class NetSpec:
    """One network: its architecture (`nets.build` spec) and weights file. `weights` is None
    where the bundle holds no weights for it (export's serve-only form, docs/method.md §5)."""
    name: str
    kwargs: dict = field(default_factory=dict)
    weights: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "kwargs", _plain(self.kwargs))

    @property
    def spec(self) -> dict:
        return {"name": self.name, "kwargs": copy.deepcopy(self.kwargs)}

    def to_dict(self) -> dict:
        return {**self.spec, **({"weights": self.weights} if self.weights else {})}

    @classmethod
    def from_dict(cls, d, where: str) -> "NetSpec":
        _typed(d, dict, where)
        weights = d.get("weights")
        return cls(name=_field(d, "name", str, where), kwargs=_field(d, "kwargs", dict, where, required=False) or {},
                   weights=None if weights is None else _file_name(weights, f"{where}: 'weights'"))


# bundle.json's "training": key -> type; written in this order, keys not listed are kept as they are
_PROVENANCE = {"stage1_step": int, "config_digest": str, "data": str, "stage1_config": dict, "threads": int,
               "stage2_step": int, "stage2_config_digest": str, "stage1_bundle": str, "encoder_step": int,
               "encoder_config_digest": str, "note": str}


@dataclass(frozen=True)
class Provenance:
    """How a bundle was trained: the step each stage reached (`stage2_step` None for a
    stage-one bundle), the configuration(s) and data, threads, and the stage-one bundle a
    two-stage one was built on."""
    stage1_step: int
    stage2_step: int | None = None
    config_digest: str | None = None          # stage one's run configuration
    data: str | None = None                   # stage one's data root
    stage1_config: dict | None = None
    threads: int | None = None                # torch threads of the stage-one run
    stage2_config_digest: str | None = None
    stage1_bundle: str | None = None          # the stage-one bundle stage two started from
    encoder_step: int | None = None           # the photo encoder's training step, when it has one
    encoder_config_digest: str | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept on rewrite

    def __post_init__(self):
        object.__setattr__(self, "stage1_config", _plain(self.stage1_config))
        object.__setattr__(self, "extra", _plain(self.extra))

    def steps(self) -> dict:
        """{"stage1": n, "stage2": m}; a stage the bundle does not have is left out."""
        return {s: n for s, n in (("stage1", self.stage1_step), ("stage2", self.stage2_step),
                                  ("encoder", self.encoder_step)) if n is not None}

    def to_dict(self) -> dict:
        d = {k: copy.deepcopy(getattr(self, k)) for k in _PROVENANCE if getattr(self, k) is not None}
        return {**d, **copy.deepcopy(self.extra)}

    @classmethod
    def from_dict(cls, d, where: str) -> "Provenance":
        _typed(d, dict, where)
        known = {k: _field(d, k, typ, where, required=k == "stage1_step") for k, typ in _PROVENANCE.items()}
        return cls(**known, extra={k: v for k, v in d.items() if k not in _PROVENANCE})


# bundle.json's top-level keys this version knows, in the order it writes them
_KEYS = ("format", "version", "name", "kind", "domain", "z_dim", "c_dim", "resolution", "value_range", "z_prior",
         "schema", "preset", "training", *NETWORKS, "onnx", "files")


@dataclass(frozen=True)
class BundleMeta:
    """bundle.json (docs/method.md §5) as typed fields."""
    kind: str                       # "stage1" or "two-stage" (the latter has a "g2" network)
    name: str
    domain: str
    z_dim: int
    c_dim: int
    resolution: int
    schema: dict                    # `Schema.to_dict()`
    training: Provenance
    networks: dict[str, NetSpec]    # "g1" (always), "d", "g2"
    value_range: tuple[float, float] = (-1, 1)  # pixel values of the generators' images
    z_prior: str = "normal"
    preset: str | None = None       # the architecture preset it was trained with
    onnx: dict[str, str] = field(default_factory=dict)  # exported graph ("g1", "g2", "latent_step") -> file
    files: tuple[str, ...] | None = None  # every file of a serve-only bundle, bundle.json included
    extra: dict = field(default_factory=dict)  # top-level keys this version does not know

    def __post_init__(self):
        object.__setattr__(self, "value_range", tuple(self.value_range))
        object.__setattr__(self, "schema", _plain(self.schema))
        object.__setattr__(self, "networks", {k: self.networks[k] for k in NETWORKS if k in self.networks})
        object.__setattr__(self, "onnx", dict(self.onnx))
        object.__setattr__(self, "files", None if self.files is None else tuple(self.files))
        object.__setattr__(self, "extra", _plain(self.extra))

    # ---- derived -----------------------------------------------------------------------------
    @property
    def steps(self) -> dict:
        return self.training.steps()

    def named_files(self) -> list[tuple[str, str]]:
        """(what, file) for every file bundle.json names: weights ("g1"), graphs ("onnx:g1"),
        and a serve-only bundle's "files" list."""
        out = [(k, n.weights) for k, n in self.networks.items() if n.weights]
        out += [(f"onnx:{g}", f) for g, f in self.onnx.items()]
        return out + [("files", f) for f in self.files or ()]

    def missing_files(self, folder: str | Path) -> list[tuple[str, str]]:
        """The named files that are not in `folder` (bundle.json itself aside: it is written last)."""
        return [(w, f) for w, f in self.named_files() if f != "bundle.json" and not (Path(folder) / f).is_file()]

    def without_graphs(self) -> "BundleMeta":
        """The same model before export: no ONNX graphs, no serve-only file list."""
        return replace(self, onnx={}, files=None)

    # ---- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"format": FORMAT, "version": VERSION, "name": self.name, "kind": self.kind, "domain": self.domain,
             "z_dim": self.z_dim, "c_dim": self.c_dim, "resolution": self.resolution,
             "value_range": list(self.value_range), "z_prior": self.z_prior, "schema": copy.deepcopy(self.schema)}
        if self.preset is not None:
            d["preset"] = self.preset
        d["training"] = self.training.to_dict()
        d.update((k, n.to_dict()) for k, n in self.networks.items())
        if self.onnx:
            d["onnx"] = dict(self.onnx)
        if self.files is not None:
            d["files"] = list(self.files)
        return {**d, **copy.deepcopy(self.extra)}

    @classmethod
    def from_dict(cls, d, where: str = "bundle.json") -> "BundleMeta":
        """Parse and check a bundle.json; a BundleError names the field that is wrong."""
        _typed(d, dict, where)
        if d.get("format") != FORMAT:
            raise BundleError(f"{where}: not a neuedit bundle (format {d.get('format')!r})")
        if _field(d, "version", int, where) > VERSION:
            raise BundleError(f"{where}: bundle version {d['version']} is newer than this neuedit ({VERSION})")
        sizes = {k: _field(d, k, int, where) for k in ("z_dim", "c_dim", "resolution")}
        for k, v in sizes.items():
            if v < (0 if k == "c_dim" else 1):
                raise BundleError(f"{where}: {k!r} must be {'>= 0' if k == 'c_dim' else 'positive'}, not {v}")
        meta = cls(kind=_field(d, "kind", str, where), name=_field(d, "name", str, where),
                   domain=_field(d, "domain", str, where), **sizes,
                   schema=_field(d, "schema", dict, where),
                   training=Provenance.from_dict(_field(d, "training", dict, where), f"{where}: 'training'"),
                   networks=_networks(d, where), value_range=_value_range(_field(d, "value_range", list, where), where),
                   z_prior=_field(d, "z_prior", str, where), preset=_field(d, "preset", str, where, required=False),
                   onnx=_graphs(d.get("onnx", {}), where), files=_files(d.get("files"), where),
                   extra={k: v for k, v in d.items() if k not in _KEYS})
        meta._check(where)
        return meta

    def _check(self, where: str) -> None:
        """What ties fields together: the kind and its networks and steps, the schema and c_dim."""
        if self.kind not in KINDS:
            raise BundleError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, not {self.kind!r}")
        two = self.kind == "two-stage"
        rule = "needs" if two else "must not have"
        if two != ("g2" in self.networks):
            raise BundleError(f"{where}: a {self.kind} bundle {rule} a 'g2' network")
        if two != (self.training.stage2_step is not None):
            raise BundleError(f"{where}: a {self.kind} bundle {rule} 'training.stage2_step'")
        try:
            schema = Schema.from_dict(self.schema)
        except ValueError as e:
            raise BundleError(f"{where}: 'schema': {e}") from None
        if schema.c_dim != self.c_dim:
            raise BundleError(f"{where}: schema has {schema.c_dim} attributes but c_dim is {self.c_dim}")


def _networks(d: dict, where: str) -> dict:
    _field(d, "g1", dict, where)  # every bundle has a generator
    return {k: NetSpec.from_dict(d[k], f"{where}: {k!r}") for k in NETWORKS if k in d}


def _value_range(v: list, where: str) -> tuple:
    ok = len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and v[0] < v[1]
    if not ok:
        raise BundleError(f"{where}: 'value_range' must be [low, high], not {json.dumps(v)[:60]}")
    return tuple(v)


def _graphs(v, where: str) -> dict:
    _typed(v, dict, f"{where}: 'onnx'")
    return {_typed(g, str, f"{where}: 'onnx' key"): _file_name(f, f"{where}: 'onnx.{g}'") for g, f in v.items()}


def _files(v, where: str) -> tuple | None:
    if v is None:
        return None
    return tuple(_file_name(f, f"{where}: 'files' entry") for f in _typed(v, list, f"{where}: 'files'"))


# ---- the bundle folder ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Bundle:
    path: Path
    info: BundleMeta

    # ---- metadata -------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        """bundle.json as a plain dict (a fresh copy; `info` is the typed form)."""
        return self.info.to_dict()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def z_dim(self) -> int:
        return self.info.z_dim

    @property
    def c_dim(self) -> int:
        return self.info.c_dim

    @property
    def resolution(self) -> int:
        return self.info.resolution

    @property
    def schema(self) -> Schema:
        return Schema.from_dict(self.info.schema)

    @property
    def has_g2(self) -> bool:
        return "g2" in self.info.networks

    @property
    def training_steps(self) -> dict:
        return self.info.steps

    def file(self, key: str) -> Path:
        """Path of a network's weights ("g1", "g2", "d") or an ONNX graph ("onnx:g1")."""
        if key.startswith("onnx:"):
            rel = self.info.onnx.get(key[5:])
        else:
            net = self.info.networks.get(key)
            if net is not None and net.weights is None:
                raise BundleError(f"bundle {self.path} holds no weights for {key!r} (a serve-only bundle has "
                                  "only its ONNX graphs)")
            rel = net and net.weights
        if not rel:
            raise BundleError(f"bundle {self.path} has no {key!r}")
        p = self.path / rel
        if not p.is_file():
            raise BundleError(f"bundle {self.path} names {rel} for {key!r} but the file is missing")
        return p


def config_digest(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_files(info: BundleMeta, folder: Path) -> None:
    missing = info.missing_files(folder)
    if missing:
        what, f = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BundleError(f"{folder}: bundle.json names {f} for {what!r} but the file is missing{more}")


def read(path: str | Path) -> Bundle:
    """Read and check a bundle folder: bundle.json parses and every file it names is there."""
    p = Path(path)
    f = p / "bundle.json"
    if not f.is_file():
        raise BundleError(f"{p} is not a bundle folder (no bundle.json)")
    try:
        d = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{f}: not valid JSON ({e})") from None
    info = BundleMeta.from_dict(d, str(f))
    _check_files(info, p)
    return Bundle(p, info)


def training_steps(meta: BundleMeta | dict) -> dict:
    """{"stage1": n, "stage2": m}: the iterations each stage of a bundle was trained for
    (stages absent from the bundle are left out). `meta`: typed, or bundle.json as a dict."""
    info = meta if isinstance(meta, BundleMeta) else BundleMeta.from_dict(meta)
    return info.steps


def write_meta(path: str | Path, meta: BundleMeta | dict) -> Bundle:
    """Check and write bundle.json atomically; returns the bundle. `meta` may also be a
    bundle.json dict (format and version may be left out). The files it names must be there."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    d = meta.to_dict() if isinstance(meta, BundleMeta) else {"format": FORMAT, "version": VERSION, **meta}
    info = BundleMeta.from_dict(d, str(p / "bundle.json"))  # one check for typed and dict metas alike
    _check_files(info, p)
    atomic_write_bytes(p / "bundle.json", (json.dumps(info.to_dict(), indent=2) + "\n").encode())
    return Bundle(p, info)


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
    return Path(__file__).parent.parent / "models"


def shipped() -> list[Path]:
    d = shipped_dir()
    return sorted(p for p in d.iterdir() if (p / "bundle.json").is_file()) if d.is_dir() else []


# ---- torch side (imported lazily so metadata reading stays torch-free) -----------------
