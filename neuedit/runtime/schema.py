"""Label schemas: named attributes in groups, tags -> multi-hot `c`, and sampling `c`.

numpy only: the server imports this to build its attribute controls.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from neuedit.errors import UsageError, MissingFileError


@dataclass(frozen=True)
class Group:
    name: str                    # e.g. "hair_colour"
    attributes: tuple[str, ...]  # attribute names, in `c` order
    exclusive: bool = True       # at most one attribute of the group is on
    tags: tuple[str, ...] = ()   # dataset tag for each attribute; defaults to the attribute name
    prior: tuple[float, ...] = ()  # how a sample picks it (default uniform): exclusive, the chance of each
                                   # attribute then of none; free, each attribute's chance to be on

    def __post_init__(self):
        if not self.attributes:
            raise UsageError(f"group {self.name!r} has no attributes")
        if self.tags and len(self.tags) != len(self.attributes):
            raise UsageError(f"group {self.name!r}: {len(self.tags)} tags for {len(self.attributes)} attributes")
        if self.prior:
            k = len(self.attributes) + self.exclusive
            p = np.asarray(self.prior, np.float64)
            if len(p) != k or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any() or \
                    (self.exclusive and abs(p.sum() - 1) > 1e-6):
                raise UsageError(f"group {self.name!r}: prior must be {k} probabilities"
                                 + (" summing to 1" if self.exclusive else ""))

    def probabilities(self) -> np.ndarray:
        """The prior [k + 1] (exclusive: each attribute, then none) or [k] (free: each on)."""
        k = len(self.attributes)
        if self.prior:
            return np.asarray(self.prior, np.float64)
        return np.full(k + 1, 1.0 / (k + 1)) if self.exclusive else np.full(k, 0.5)

    @property
    def tag_names(self) -> tuple[str, ...]:
        return self.tags or self.attributes


@dataclass(frozen=True)
class EncodeReport:
    """What happened while turning a dataset's tag rows into `c`."""
    rows: int
    conflicts: dict  # group name -> rows with two tags of that exclusive group (group left empty)
    unknown_tags: dict  # tag -> count of rows carrying a tag the schema does not know

    def summary(self) -> str:
        parts = [f"{self.rows} labelled rows"]
        if self.conflicts:
            parts.append("conflicting tags left empty: " + ", ".join(f"{g} {n}" for g, n in self.conflicts.items()))
        if self.unknown_tags:
            top = sorted(self.unknown_tags.items(), key=lambda kv: -kv[1])[:8]
            parts.append("unknown tags ignored: " + ", ".join(f"{t} ({n})" for t, n in top))
        return "; ".join(parts)


