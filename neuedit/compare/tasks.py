"""Edit task sets: the same sources and strokes for every editor, drawn from a seed, saved to disk.

A task is a source (a stage-one sample, given by its state, or a real photo) and a sketch
(RGBA uint8 [R, R, 4], alpha marks the strokes, as `neuedit.runtime.sketch` reads it). Synthetic
strokes come from *other* real images of the domain (`neuedit.synth.strokes`): colour strokes take
their colours from a donor photo, edge strokes are a donor's edge lines cut to a region (the
dataset's own edge drawing for paired data, Canny otherwise). User sketches (RGBA PNGs in a
folder) are added on top, one task per source kind. A chain is a source plus K stroke layers
for K successive edits (the stability study). Held-out real images (not used as sources or
donors) go with the set, as one mosaic PNG, for the realism metric.

On disk (`TaskSet.save`): `tasks.json`, `<id>_sketch.png` per task, `<id>_source.png` per real
source, `<chain>_r<k>.png` per chain round, `heldout.png`. Every draw comes from
`np.random.default_rng([seed, stream, index])`, so the same seed, data and bundle
dimensions give byte-identical files (PNG encoding by Pillow, JSON with fixed layout).
numpy, pillow, OpenCV, scikit-image; no torch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.morphology import skeletonize

from neuedit.runtime.bundle import atomic_write_bytes
from neuedit.data.datasets import DataConfig, load_dataset
from neuedit.runtime.schema import Schema, empty as empty_schema
from neuedit.runtime.sketch import from_rgba, to_rgba
from neuedit.runtime.state import EditState, sample_state
from neuedit.synth.strokes import StrokeConfig, colour_strokes, edge_map, edge_strokes, edges_from_pair_half
from neuedit.errors import UsageError, MissingFileError

FORMAT = "neuedit-tasks"
VERSION = 1
SOURCE_KINDS = ("sample", "real")
STROKE_KINDS = ("colour", "edge")
MOSAIC_COLS = 16  # tiles per row of heldout.png

# independent random streams: np.random.default_rng([seed, STREAM, index])
_PARTITION, _TASK, _USER, _CHAIN = 1, 2, 3, 4


@dataclass(frozen=True)
class TaskConfig:
    n: int = 32                                      # synthetic tasks (user sketches come on top)
    seed: int = 0                                    # every draw derives from it
    kinds: tuple[str, ...] = STROKE_KINDS            # stroke kinds, cycled over tasks (inner cycle: sources)
    sources: tuple[str, ...] = SOURCE_KINDS          # source kinds, cycled over tasks
    chains: int = 8                                  # stability chains (successive edits of one image)
    rounds: int = 5                                  # K: edits per chain, one new stroke each
    heldout: int = 256                               # held-out real images for KID (at most half of the pool's rest)
    pool: int = 2000                                 # read at most this many images (sorted by name) per data folder
    edges: str = "auto"                              # donors' edge lines: "pairs" (drawings), "canny", "xdog", "auto"
    strokes: StrokeConfig = field(default_factory=StrokeConfig)  # colour and edge stroke synthesis
    donor_tries: int = 20                            # donors tried for an edge stroke before giving up

    def __post_init__(self):
        if self.n < 0 or self.chains < 0 or self.rounds < 1 or self.heldout < 0 or self.pool < 1:
            raise UsageError("need n >= 0, chains >= 0, rounds >= 1, heldout >= 0, pool >= 1")
        if not self.kinds or any(k not in STROKE_KINDS for k in self.kinds):
            raise UsageError(f"kinds must be some of {STROKE_KINDS}, not {self.kinds}")
        if not self.sources or any(s not in SOURCE_KINDS for s in self.sources):
            raise UsageError(f"sources must be some of {SOURCE_KINDS}, not {self.sources}")
        if self.edges not in ("auto", "pairs", "canny", "xdog"):
            raise UsageError("edges must be auto, pairs, canny or xdog")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as they come back from JSON


@dataclass(frozen=True, eq=False)
class Source:
    """What an edit starts from."""
    kind: str                        # "sample" (a stage-one state) or "real" (a photo)
    state: EditState | None = None   # sample: its state (one row)
    image: np.ndarray | None = None  # real: uint8 [R, R, 3]
    c: np.ndarray | None = None      # known attributes [c_dim] (the state's c, the photo's labels) or None
    file: str = ""                   # real: the data file it came from


@dataclass(frozen=True, eq=False)
class Stroke:
    """One sketch: RGBA uint8 [R, R, 4]; alpha 255 on strokes, RGB their colour."""
    kind: str         # "colour" or "edge" (thin dark lines)
    rgba: np.ndarray  # uint8 [R, R, 4]
    origin: str       # "donor:<data file>" or "user:<png name>"


@dataclass(frozen=True, eq=False)
class Task:
    id: str          # "t000"
    source: Source
    stroke: Stroke


@dataclass(frozen=True, eq=False)
class Chain:
    id: str                      # "s000"
    source: Source
    rounds: tuple[Stroke, ...]   # the strokes added at each successive edit


@dataclass(eq=False)
class TaskSet:
    meta: dict                   # format, seed, config, bundle dimensions, data folders, held-out files
    tasks: list[Task]
    chains: list[Chain]
    heldout: np.ndarray          # uint8 [M, R, R, 3] real images used as neither source nor donor

    @property
    def resolution(self) -> int:
        return int(self.meta["bundle"]["resolution"])

    def check(self, bundle) -> "TaskSet":
        """Refuse a bundle whose dimensions differ from the ones the set was drawn for."""
        want = self.meta["bundle"]
        for k in ("resolution", "z_dim", "c_dim"):
            if int(want[k]) != int(getattr(bundle, k)):
                raise UsageError(f"task set was made for {k} {want[k]} but bundle {bundle.name} has "
                                 f"{getattr(bundle, k)} (make a task set for this bundle)")
        return self

    # ---- disk -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the set into folder `path` (files a previous set there named are removed first)."""
        p = clear_folder(path, "tasks.json")
        doc = dict(self.meta)
        doc["tasks"] = [_task_doc(t, p) for t in self.tasks]
        doc["chains"] = [_chain_doc(c, p) for c in self.chains]
        doc["heldout"] = {**self.meta.get("heldout", {}), "count": int(len(self.heldout)),
                          "image": "heldout.png" if len(self.heldout) else None, "cols": MOSAIC_COLS}
        if len(self.heldout):
            _write_png(p / "heldout.png", mosaic(self.heldout, MOSAIC_COLS))
        atomic_write_bytes(p / "tasks.json", (json.dumps(doc, indent=1) + "\n").encode())
        return p

    @classmethod
    def load(cls, path: str | Path) -> "TaskSet":
        p = Path(path)
        doc = read_doc(p / "tasks.json", FORMAT, VERSION, "task set", "draw one with --make-tasks")
        tasks = [Task(d["id"], _load_source(d["source"], p), _load_stroke(d["stroke"], p)) for d in doc["tasks"]]
        chains = [Chain(d["id"], _load_source(d["source"], p), tuple(_load_stroke(s, p) for s in d["rounds"]))
                  for d in doc["chains"]]
        h = doc.get("heldout", {})
        r = int(doc["bundle"]["resolution"])
        heldout = (unmosaic(_read_png(p / h["image"], "RGB"), int(h["count"]), r, int(h["cols"]))
                   if h.get("image") else np.zeros((0, r, r, 3), np.uint8))
        meta = {k: v for k, v in doc.items() if k not in ("tasks", "chains")}
        return cls(meta, tasks, chains, heldout)


