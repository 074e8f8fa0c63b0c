"""The editing state that travels with the client: `z`, `c` and the optimiser's moments.

numpy only. `z` lives in (-1, 1) and `c` in [0, 1] because the latent editor steps in
`z~ = arctanh(z)` and `c~`, the logits of a softmax per exclusive group with a "none" slot
whose logit is fixed at 0 (`c_from_logits`; a free attribute is its own one-attribute group,
where this is the sigmoid): a hair colour is then *chosen* by the step, one group's values
sum to at most 1, and swapping one for another takes a few steps (docs/method.md §3).
JSON stores float32 values as Python floats, which round-trip bit-exactly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
from neuedit.errors import NeueditError, UsageError

C_EPS = 3e-3  # c is clamped to [C_EPS, 1 - C_EPS] before the logits, so hard 0/1 labels are valid: a
#               one-hot group starts at logits 5.8 (on) and 0 (off, level with "none"), a few Adam
#               steps from another value, and renders as c_on 0.965 in a 12-attribute group
LOGIT_MAX = 30.0  # |c~| is clipped here: exp() stays finite in float32
Z_MAX = 1 - 1e-6  # |z| above this would make arctanh(z) overflow float32
T_MAX = 10_000_000  # Adam's step count; beyond it bias correction is 1 anyway
Z_SAMPLE = 0.999  # sampled z lie inside (-Z_SAMPLE, Z_SAMPLE): the tanh range with room, and the truncation trick


class StateError(NeueditError, ValueError):
    """A state of the wrong shape, with NaN/inf, or out of range."""


@dataclass
class EditState:
    """z [N, z_dim] in (-1, 1); c [N, c_dim] in [0, 1]; Adam moments over (z~, c~) when used."""
    z: np.ndarray
    c: np.ndarray
    m: np.ndarray | None = None   # Adam first moment [N, z_dim + c_dim]
    v: np.ndarray | None = None   # Adam second moment [N, z_dim + c_dim]
    t: int = 0                    # Adam step count
    z0: np.ndarray | None = None  # the (z, c) whose picture a latent edit started from: what
    c0: np.ndarray | None = None  #   `EditConfig.paste` keeps across calls (None: this state's own)
    r: np.ndarray | None = None   # a photo's detail map, flat [N, F * S * S] (the encoder's; None: G1's own picture)

    def __post_init__(self):
        self.z = np.asarray(self.z, np.float32)
        self.c = np.asarray(self.c, np.float32)
        if self.z.ndim == 1:
            self.z = self.z[None]
        if self.c.ndim == 1:
            self.c = self.c[None]
        if self.m is not None:
            self.m = np.asarray(self.m, np.float32).reshape(len(self.z), -1)
            self.v = np.asarray(self.v, np.float32).reshape(len(self.z), -1)
        if self.z0 is not None:
            self.z0 = np.asarray(self.z0, np.float32).reshape(self.z.shape)
            self.c0 = np.asarray(self.c0, np.float32).reshape(len(self.z), -1)
        if self.r is not None:
            self.r = np.asarray(self.r, np.float32).reshape(len(self.z), -1)

    def __len__(self):
        return len(self.z)

    def validate(self, z_dim: int, c_dim: int, detail=None) -> "EditState":
        """StateError unless the state fits a model of these sizes; `detail` (the model's
        `neuedit.runtime.graphs.Detail`, None without a photo encoder) is the shape of `r`."""
        def check(name, a, width, lo, hi):
            if a.ndim != 2 or a.shape[1] != width:
                raise StateError(f"{name} must have {width} values per image, got shape {list(a.shape)}")
            if not np.all(np.isfinite(a)):
                raise StateError(f"{name} contains NaN or infinity")
            if lo is not None and (a.min(initial=0) < lo or a.max(initial=0) > hi):
                raise StateError(f"{name} values must lie in [{lo}, {hi}]")
        check("z", self.z, z_dim, -1.0, 1.0)
        if np.any(np.abs(self.z) >= 1.0):
            raise StateError("z values must lie strictly inside (-1, 1)")
        check("c", self.c, c_dim, 0.0, 1.0)
        if len(self.c) != len(self.z):
            raise StateError(f"z has {len(self.z)} rows but c has {len(self.c)}")
        if (self.m is None) != (self.v is None):
            raise StateError("Adam moments m and v come together")
        if (self.z0 is None) != (self.c0 is None):
            raise StateError("the starting point z0 and c0 come together")
        if self.z0 is not None:
            check("z0", self.z0, z_dim, -1.0, 1.0)
            check("c0", self.c0, c_dim, 0.0, 1.0)
            if np.any(np.abs(self.z0) >= 1.0):
                raise StateError("z0 values must lie strictly inside (-1, 1)")
        if self.r is not None:
            if detail is None:
                raise StateError("r (a photo's detail) needs a model with a photo encoder; this one has none")
            check("r", self.r, detail.channels * detail.size ** 2, None, None)
        if self.m is not None:
            check("m", self.m, z_dim + c_dim, None, None)
            check("v", self.v, z_dim + c_dim, None, None)
            if self.v.min(initial=0) < 0:
                raise StateError("v (Adam's second moment) cannot be negative")
            if not isinstance(self.t, int) or not 0 <= self.t <= T_MAX:
                raise StateError(f"t must be an integer in [0, {T_MAX}]")
        return self

    # ---- unconstrained parameterisation --------------------------------------------------
    def z_tilde(self) -> np.ndarray:
        return np.arctanh(np.clip(self.z, -Z_MAX, Z_MAX)).astype(np.float32)

    def c_tilde(self, groups: np.ndarray) -> np.ndarray:
        """c~ [N, C]: the group logits of c (`c_logits`) for the group matrix `groups` [C, C]."""
        return c_logits(self.c, groups)

    @classmethod
    def from_tilde(cls, z_t, c_t, groups: np.ndarray, m=None, v=None, t=0) -> "EditState":
        z = np.clip(np.tanh(np.asarray(z_t, np.float32)), -Z_MAX, Z_MAX)
        return cls(z, c_from_logits(c_t, groups), m, v, t)

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"z": self.z.tolist(), "c": self.c.tolist()}
        if self.m is not None:
            d.update(m=self.m.tolist(), v=self.v.tolist(), t=int(self.t))
        if self.z0 is not None:
            d.update(z0=self.z0.tolist(), c0=self.c0.tolist())
        if self.r is not None:
            d.update(r=self.r.tolist())
        return d

    @classmethod
    def from_dict(cls, d) -> "EditState":
        if not isinstance(d, dict):
            raise StateError("state must be an object with z and c")
        if "z" not in d or "c" not in d:
            raise StateError("state needs both 'z' and 'c'")
        try:
            arrs = {k: np.asarray(d[k], np.float32) for k in ("z", "c", "m", "v", "z0", "c0", "r") if d.get(k) is not None}
        except (ValueError, TypeError, OverflowError) as e:
            raise StateError(f"state values must be (lists of) float32 numbers: {e}") from None
        t = d.get("t", 0)
        if isinstance(t, bool) or not isinstance(t, int):
            raise StateError("t must be an integer")
        if arrs["z"].ndim not in (1, 2):
            raise StateError("z must be a list of numbers (or a list of such lists)")
        try:
            return cls(arrs["z"], arrs["c"], arrs.get("m"), arrs.get("v"), t, arrs.get("z0"), arrs.get("c0"), arrs.get("r"))
        except ValueError as e:  # a z0/c0/m/v that does not fit z's rows
            raise StateError(f"state arrays do not fit together: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "EditState":
        return cls.from_dict(json.loads(s))

    def row(self, i: int) -> "EditState":
        sl = slice(i, i + 1)
        pick = lambda a: None if a is None else a[sl]  # noqa: E731
        return EditState(self.z[sl], self.c[sl], pick(self.m), pick(self.v), self.t, pick(self.z0), pick(self.c0),
                         pick(self.r))


# ---- c as logits of a softmax per group -------------------------------------------------------
def group_matrix(schema, c_dim: int | None = None) -> np.ndarray:
    """[C, C] float32, 1 where attributes i and j share an exclusive group (and on the diagonal):
    the softmax's denominator `1 + exp(c~) @ groups`. Without a schema every attribute is free."""
    c_dim = schema.c_dim if schema is not None else int(c_dim or 0)
    a = np.eye(c_dim, dtype=np.float32)
    for g, s in (schema.slices() if schema is not None else ()):
        if g.exclusive:
            a[s, s] = 1.0
    return a