@dataclass(frozen=True)
class Schema:
    name: str
    groups: tuple[Group, ...] = ()
    derive: str = ""  # where a dataset's tags come from: "" its labels.csv, "object_colour" its
                      # pixels (neuedit.synth.colour: the object's colour named from a palette)

    DERIVED = ("", "object_colour")

    def __post_init__(self):
        if self.derive not in self.DERIVED:
            raise UsageError(f"schema {self.name!r}: derive must be one of {self.DERIVED}, not {self.derive!r}")
        seen = set()
        for g in self.groups:
            for t in g.tag_names:
                if t in seen:
                    raise UsageError(f"schema {self.name!r}: tag {t!r} appears twice")
                seen.add(t)

    # ---- layout -----------------------------------------------------------------
    @property
    def c_dim(self) -> int:
        return sum(len(g.attributes) for g in self.groups)

    @property
    def attributes(self) -> list[str]:
        return [a for g in self.groups for a in g.attributes]

    def slices(self) -> list[tuple[Group, slice]]:
        out, i = [], 0
        for g in self.groups:
            out.append((g, slice(i, i + len(g.attributes))))
            i += len(g.attributes)
        return out

    # ---- JSON ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": self.name, "groups": [
            {"name": g.name, "attributes": list(g.attributes), "exclusive": g.exclusive,
             **({"tags": list(g.tags)} if g.tags else {}), **({"prior": list(g.prior)} if g.prior else {})}
            for g in self.groups],
                **({"derive": self.derive} if self.derive else {})}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        try:
            groups = tuple(Group(name=g["name"], attributes=tuple(g["attributes"]),
                                 exclusive=bool(g.get("exclusive", True)), tags=tuple(g.get("tags", ())),
                                 prior=tuple(float(p) for p in g.get("prior", ())))
                           for g in d.get("groups", []))
            return cls(name=str(d["name"]), groups=groups, derive=str(d.get("derive", "")))
        except (KeyError, TypeError) as e:
            raise UsageError(f"malformed schema: {e!r}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Schema":
        """A built-in schema name, or a JSON file of the `to_dict` form."""
        if str(path) in BUILTIN:
            return BUILTIN[str(path)]()
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(f"schema {path!r} is neither a built-in ({', '.join(BUILTIN)}) nor a file")
        return cls.from_dict(json.loads(p.read_text()))

    # ---- tags -> c ------------------------------------------------------------------
    def encode(self, tags: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
        """Tags of one image -> (c [c_dim] float32 multi-hot, conflicting groups, unknown tags).

        Two tags of one exclusive group leave the group empty: real tags are noisy and
        we would rather teach "unknown" than a wrong colour.
        """
        c = np.zeros(self.c_dim, np.float32)
        index = {}
        for g, s in self.slices():
            for k, t in enumerate(g.tag_names):
                index[t] = (g, s.start + k)
        conflicts, unknown = [], []
        hits: dict[str, list[int]] = {}
        for t in tags:
            if t in index:
                g, i = index[t]
                hits.setdefault(g.name, []).append(i)
            else:
                unknown.append(t)
        for g, s in self.slices():
            idx = sorted(set(hits.get(g.name, [])))
            if g.exclusive and len(idx) > 1:
                conflicts.append(g.name)
                continue
            c[idx] = 1.0
        return c, conflicts, unknown

    def encode_rows(self, rows: list[list[str]]) -> tuple[np.ndarray, EncodeReport]:
        """Many tag rows -> (c [N, c_dim], report of conflicts and unknown tags)."""
        cs = np.zeros((len(rows), self.c_dim), np.float32)
        conflicts: dict[str, int] = {}
        unknown: dict[str, int] = {}
        for n, tags in enumerate(rows):
            cs[n], bad, unk = self.encode(tags)
            for g in bad:
                conflicts[g] = conflicts.get(g, 0) + 1
            for t in unk:
                unknown[t] = unknown.get(t, 0) + 1
        return cs, EncodeReport(rows=len(rows), conflicts=conflicts, unknown_tags=unknown)

    def decode(self, c: np.ndarray, threshold: float = 0.5) -> list[str]:
        """c [c_dim] -> names of the attributes that are on."""
        return [a for a, v in zip(self.attributes, np.asarray(c).reshape(-1)) if v > threshold]

    # ---- sampling ---------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, freqs: np.ndarray | None = None) -> np.ndarray:
        """Sample `c` [n, c_dim] float32.

        Exclusive groups: one attribute or none, uniformly over the len+1 choices (the
        report); free attributes: Bernoulli(0.5); a group with a `prior` follows it. With `freqs`
        (the data's empirical per-attribute frequencies, see `frequencies`) both follow the data instead.
        """
        c = np.zeros((n, self.c_dim), np.float32)
        for g, s in self.slices():
            k = len(g.attributes)
            if g.exclusive:
                if freqs is None:
                    p = g.probabilities()
                    p = p / p.sum()  # (a prior written to 6 decimals)
                else:
                    f = np.clip(freqs[s], 0, None)
                    p = np.append(f, max(0.0, 1.0 - f.sum()))
                    p = p / p.sum()
                pick = rng.choice(k + 1, size=n, p=p)
                on = pick < k
                c[np.nonzero(on)[0], s.start + pick[on]] = 1.0
            else:
                p = g.probabilities() if freqs is None else freqs[s]
                c[:, s] = (rng.random((n, k)) < p).astype(np.float32)
        return c

    def frequencies(self, cs: np.ndarray) -> np.ndarray:
        """Empirical per-attribute frequency [c_dim] of a dataset's `c` rows."""
        return cs.mean(axis=0) if len(cs) else np.zeros(self.c_dim, np.float32)

    def with_prior(self, cs: np.ndarray) -> "Schema":
        """This schema with each group's `prior` set to the frequencies in a dataset's `c` rows [N, c_dim]
        (samples then look like the data, whatever the training sampled)."""
        from dataclasses import replace
        f = self.frequencies(cs).astype(np.float64)
        groups = []
        for g, s in self.slices():
            p = f[s]
            if g.exclusive:
                p = np.append(p, max(0.0, 1.0 - p.sum()))
                p = p / p.sum()
            groups.append(replace(g, prior=tuple(round(float(x), 6) for x in p)))
        return replace(self, groups=tuple(groups))

    def project(self, c: np.ndarray) -> np.ndarray:
        """Project soft `c` [..., c_dim] onto the schema: in each exclusive group keep the
        largest entry (scaled to sum <= 1 is not enough for a multi-hot label) and zero the rest."""
        c = np.array(c, np.float32, copy=True)
        for g, s in self.slices():
            if g.exclusive and len(g.attributes) > 1:
                block = c[..., s]
                keep = block.argmax(axis=-1)
                mask = np.zeros_like(block)
                np.put_along_axis(mask, keep[..., None], 1.0, axis=-1)
                c[..., s] = block * mask
        return c


# ---- built-in schemas ------------------------------------------------------------------
_REPORT_HAIR = ("blonde", "brown", "black", "blue", "pink", "purple", "green", "red",
                "silver", "white", "orange", "aqua", "gray")
_REPORT_EYES = ("blue", "red", "brown", "green", "purple", "yellow", "pink", "aqua", "black", "orange")


def anime34() -> Schema:
    """The 34-attribute anime schema of docs/method.md §1 (hair and eye colours, hair length, ...)."""
    return Schema("anime34", (
        Group("hair_colour", _REPORT_HAIR, True, tuple(f"{h}_hair" for h in _REPORT_HAIR)),
        Group("hair_length", ("long", "short"), True, ("long_hair", "short_hair")),
        Group("hair_style", ("twintails", "drill", "ponytail"), True, ("twintails", "drill_hair", "ponytail")),
        Group("blush", ("blush",), False),
        Group("smile", ("smile",), False),
        Group("open_mouth", ("open_mouth",), False),
        Group("hat", ("hat",), False),
        Group("ribbon", ("ribbon",), False),
        Group("glasses", ("glasses",), False),
        Group("eye_colour", _REPORT_EYES, True, tuple(f"{e}_eyes" for e in _REPORT_EYES)),
    ))


_DATA_HAIR = ("blonde", "brown", "black", "blue", "pink", "purple", "aqua", "green", "red", "gray", "white", "orange")
_DATA_EYES = ("blue", "red", "brown", "green", "purple", "aqua", "yellow", "pink", "orange", "black", "gray")


def anime_faces() -> Schema:
    """The tags present in ../shared/data/anime-faces/labels.csv (hair 12, length 2, eyes 11)."""
    return Schema("anime_faces", (
        Group("hair_colour", _DATA_HAIR, True, tuple(f"{h}_hair" for h in _DATA_HAIR)),
        Group("hair_length", ("long", "short"), True, ("long_hair", "short_hair")),
        Group("eye_colour", _DATA_EYES, True, tuple(f"{e}_eyes" for e in _DATA_EYES)),
    ))


# name -> sRGB: the colours of the `object_colour` schema. The first eight are the semantic
# benchmark's stroke colours (neuedit.compare.semantic).
PALETTE = {"red": (200, 30, 35), "blue": (35, 70, 200), "green": (40, 150, 60), "yellow": (235, 200, 40),
           "pink": (240, 120, 180), "purple": (120, 50, 160), "orange": (240, 130, 30), "black": (25, 25, 28),
           "white": (235, 235, 230), "grey": (130, 130, 130), "brown": (110, 70, 40), "tan": (190, 150, 100)}


def object_colour() -> Schema:
    """One exclusive group, the object's colour, named from `PALETTE` and derived from the pixels
    (shoes, handbags: photos without labels; `neuedit.synth.colour`)."""
    return Schema("object_colour", (Group("colour", tuple(PALETTE), True, tuple(f"{n}_object" for n in PALETTE)),),
                  derive="object_colour")


def empty() -> Schema:
    """No labels (c_dim 0): shoes, handbags, any unlabelled domain."""
    return Schema("empty", ())


BUILTIN = {"anime34": anime34, "anime_faces": anime_faces, "object_colour": object_colour, "empty": empty}
