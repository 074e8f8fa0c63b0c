"""Stage two's training batches of edit pairs: (source, sketch, mask, target, region) tensors.

Each sample of a step is one kind of `neuedit.synth.pairs` (recolour, reshape, differ, empty),
drawn with the mix's probabilities. Recolour and reshape targets are real images of the
step's batch, or stage-one samples (`p_generated`), so G2 learns on what the web page edits;
differ pairs are two stage-one samples with another attribute or a nearby z. Everything is
drawn from the step's numpy generator, so a resumed run reads the same batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from neuedit.synth import pairs as P
from neuedit.data.datasets import to_uint8, to_unit_range
from neuedit.errors import UsageError
from neuedit.runtime.sketch import from_rgba
from neuedit.runtime.state import sample_z
from neuedit.synth.strokes import edge_map


@dataclass(frozen=True)
class PairMix:
    """Which edit pairs stage two learns from (probabilities per sample; they need not sum to 1)."""
    recolour: float = 0.35
    reshape: float = 0.3
    differ: float = 0.25
    empty: float = 0.1
    attribute: float = 0.0                    # G1(z, c) -> G1(z, c') with one exclusive attribute changed
    object: float = 0.0                       # a real product photo with the whole object recoloured
    attribute_groups: tuple[str, ...] = ()    # exclusive groups an attribute pair changes (empty: all)
    p_generated: float = 0.3                  # recolour/reshape target is a stage-one sample instead of a real image
    p_generated_object: float = 0.0           # object recolour of a stage-one sample instead of a real photo
    p_differ_lines: float = 0.3               # differ pair's strokes are the target's edge lines (a shape edit)
    strokes: tuple[int, int] = (1, 6)         # strokes (or line fragments) per non-empty pair, inclusive
    fills: tuple[str, ...] = ("donor", "blur", "given")  # what replaces a reshape region ("given": a G1 sample)
    pair: P.PairConfig = field(default_factory=P.PairConfig)

    def __post_init__(self):
        w = self.weights()
        if (w < 0).any() or w.sum() <= 0:
            raise UsageError("pair mix probabilities must be >= 0 with a positive sum")
        if not 1 <= self.strokes[0] <= self.strokes[1]:
            raise UsageError(f"strokes must be (lo, hi) with 1 <= lo <= hi, not {self.strokes}")
        if not all(0.0 <= p <= 1.0 for p in (self.p_generated, self.p_generated_object, self.p_differ_lines)):
            raise UsageError("p_generated, p_generated_object and p_differ_lines must be in [0, 1]")
        bad = set(self.fills) - set(P.FILLS)
        if bad or not self.fills:
            raise UsageError(f"fills must be among {P.FILLS}, not {self.fills}")

    def weights(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in P.KINDS], np.float64)


def to_tensor(images: np.ndarray, device) -> torch.Tensor:
    """uint8 [N, R, R, 3] -> [N, 3, R, R] in [-1, 1] on `device`."""
    return torch.from_numpy(np.ascontiguousarray(to_unit_range(images))).to(device)


class PairBatcher:
    """Edit pairs for stage two from real images (uint8 [N, R, R, 3]) with their edge maps
    (bool [N, R, R]) and a frozen stage-one generator."""

    def __init__(self, images: np.ndarray, edges: np.ndarray, G1, z_dim: int, schema, mix: PairMix, device):
        self.images, self.edges, self.G1 = images, edges, G1
        self.z_dim, self.schema, self.mix, self.device = z_dim, schema, mix, device

    def generated(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n stage-one pairs (G1(z, c), G1(z', c')): c' another attribute (half the rows of a
        conditional schema) or z' a nearby z -> two uint8 [n, R, R, 3]."""
        z = sample_z(n, self.z_dim, rng)
        c = self.schema.sample(n, rng)
        change_c = (rng.random(n) < 0.5) & (self.schema.c_dim > 0)
        z2 = np.where(change_c[:, None], z, P.nearby_z(z, rng))
        c2 = c.copy()
        for i in np.flatnonzero(change_c):
            c2[i] = P.changed_attribute(self.schema, c[i], rng)[0]
        t = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        with torch.no_grad():
            a, b = self.G1(t(z), t(c)), self.G1(t(z2), t(c2))
        return to_uint8(a.float().cpu().numpy()), to_uint8(b.float().cpu().numpy())

    def attribute_changes(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n stage-one pairs (G1(z, c), G1(z, c')), c' with one of `mix.attribute_groups` changed
        -> two uint8 [n, R, R, 3]."""
        z = sample_z(n, self.z_dim, rng)
        c = self.schema.sample(n, rng)
        c2 = np.stack([P.changed_attribute(self.schema, c[i], rng, self.mix.attribute_groups)[0] for i in range(n)])
        t = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        with torch.no_grad():
            a, b = self.G1(t(z), t(c)), self.G1(t(z), t(c2))
        return to_uint8(a.float().cpu().numpy()), to_uint8(b.float().cpu().numpy())

    def pairs(self, idx: np.ndarray, rng: np.random.Generator) -> list[P.Pair]:
        """One pair per real image index in `idx` (each flipped with probability 0.5)."""
        n, mix = len(idx), self.mix
        kinds = [P.KINDS[k] for k in rng.choice(len(P.KINDS), n, p=mix.weights() / mix.weights().sum())]
        strokes = rng.integers(mix.strokes[0], mix.strokes[1] + 1, n)
        flips = rng.random(n) < 0.5
        p_gen = np.array([mix.p_generated if k in ("recolour", "reshape") else
                          mix.p_generated_object if k == "object" else 0.0 for k in kinds])
        gen_target = rng.random(n) < p_gen
        fills = [mix.fills[int(f)] for f in rng.integers(len(mix.fills), size=n)]
        # stage one runs only for the samples that use it
        need = np.flatnonzero(gen_target | np.array([k == "differ" or (k == "reshape" and f == "given")
                                                     for k, f in zip(kinds, fills)]))
        gen_a, gen_b = self.generated(len(need), rng) if len(need) else (None, None)
        slot = {int(i): j for j, i in enumerate(need)}
        attr = np.flatnonzero(np.array(kinds) == "attribute")
        att_a, att_b = self.attribute_changes(len(attr), rng) if len(attr) else (None, None)
        att_slot = {int(i): j for j, i in enumerate(attr)}
        out = []
        for i, kind in enumerate(kinds):
            target, edges = self.images[idx[i]], self.edges[idx[i]]
            if flips[i]:
                target, edges = target[:, ::-1], edges[:, ::-1]
            if gen_target[i]:
                target = gen_a[slot[i]]
                edges = edge_map(target) if kind == "reshape" else None
            target = np.ascontiguousarray(target)
            if kind == "recolour":
                donors = self.images[rng.integers(0, len(self.images), 4)]
                out.append(P.recolour_pair(target, donors, int(strokes[i]), rng, mix.pair))
            elif kind == "reshape":
                donor = self.images[int(rng.integers(len(self.images)))]
                given = gen_b[slot[i]] if i in slot else None
                out.append(P.reshape_pair(target, edges, int(strokes[i]), rng, mix.pair, donor=donor,
                                          fill=fills[i], given=given))
            elif kind == "differ":
                b = gen_b[slot[i]]
                lines = edge_map(b) if rng.random() < mix.p_differ_lines else None
                out.append(P.differ_pair(gen_a[slot[i]], b, int(strokes[i]), rng, mix.pair, edges=lines))
            elif kind == "attribute":
                j = att_slot[i]
                out.append(P.attribute_pair(att_a[j], att_b[j], int(strokes[i]), rng, mix.pair))
            elif kind == "object":
                donors = self.images[rng.integers(0, len(self.images), 4)]
                out.append(P.object_pair(target, donors, int(strokes[i]), rng, mix.pair))
            else:
                out.append(P.empty_pair(target))
        return out


def pair_tensors(pairs: list[P.Pair], resolution: int, device) -> dict[str, torch.Tensor]:
    """Pairs -> {"source", "target": [N, 3, R, R] in [-1, 1]; "sketch" [N, 3, R, R]; "mask",
    "region", "colour": [N, 1, R, R] in {0, 1}} (the sketch and mask as `neuedit.runtime.sketch.from_rgba`
    reads them; "colour" is the mask without the line strokes)."""
    sk, mk = zip(*(from_rgba(p.sketch, resolution) for p in pairs))
    lines = np.stack([from_rgba(np.dstack([p.sketch[..., :3], p.lines * np.uint8(255)]), resolution)[1] for p in pairs])
    return {
        "colour": torch.from_numpy(np.stack(mk) * (1.0 - lines)).to(device),
        "source": to_tensor(np.stack([p.source for p in pairs]), device),
        "target": to_tensor(np.stack([p.target for p in pairs]), device),
        "sketch": torch.from_numpy(np.stack(sk)).to(device),
        "mask": torch.from_numpy(np.stack(mk)).to(device),
        "region": torch.from_numpy(np.stack([p.region for p in pairs])[:, None].astype(np.float32)).to(device),
    }