def c_from_logits(c_t, groups: np.ndarray) -> np.ndarray:
    """c~ [N, C] -> c [N, C]: c_i = exp(c~_i) / (1 + sum_{j in i's group} exp(c~_j)); the 1 is the
    "none" slot (logit 0). The same formula as `neuedit.nn.backend.group_softmax`, in numpy."""
    l = np.clip(np.asarray(c_t, np.float64), -LOGIT_MAX, LOGIT_MAX)
    top = np.maximum(l.max(1, keepdims=True, initial=0.0), 0.0)  # subtracted for exp's range
    e = np.exp(l - top)
    return (e / (np.exp(-top) + e @ np.asarray(groups, np.float64))).astype(np.float32)


def c_logits(c, groups: np.ndarray) -> np.ndarray:
    """c [N, C] -> c~: log(c_i) - log(none), none = 1 - the sum of i's group, both clamped to
    [C_EPS, 1 - C_EPS] (the inverse of `c_from_logits` inside that range)."""
    c = np.asarray(c, np.float64)
    none = 1.0 - c @ np.asarray(groups, np.float64)
    clamp = lambda a: np.clip(a, C_EPS, 1 - C_EPS)  # noqa: E731
    return np.clip(np.log(clamp(c)) - np.log(clamp(none)), -LOGIT_MAX, LOGIT_MAX).astype(np.float32)


