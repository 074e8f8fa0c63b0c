"""The editing state that travels with the client: `z`, `c` and the optimiser's moments.

numpy only. `z` lives in (-1, 1) and `c` in [0, 1] because the latent editor steps in
`z~ = arctanh(z)`, `c~ = logit(c)`. JSON stores float32 values as Python floats, which
round-trip bit-exactly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from neuedit.errors import NeueditError, UsageError

C_EPS = 1e-4  # c is clamped to [C_EPS, 1 - C_EPS] before logit, so hard 0/1 labels are valid
Z_MAX = 1 - 1e-6  # |z| above this would make arctanh(z) overflow float32
T_MAX = 10_000_000  # Adam's step count; beyond it bias correction is 1 anyway


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

    def __len__(self):
        return len(self.z)

    def validate(self, z_dim: int, c_dim: int) -> "EditState":
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

    def c_tilde(self) -> np.ndarray:
        c = np.clip(self.c, C_EPS, 1 - C_EPS).astype(np.float32)
        return np.log(c / (1 - c)).astype(np.float32)

    @classmethod
    def from_tilde(cls, z_t, c_t, m=None, v=None, t=0) -> "EditState":
        z = np.clip(np.tanh(np.asarray(z_t, np.float32)), -Z_MAX, Z_MAX)
        c = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(c_t, np.float32)))  # sigmoid without exp overflow
        return cls(z, c.astype(np.float32), m, v, t)

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"z": self.z.tolist(), "c": self.c.tolist()}
        if self.m is not None:
            d.update(m=self.m.tolist(), v=self.v.tolist(), t=int(self.t))
        return d

    @classmethod
    def from_dict(cls, d) -> "EditState":
        if not isinstance(d, dict):
            raise StateError("state must be an object with z and c")
        if "z" not in d or "c" not in d:
            raise StateError("state needs both 'z' and 'c'")
        try:
            arrs = {k: np.asarray(d[k], np.float32) for k in ("z", "c", "m", "v") if d.get(k) is not None}
        except (ValueError, TypeError, OverflowError) as e:
            raise StateError(f"state values must be (lists of) float32 numbers: {e}") from None
        t = d.get("t", 0)
        if isinstance(t, bool) or not isinstance(t, int):
            raise StateError("t must be an integer")
        if arrs["z"].ndim not in (1, 2):
            raise StateError("z must be a list of numbers (or a list of such lists)")
        return cls(arrs["z"], arrs["c"], arrs.get("m"), arrs.get("v"), t)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "EditState":
        return cls.from_dict(json.loads(s))

    def row(self, i: int) -> "EditState":
        sl = slice(i, i + 1)
        return EditState(self.z[sl], self.c[sl], None if self.m is None else self.m[sl],
                         None if self.v is None else self.v[sl], self.t)


def sample_z(n: int, z_dim: int, rng: np.random.Generator) -> np.ndarray:
    """z [n, z_dim] ~ N(0, 1) truncated to |z| < 1 (resampled): inside the editor's tanh
    range, and the 'truncation trick' region where a generator's samples look best."""
    z = rng.standard_normal((n, z_dim))
    bad = np.abs(z) >= 0.999
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) >= 0.999
    return z.astype(np.float32)


def sample_state(n: int, z_dim: int, schema, rng: np.random.Generator, c=None) -> EditState:
    """A random valid state; z is drawn first, so one seed with another c keeps the same z."""
    z = sample_z(n, z_dim, rng)
    c = schema.sample(n, rng) if c is None else np.broadcast_to(np.asarray(c, np.float32), (n, schema.c_dim))
    return EditState(z, np.array(c, np.float32))


@dataclass(frozen=True)
class EditConfig:
    optimizer: str = "gd"         # "gd" (the report's plain gradient descent) or "adam" (iGAN)
    lr: float | None = None       # step size; None: 2.0 for gd, 0.05 for adam
    steps: int = 1                # steps per call (the report's web app: 1 per submit)
    edit_c: bool = True           # also move c (False: only z moves, the condition is kept)
    anchor: float = 0.0           # weight of a pull toward the starting z~ (keeps unedited content)
    restarts: int = 1             # batch mode: random restarts, the lowest final Dist kept
    project_c: bool = False       # project c onto the schema's exclusive groups after the steps
    beta1: float = 0.9            # Adam
    beta2: float = 0.999          # Adam
    eps: float = 1e-8             # Adam

    def __post_init__(self):
        if self.optimizer not in ("gd", "adam"):
            raise UsageError(f"optimizer must be 'gd' or 'adam', not {self.optimizer!r}")
        if self.steps < 0 or self.restarts < 1:
            raise UsageError("steps must be >= 0 and restarts >= 1")
        if self.lr is not None and not (self.lr > 0 and np.isfinite(self.lr)):
            raise UsageError("lr must be a positive number")

    @property
    def step_size(self) -> float:
        return self.lr if self.lr is not None else (2.0 if self.optimizer == "gd" else 0.05)