# ---- (de)serialisation helpers -------------------------------------------------------------
def read_doc(f: Path, fmt: str, version: int, what: str, hint: str) -> dict:
    """A set's JSON document, checked for its format and a version this code reads."""
    if not f.is_file():
        raise MissingFileError(f"{f.parent} is not a {what} (no {f.name}): {hint}")
    doc = json.loads(f.read_text())
    if doc.get("format") != fmt or int(doc.get("version", -1)) > version:
        raise UsageError(f"{f}: not a neuedit {what} of version <= {version}")
    return doc


def _write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")


def _read_png(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(mode), np.uint8)


def _source_doc(s: Source, name: str, p: Path) -> dict:
    if s.kind == "sample":
        return {"kind": "sample", "state": s.state.to_dict()}
    _write_png(p / f"{name}_source.png", s.image)
    return {"kind": "real", "image": f"{name}_source.png", "file": s.file,
            "c": None if s.c is None else s.c.tolist()}


def _stroke_doc(s: Stroke, png: str, p: Path) -> dict:
    _write_png(p / png, s.rgba)
    return {"kind": s.kind, "sketch": png, "origin": s.origin}


def _task_doc(t: Task, p: Path) -> dict:
    return {"id": t.id, "source": _source_doc(t.source, t.id, p),
            "stroke": _stroke_doc(t.stroke, f"{t.id}_sketch.png", p)}