def sample_z(n: int, z_dim: int, rng: np.random.Generator) -> np.ndarray:
    """z [n, z_dim] ~ N(0, 1) truncated to |z| < 1 (resampled): inside the editor's tanh
    range, and the 'truncation trick' region where a generator's samples look best."""
    z = rng.standard_normal((n, z_dim))
    bad = np.abs(z) >= Z_SAMPLE
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) >= Z_SAMPLE
    return z.astype(np.float32)


def sample_state(n: int, z_dim: int, schema, rng: np.random.Generator, c=None) -> EditState:
    """A random valid state; z is drawn first, so one seed with another c keeps the same z."""
    z = sample_z(n, z_dim, rng)
    c = schema.sample(n, rng) if c is None else np.broadcast_to(np.asarray(c, np.float32), (n, schema.c_dim))
    return EditState(z, np.array(c, np.float32))


# ---- seeds that mean the same picture in every runtime ---------------------------------------------
def _mix32(x: np.ndarray) -> np.ndarray:
    """A 32-bit integer hash (lowbias32): uint32 -> uint32, the same in the browser (`engine/core.js`)."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def seed_uniforms(seed: int, start: int, n: int) -> np.ndarray:
    """Uniforms [n] in [0, 1), float64, numbers `start`.. of the stream of `seed` (0 <= seed < 2**53):
    each from two hashed counters (53 bits), so any runtime with 32-bit integer arithmetic draws the
    same stream. This is what the API's seeds mean (`seed_state`), not numpy's generator."""
    lo, hi = np.uint32(seed % 2**32), np.uint32(seed // 2**32)
    with np.errstate(over="ignore"):
        key = _mix32(np.array([lo ^ _mix32(np.array([hi + np.uint32(0x9E3779B9)]))[0]]))[0]
        i = np.arange(2 * start, 2 * (start + n), dtype=np.uint64).astype(np.uint32)
        x = _mix32(key + i * np.uint32(0x9E3779B9))
    a, b = (x[0::2] >> np.uint32(5)).astype(np.float64), (x[1::2] >> np.uint32(6)).astype(np.float64)
    return (a * 67108864.0 + b) / 9007199254740992.0


def seed_state(seed: int, z_dim: int, schema, c=None) -> EditState:
    """The one picture a seed names, on the server and in the browser alike: z [1, Z] from
    Box-Muller normals of `seed_uniforms` (|z| < Z_SAMPLE, others skipped: `sample_z`'s range), then
    c from the schema (an exclusive group: one of its values or none, uniformly or by its prior; a
    free attribute: on with p 0.5 or its prior) from the numbers that follow, unless `c` is given. z comes first, so the same
    seed with another c keeps the face."""
    z, used = [], 0
    while len(z) < z_dim:
        u = seed_uniforms(seed, used, 2 * z_dim)
        used += 2 * z_dim
        r = np.sqrt(-2.0 * np.log(1.0 - u[0::2]))
        t = 2.0 * np.pi * u[1::2]
        pair = np.stack([r * np.cos(t), r * np.sin(t)], 1).reshape(-1)
        z.extend(pair[np.abs(pair) < Z_SAMPLE][: z_dim - len(z)].tolist())
    if c is None:  # (a schema of None needs a given c)
        c = np.zeros(schema.c_dim, np.float32)
        for g, s in schema.slices():
            k = len(g.attributes)
            u = seed_uniforms(seed, used, 1 if g.exclusive else k)
            used += len(u)
            p = g.probabilities()
            if g.exclusive:  # the first choice whose cumulative chance exceeds u
                pick = min(int(np.searchsorted(np.cumsum(p), u[0], side="right")), k)
                if pick < k:
                    c[s.start + pick] = 1.0
            else:
                c[s] = (u < p).astype(np.float32)
    return EditState(np.asarray(z, np.float32)[None], np.asarray(c, np.float32).reshape(1, -1))


@dataclass(frozen=True)
class EditConfig:
    """The latent editor's settings (docs/method.md §3); the defaults are what the semantic-edit
    benchmark chose (README, "Edits that do what the strokes ask")."""
    optimizer: Literal["adam", "gd"] = "adam"     # "adam" (iGAN) or "gd" (plain gradient descent, docs/method.md §3)
    lr: float | None = None       # step size of z~ (0 holds z); None: `step_sizes`
    lr_c: float | None = None     # step size of c~ (the group logits); None: `step_sizes`
    steps: int = 1                # steps per call (the page: 1 per Submit)
    edit_c: bool = True           # also move c (False: only z moves, the condition is kept)
    anchor: float | None = None   # weight of a pull toward the starting z~ (keeps the face); None: `pull`
    paste: float = 27.0           # > 0: the result keeps the starting picture's pixels except where they
    #                               lie within this CIE76 ΔE of the colour under the strokes and G1 changed
    #                               them (neuedit.runtime.editing.paste); 0: the result is G1(z, c)
    choose_c: bool = True         # first set c to the single swap of an exclusive group (or none) that
    #                               G1 draws nearest the strokes (neuedit.runtime.editing.choose_c)
    restarts: int = 1             # batch mode: random restarts, the lowest final Dist kept
    project_c: bool = False       # project c onto the schema's exclusive groups after the steps

    def __post_init__(self):
        if self.optimizer not in ("gd", "adam"):
            raise UsageError(f"optimizer must be 'gd' or 'adam', not {self.optimizer!r}")
        if self.steps < 0 or self.restarts < 1:
            raise UsageError("steps must be >= 0 and restarts >= 1")
        for name in ("lr", "lr_c", "anchor", "paste"):  # lr 0 holds z; lr_c 0 (or edit_c off) holds c
            v = getattr(self, name)
            if v is not None and not (v >= 0 and np.isfinite(v)):
                raise UsageError(f"{name} must be a non-negative number")

    def step_sizes(self, c_dim: int) -> tuple[float, float]:
        """(step size of z~, of c~) for a generator with `c_dim` condition values. Unset, Adam steps z
        by 0.01 where there is a condition (a colour stroke's meaning is in c; z, pulled back to its
        start by `pull`, holds the face: docs/comparison.md, "Edits that do what the strokes ask") and
        by 0.05 where there is none; c~ steps by 0.5. Plain gradient descent steps both by 2.0
        (docs/method.md §3)."""
        gd = self.optimizer == "gd"
        lr = self.lr if self.lr is not None else (2.0 if gd else (0.01 if c_dim else 0.05))
        lr_c = self.lr_c if self.lr_c is not None else (lr if gd else 0.5)
        return lr, lr_c

    def pull(self, c_dim: int) -> float:
        """The weight of the pull toward the starting z~: `anchor`, or unset 1.0 for Adam where there
        is a condition (z moves a little, toward the strokes, and comes back), else 0 (plain gradient
        descent's large steps would overshoot a pull)."""
        return self.anchor if self.anchor is not None else (1.0 if c_dim and self.optimizer == "adam" else 0.0)
