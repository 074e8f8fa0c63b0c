"""Drawing a ground-truth set (`neuedit.compare.truth`) from a seed: held-out photos and stage-one samples.

Real photos are split, as `neuedit.compare.tasks.make_tasks` splits them, into targets | held-out
images (realism) | donors (the colours of a recolour, the pixels of a donor-filled reshape),
disjoint. Each target photo gives one group: a `recolour` or a `reshape` pair (fill: a donor's
pixels or a blur), the kinds cycled over groups. Each stage-one group is a `differ` pair:
source G1(z, c), target G1(z', c') with c' = c with one exclusive attribute group changed
(conditional bundles) or z' a nearby z (unconditional ones). Every group is built once per
stroke count from a generator in the same state, so source, target and region are the same
and the strokes nested; a group whose pair has no strokes is redrawn (`tries`) and else left out.
Every draw comes from `np.random.default_rng([seed, stream, index, attempt])`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from neuedit.nn.weights import load_module
from neuedit.evaluation import metrics as M
from neuedit.data.datasets import DataConfig
from neuedit.errors import UsageError
from neuedit.synth.pairs import FILLS, PairConfig, changed_attribute, differ_pair, nearby_z, recolour_pair, reshape_pair
from neuedit.runtime.state import EditState, sample_state
from neuedit.synth.strokes import StrokeConfig
from neuedit.compare.tasks import FORMAT as TASKS_FORMAT, VERSION as TASKS_VERSION
from neuedit.compare.tasks import Pool, Source, Stroke, Task, TaskSet, _edge_lines, pool_for, set_meta
from neuedit.runtime.sketch import from_rgba, to_rgba
from neuedit.compare.truth import Answer, TruthSet

REAL_KINDS = ("recolour", "reshape")
# independent random streams: np.random.default_rng([seed, STREAM, index, attempt])
_PARTITION, _REAL, _DONOR, _SAMPLE, _SAMPLE_PAIR = 11, 12, 13, 14, 15


@dataclass(frozen=True)
class TruthConfig:
    real: int = 16                                   # groups on held-out photos (targets are the photos)
    samples: int = 8                                 # groups on stage-one samples (differ pairs)
    strokes: tuple[int, ...] = (1, 3, 10)            # strokes per task; every group at each count
    seed: int = 0                                    # every draw derives from it
    kinds: tuple[str, ...] = REAL_KINDS              # photo pair kinds, cycled over groups
    fills: tuple[str, ...] = ("donor", "blur")       # reshape fills, cycled over reshape groups
    heldout: int = 256                               # held-out photos for realism (at most half of the rest)
    pool: int = 2000                                 # read at most this many images per data folder
    edges: str = "auto"                              # target edge lines: "pairs" (drawings), "canny", "xdog", "auto"
    z_noise: float = 0.5                             # unconditional differ: z' = (z + z_noise * noise), rescaled
    tries: int = 8                                   # attempts at a group whose pair comes out without strokes
    pair: PairConfig = field(default_factory=PairConfig)

    def __post_init__(self):
        if self.real < 0 or self.samples < 0 or self.heldout < 0 or self.pool < 1 or self.tries < 1:
            raise UsageError("need real >= 0, samples >= 0, heldout >= 0, pool >= 1, tries >= 1")
        if not self.strokes or any(n < 1 for n in self.strokes) or len(set(self.strokes)) != len(self.strokes):
            raise UsageError(f"strokes must be distinct counts >= 1, not {self.strokes}")
        if not self.kinds or any(k not in REAL_KINDS for k in self.kinds):
            raise UsageError(f"kinds must be some of {REAL_KINDS}, not {self.kinds}")
        if not self.fills or any(f not in FILLS or f == "given" for f in self.fills):
            raise UsageError(f"fills must be some of ('donor', 'blur'), not {self.fills}")
        if self.edges not in ("auto", "pairs", "canny", "xdog"):
            raise UsageError("edges must be auto, pairs, canny or xdog")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as they come back from JSON


# ---- the target of a stage-one source -----------------------------------------------------------
def target_state(state: EditState, schema, rng: np.random.Generator, z_noise: float) -> tuple[EditState, str]:
    """The differ target of a one-row state: c changed (a conditional schema) or z moved."""
    if schema.c_dim:
        c, what = changed_attribute(schema, state.c[0], rng)
        return EditState(state.z.copy(), c[None]), what
    return EditState(nearby_z(state.z, rng, z_noise), state.c.copy()), "nearby z"


# ---- drawing ---------------------------------------------------------------------------------------
def _tasks_of(group: str, source: Source, pairs: list, strokes: tuple[int, ...], **answer) -> list[tuple]:
    """One (Task, Answer) per stroke count; the pairs must share source, target and region."""
    first = pairs[0]
    for p in pairs[1:]:  # the builders draw the region before the strokes; pairing depends on it
        if not (np.array_equal(p.source, first.source) and np.array_equal(p.region, first.region)):
            raise RuntimeError(f"{group}: the pair builder gave another source for another stroke count")
    r = first.target.shape[0]
    out = []
    for n, p in zip(strokes, pairs):
        sk, mk = from_rgba(p.sketch, r)  # through from_rgba/to_rgba: exactly what the editors will read back
        kind = "edge" if p.lines.any() else "colour"
        out.append((Task(f"{group}n{n}", source, Stroke(kind, to_rgba(sk, mk), f"pair:{p.kind}")),
                    Answer(group, p.kind, answer.get("fill", ""), n, first.target, first.region, p.lines,
                           answer.get("target_c"), answer.get("target_state"), answer.get("change", ""),
                           answer.get("sample"))))
    return out


def _usable(pairs: list) -> bool:
    return pairs[0].region.any() and all(p.sketch[..., 3].any() for p in pairs)


def _real_group(i: int, t: int, pool: Pool, donors: np.ndarray, cfg: TruthConfig, edges: str, cache: dict):
    """Group i on photo t (donors: uint8 [K, R, R, 3]) -> (Task, Answer) per stroke count, or None."""
    kind = cfg.kinds[i % len(cfg.kinds)]
    fill = cfg.fills[(i // len(cfg.kinds)) % len(cfg.fills)] if kind == "reshape" else ""
    target, r = pool.images[t], pool.images.shape[1]
    for a in range(cfg.tries):
        if kind == "recolour":
            pairs = [recolour_pair(target, donors, n, np.random.default_rng([cfg.seed, _REAL, i, a]), cfg.pair)
                     for n in cfg.strokes]
        else:
            donor = donors[np.random.default_rng([cfg.seed, _DONOR, i, a]).integers(len(donors))]
            lines = _edge_lines(pool, t, edges, r, cache)
            pairs = [reshape_pair(target, lines, n, np.random.default_rng([cfg.seed, _REAL, i, a]), cfg.pair,
                                  donor=donor, fill=fill) for n in cfg.strokes]
        if _usable(pairs):
            # the edited photo's attributes are unknown (projection samples c); the photo's labels are the target's
            source = Source("real", image=pairs[0].source, c=None, file=pool.files[t])
            return _tasks_of(f"r{i:03d}", source, pairs, cfg.strokes, fill=fill,
                             target_c=None if pool.c is None else pool.c[t].copy())
    return None


def _render(G1, state: EditState) -> np.ndarray:
    with torch.no_grad():
        return M.to_uint8(G1(torch.from_numpy(state.z), torch.from_numpy(state.c)).numpy()[0])


def _sample_group(j: int, bundle, G1, cfg: TruthConfig):
    """Stage-one group j -> (Task, Answer) per stroke count, or None."""
    for a in range(cfg.tries):
        rng = np.random.default_rng([cfg.seed, _SAMPLE, j, a])
        st = sample_state(1, bundle.z_dim, bundle.schema, rng)
        tst, what = target_state(st, bundle.schema, rng, cfg.z_noise)
        src, tgt = _render(G1, st), _render(G1, tst)
        pairs = [differ_pair(src, tgt, n, np.random.default_rng([cfg.seed, _SAMPLE_PAIR, j, a]), cfg.pair)
                 for n in cfg.strokes]
        if _usable(pairs):
            source = Source("sample", state=st, c=st.c[0].copy())
            return _tasks_of(f"s{j:03d}", source, pairs, cfg.strokes, target_state=tst, change=what, sample=src,
                             target_c=tst.c[0].copy() if bundle.c_dim else None)
    return None


def make_truth(bundle, data: DataConfig | list[DataConfig] | None, cfg: TruthConfig = TruthConfig(),
               G1=None) -> TruthSet:
    """Draw a ground-truth set for `bundle` (its dimensions, schema, resolution and, for stage-one
    groups, its G1, loaded unless given) from held-out real images `data` (one or more folders,
    read at the bundle's resolution). The same arguments give the same set."""
    data, pool, edges = pool_for(bundle, data, cfg.pool, cfg.edges, StrokeConfig().edge_method, cfg.real > 0,
                                 cfg.real > 0, "real-photo tasks need held-out real images: give a data folder")

    # partition the photos: targets | held-out | donors (disjoint)
    perm = np.random.default_rng([cfg.seed, _PARTITION]).permutation(len(pool.images))
    rest = len(perm) - cfg.real
    if rest < (1 if cfg.real else 0):
        raise UsageError(f"{len(perm)} real images cannot give {cfg.real} targets and leave donors")
    n_held = min(cfg.heldout, rest // 2)
    held_idx = perm[cfg.real:cfg.real + n_held]
    donors = perm[cfg.real + n_held:]

    drawn, skipped, cache = [], [], {}
    donor_images = pool.images[donors]
    for i, t in enumerate(perm[:cfg.real].tolist()):
        got = _real_group(i, t, pool, donor_images, cfg, edges, cache)
        drawn += got or []
        skipped += [] if got else [f"r{i:03d}"]
    if cfg.samples:
        G1 = G1 if G1 is not None else load_module(bundle, "g1")
        for j in range(cfg.samples):
            got = _sample_group(j, bundle, G1, cfg)
            drawn += got or []
            skipped += [] if got else [f"s{j:03d}"]
    if not drawn:
        raise UsageError(f"no ground-truth task could be drawn (groups without strokes: {', '.join(skipped)})")
    meta = set_meta(bundle, cfg, data, edges, TASKS_FORMAT, TASKS_VERSION, user_sketches=[], skipped_groups=skipped,
                    heldout={"files": [pool.files[i] for i in held_idx]})
    tasks = TaskSet(meta, [t for t, _ in drawn], [], pool.images[held_idx].copy())
    return TruthSet(tasks, [a for _, a in drawn])