def _chain_doc(c: Chain, p: Path) -> dict:
    return {"id": c.id, "source": _source_doc(c.source, c.id, p),
            "rounds": [_stroke_doc(s, f"{c.id}_r{k + 1}.png", p) for k, s in enumerate(c.rounds)]}


def _named_files(doc: dict) -> list[str]:
    out = [doc.get("heldout", {}).get("image")]
    for t in doc.get("tasks", []):
        out += [t["source"].get("image"), t["stroke"]["sketch"]]
    for c in doc.get("chains", []):
        out += [c["source"].get("image")] + [s["sketch"] for s in c["rounds"]]
    return [f for f in out if f and "/" not in f and "\\" not in f]


def _load_source(d: dict, p: Path) -> Source:
    if d["kind"] == "sample":
        st = EditState.from_dict(d["state"])
        return Source("sample", state=st, c=st.c[0].copy())
    c = None if d.get("c") is None else np.asarray(d["c"], np.float32)
    return Source("real", image=_read_png(p / d["image"], "RGB"), c=c, file=d.get("file", ""))


def _load_stroke(d: dict, p: Path) -> Stroke:
    return Stroke(d["kind"], _read_png(p / d["sketch"], "RGBA"), d.get("origin", ""))


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    """uint8 [N, R, R, 3] -> one uint8 [rows*R, cols*R, 3] image (no padding; the rest black)."""
    n, r = len(images), images.shape[1]
    rows = -(-n // cols)
    out = np.zeros((rows * r, cols * r, 3), np.uint8)
    for i, im in enumerate(images):
        y, x = divmod(i, cols)
        out[y * r:(y + 1) * r, x * r:(x + 1) * r] = im
    return out


def unmosaic(sheet: np.ndarray, n: int, r: int, cols: int) -> np.ndarray:
    """The inverse of `mosaic`: -> uint8 [n, r, r, 3]."""
    return np.stack([sheet[(i // cols) * r:(i // cols + 1) * r, (i % cols) * r:(i % cols + 1) * r] for i in range(n)]) \
        if n else np.zeros((0, r, r, 3), np.uint8)


# ---- the data pool ------------------------------------------------------------------------------
@dataclass(eq=False)
class Pool:
    """Real images of the domain at the bundle's resolution."""
    images: np.ndarray            # uint8 [N, R, R, 3]
    c: np.ndarray | None          # [N, c_dim] labels, or None when the data has none
    files: list[str]              # "<folder name>/<file>"
    edge_halves: np.ndarray | None  # pair layout: the drawings uint8 [N, R, R, 3]


def load_pool(data: list[DataConfig], schema: Schema, limit: int) -> Pool:
    """Read every folder of `data` (at most `limit` images each); labels when the schema has
    attributes and the folder has a labels file, else none."""
    images, cs, files, halves = [], [], [], []
    labelled = bool(schema.c_dim)
    for cfg in data:
        cfg = replace(cfg, limit=min(limit, cfg.limit or limit), flip=False)
        label_file = Path(cfg.labels) if cfg.labels else Path(cfg.root) / "labels.csv"
        use = schema if schema.c_dim and label_file.is_file() else empty_schema()
        labelled = labelled and bool(use.c_dim)
        s = load_dataset(cfg, use)
        images.append(s.images)
        cs.append(s.c)
        files += [f"{Path(cfg.root).name}/{f}" for f in s.files]
        halves.append(s.edges)
    have_halves = all(h is not None for h in halves)
    return Pool(np.concatenate(images), np.concatenate(cs) if labelled else None, files,
                np.concatenate(halves) if have_halves else None)


def _edge_lines(pool: Pool, i: int, method: str, r: int, cache: dict) -> np.ndarray:
    if i not in cache:
        if method == "pairs":
            cache[i] = edges_from_pair_half(pool.edge_halves[i], r)
        else:
            cache[i] = edge_map(pool.images[i], method)
    return cache[i]


def is_line_sketch(mask: np.ndarray, share: float = 0.8) -> bool:
    """Whether strokes (mask bool [H, W]) are thin lines: most of their pixels lie on their skeleton."""
    m = np.asarray(mask, bool)
    return bool(m.any()) and skeletonize(m).sum() >= share * m.sum()


def read_user_sketch(path: Path, r: int) -> Stroke:
    """An RGBA PNG of any size -> a Stroke at R x R (colour or edge, judged by `is_line_sketch`)."""
    from neuedit.runtime.sketch import decode_png
    sketch, mask = decode_png(path.read_bytes(), r)
    if not mask.any():
        raise UsageError(f"user sketch {path} has no strokes (alpha is 0 everywhere)")
    kind = "edge" if is_line_sketch(mask[0] > 0.5) else "colour"
    return Stroke(kind, to_rgba(sketch, mask), f"user:{path.name}")


# ---- drawing ---------------------------------------------------------------------------------------
def _draw_stroke(kind: str, pool: Pool, donors: np.ndarray, rng: np.random.Generator, cfg: TaskConfig,
                 strokes: StrokeConfig, edges: str, cache: dict) -> Stroke:
    r = pool.images.shape[1]
    for _ in range(cfg.donor_tries):
        d = int(donors[rng.integers(len(donors))])
        if kind == "colour":
            rgba = colour_strokes(pool.images[d], rng, strokes)
        else:
            rgba = edge_strokes(pool.images[d], rng, strokes, edges=_edge_lines(pool, d, edges, r, cache))
        if rgba[..., 3].any():
            # through from_rgba/to_rgba: exactly what the editors will read back
            sk, mk = from_rgba(rgba, r)
            return Stroke(kind, to_rgba(sk, mk), f"donor:{pool.files[d]}")
    raise UsageError(f"no {kind} stroke after {cfg.donor_tries} donors: the donors' edge maps are empty")


def _real_source(pool: Pool, i: int) -> Source:
    return Source("real", image=pool.images[i].copy(), c=None if pool.c is None else pool.c[i].copy(),
                  file=pool.files[i])


def _sample_source(bundle, rng: np.random.Generator) -> Source:
    st = sample_state(1, bundle.z_dim, bundle.schema, rng)
    return Source("sample", state=st, c=st.c[0].copy())


def clear_folder(path: str | Path, doc: str, named=None) -> Path:
    """Make folder `path` and remove the files its previous set's `doc` (JSON) named, as listed
    by `named(doc_dict)` (default: a task set's) -> the folder."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    old = p / doc
    if old.is_file():
        for f in (named or _named_files)(json.loads(old.read_text())):
            (p / f).unlink(missing_ok=True)
    return p


def set_meta(bundle, cfg, data: list[DataConfig], edges: str, fmt: str, version: int, **extra) -> dict:
    """What a task set records of how it was drawn: format, seed, config, bundle, data, edges."""
    return {"format": fmt, "version": version, "seed": cfg.seed, "config": cfg.to_dict(),
            "bundle": {"name": bundle.name, "z_dim": bundle.z_dim, "c_dim": bundle.c_dim,
                       "resolution": bundle.resolution, "schema": bundle.schema.name},
            "data": [{"root": str(d.root), "layout": d.layout, "pair_image": d.pair_image, "labels": d.labels}
                     for d in data],
            "edges": edges, **extra}


def pool_for(bundle, data: DataConfig | list[DataConfig] | None, pool_cfg, edges: str, default_edges: str,
             need_images: bool, need_edges: bool, missing: str) -> tuple[list[DataConfig], Pool, str]:
    """The data folders at the bundle's resolution, the real images a task set draws from, and
    where its line strokes come from ("pairs": the data's edge halves, else an edge detector).
    `missing` is the error when `need_images` and no data is given."""
    r = bundle.resolution
    data = [] if data is None else [data] if isinstance(data, DataConfig) else list(data)
    data = [replace(d, resolution=r) for d in data]
    if not data:
        if need_images:
            raise UsageError(missing)
        pool = Pool(np.zeros((0, r, r, 3), np.uint8), None, [], None)
    else:
        pool = load_pool(data, bundle.schema, pool_cfg)
    if edges == "auto":
        edges = "pairs" if pool.edge_halves is not None else default_edges
    if edges == "pairs" and pool.edge_halves is None and need_edges:
        raise UsageError("edges='pairs' needs paired data (layout 'pair')")
    return data, pool, edges


def make_tasks(bundle, data: DataConfig | list[DataConfig] | None, cfg: TaskConfig = TaskConfig(),
               user_sketches: str | Path | None = None) -> TaskSet:
    """Draw a task set for `bundle` (its z_dim, c_dim, schema and resolution) from real images
    `data` (one or more folders, read at the bundle's resolution) and optional user sketches
    (a folder of PNGs). The same arguments give the same set."""
    r = bundle.resolution
    users = sorted(Path(user_sketches).glob("*.png")) if user_sketches else []
    user_strokes = [read_user_sketch(u, r) for u in users]
    n_syn_real = sum(cfg.sources[i % len(cfg.sources)] == "real" for i in range(cfg.n))
    n_real = (n_syn_real + len(user_strokes) * cfg.sources.count("real")
              + sum(cfg.sources[j % len(cfg.sources)] == "real" for j in range(cfg.chains)))
    need_donors = cfg.n > 0 or cfg.chains > 0
    data, pool, edges = pool_for(bundle, data, cfg.pool, cfg.edges, cfg.strokes.edge_method, bool(n_real or need_donors),
                                 need_donors, "synthetic strokes and real sources need real images: give a data folder")

    # partition the pool: real sources | held-out | donors (disjoint)
    perm = np.random.default_rng([cfg.seed, _PARTITION]).permutation(len(pool.images))
    rest = len(perm) - n_real
    if rest < (1 if need_donors else 0):
        raise UsageError(f"{len(perm)} real images cannot give {n_real} sources and leave donors for the strokes")
    src_idx = perm[:n_real]
    n_held = min(cfg.heldout, rest // 2)
    held_idx = perm[n_real:n_real + n_held]
    donors = perm[n_real + n_held:]
    next_real = iter(src_idx.tolist())
    cache: dict = {}

    def source(kind: str, rng) -> Source:
        return _sample_source(bundle, rng) if kind == "sample" else _real_source(pool, next(next_real))

    tasks = []
    for i in range(cfg.n):
        rng = np.random.default_rng([cfg.seed, _TASK, i])
        s_kind = cfg.sources[i % len(cfg.sources)]
        k_kind = cfg.kinds[(i // len(cfg.sources)) % len(cfg.kinds)]
        src = source(s_kind, rng)
        tasks.append(Task(f"t{i:03d}", src, _draw_stroke(k_kind, pool, donors, rng, cfg, cfg.strokes, edges, cache)))
    for j, st in enumerate(user_strokes):
        for s_kind in cfg.sources:
            rng = np.random.default_rng([cfg.seed, _USER, len(tasks)])
            tasks.append(Task(f"t{len(tasks):03d}", source(s_kind, rng), st))
    one = replace(cfg.strokes, min_strokes=1, max_strokes=1)
    chains = []
    for j in range(cfg.chains):
        rng = np.random.default_rng([cfg.seed, _CHAIN, j])
        src = source(cfg.sources[j % len(cfg.sources)], rng)
        rounds = tuple(_draw_stroke(cfg.kinds[(k + j) % len(cfg.kinds)], pool, donors, rng, cfg, one, edges, cache)
                       for k in range(cfg.rounds))
        chains.append(Chain(f"s{j:03d}", src, rounds))
    meta = set_meta(bundle, cfg, data, edges, FORMAT, VERSION, user_sketches=[u.name for u in users],
                    heldout={"files": [pool.files[i] for i in held_idx]})
    return TaskSet(meta, tasks, chains, pool.images[held_idx].copy())
