"""Ground-truth task sets: edits whose answer is known (source, strokes, target), on disk.

A ground-truth task is a `neuedit.compare.tasks.Task` (what the editors see: a source and a sketch) with
an `Answer` (what they should produce: the target, the region where it differs from the source,
the sketch's line strokes). Tasks come in groups: one source and target with 1, 3 and 10 strokes
(nested: the 3-stroke sketch holds the 1-stroke one), so a score against the number of strokes
is paired. Real-photo groups are `recolour` and `reshape` edit pairs whose target is a held-out
photo; stage-one groups are `differ` pairs between G1(z, c) and G1(z', c') (one attribute group
changed, or a nearby z), the source's state kept so the latent editor starts from it exactly.
How they are drawn: `neuedit.compare.truth_draw`; the pair kinds: `neuedit.synth.pairs`.

On disk a ground-truth set is a task set folder (`TaskSet.save`: tasks.json, sketches, real
sources, heldout.png; `TaskSet.load` reads it as a plain task set too) plus `truth.json` and,
per group, `<group>_target.png`, `<group>_region.png` (and for stage-one sources
`<group>_sample.png`, G1's source image as drawn), per task with lines `<id>_lines.png`.
The same seed, data and bundle give byte-identical files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuedit.runtime.bundle import atomic_write_bytes
from neuedit.errors import UsageError
from neuedit.runtime.state import EditState
from neuedit.compare.tasks import TaskSet, _read_png, _write_png, clear_folder, read_doc

FORMAT = "neuedit-truth"
VERSION = 1
PAIR_KINDS = ("recolour", "reshape", "differ")
SAMPLE_TOLERANCE = 2.0  # mean |level| by which G1's render of a sample source may differ from the drawn one


@dataclass(frozen=True, eq=False)
class Answer:
    """What an editor should produce for one task."""
    group: str                        # tasks of a group share source, target and region; only the strokes differ
    kind: str                         # "recolour", "reshape" (real photos) or "differ" (stage-one samples)
    fill: str                         # reshape: what replaced the region in the source ("donor", "blur"); else ""
    strokes: int                      # strokes asked of the pair builder (1, 3, 10, ...)
    target: np.ndarray                # uint8 [R, R, 3]
    region: np.ndarray                # bool [R, R]: where the target differs from the source by construction
    lines: np.ndarray                 # bool [R, R]: the sketch's line strokes (empty for colour strokes only)
    target_c: np.ndarray | None = None        # the target's known attributes (a photo's labels, c') or None
    target_state: EditState | None = None     # differ: the target's stage-one state (z', c')
    change: str = ""                  # differ: what changed ("hair_colour: none -> red", "nearby z")
    sample: np.ndarray | None = None  # stage-one sources: uint8 G1(z, c) as drawn (to check the bundle)


@dataclass(eq=False)
class TruthSet:
    """A task set (`tasks`) with one `Answer` per task, in the same order."""
    tasks: TaskSet
    answers: list[Answer]

    @property
    def resolution(self) -> int:
        return self.tasks.resolution

    @property
    def strokes(self) -> list[int]:
        return sorted({a.strokes for a in self.answers})

    def check(self, bundle) -> "TruthSet":
        """Refuse a bundle whose dimensions differ from the ones the set was drawn for."""
        self.tasks.check(bundle)
        return self

    def check_samples(self, before: np.ndarray) -> None:
        """Refuse a G1 other than the one that drew the stage-one targets: `before` [T, 3, R, R]
        are the task sources as this bundle's G1 renders them (`prepare_sources`)."""
        from neuedit.evaluation import metrics as M
        for i, (t, a) in enumerate(zip(self.tasks.tasks, self.answers)):
            if a.sample is None:
                continue
            gap = float(np.abs(M.to_uint8(before[i]).astype(np.float32) - a.sample).mean())
            if gap > SAMPLE_TOLERANCE:
                raise UsageError(f"task {t.id}: this bundle's G1 renders the source {gap:.1f} levels away from the "
                                 f"one the set was drawn with (draw a ground-truth set for this bundle)")

    # ---- disk -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the set into folder `path` (files a previous set there named are removed first)."""
        p = clear_folder(path, "truth.json", _named_files)
        self.tasks.save(p)
        groups, docs = {}, []
        for t, a in zip(self.tasks.tasks, self.answers):
            if a.group not in groups:
                groups[a.group] = _group_doc(a, p)
            lines = None
            if a.lines.any():
                lines = f"{t.id}_lines.png"
                _write_png(p / lines, _mask_png(a.lines))
            docs.append({"id": t.id, "group": a.group, "strokes": int(a.strokes), "lines": lines})
        doc = {"format": FORMAT, "version": VERSION, "groups": list(groups.values()), "tasks": docs}
        atomic_write_bytes(p / "truth.json", (json.dumps(doc, indent=1) + "\n").encode())
        return p

    @classmethod
    def load(cls, path: str | Path) -> "TruthSet":
        p = Path(path)
        doc = read_doc(p / "truth.json", FORMAT, VERSION, "ground-truth set", "draw one with --truth --data")
        ts = TaskSet.load(p)
        groups = {g["id"]: _load_group(g, p) for g in doc["groups"]}
        by_id = {d["id"]: d for d in doc["tasks"]}
        if set(by_id) != {t.id for t in ts.tasks}:
            raise UsageError(f"{p / 'truth.json'} does not answer the tasks of {p / 'tasks.json'}")
        answers = []
        for t in ts.tasks:
            d = by_id[t.id]
            g = groups[d["group"]]
            lines = (_read_png(p / d["lines"], "L") > 127 if d.get("lines")
                     else np.zeros(g["region"].shape, bool))
            answers.append(Answer(d["group"], g["kind"], g["fill"], int(d["strokes"]), g["target"], g["region"],
                                  lines, g["target_c"], g["target_state"], g["change"], g["sample"]))
        return cls(ts, answers)


# ---- (de)serialisation helpers -------------------------------------------------------------------
def _mask_png(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def _group_doc(a: Answer, p: Path) -> dict:
    _write_png(p / f"{a.group}_target.png", a.target)
    _write_png(p / f"{a.group}_region.png", _mask_png(a.region))
    sample = None
    if a.sample is not None:
        sample = f"{a.group}_sample.png"
        _write_png(p / sample, a.sample)
    return {"id": a.group, "kind": a.kind, "fill": a.fill, "target": f"{a.group}_target.png",
            "region": f"{a.group}_region.png", "sample": sample,
            "target_c": None if a.target_c is None else a.target_c.tolist(),
            "target_state": None if a.target_state is None else a.target_state.to_dict(), "change": a.change}


def _load_group(g: dict, p: Path) -> dict:
    return {"kind": g["kind"], "fill": g.get("fill", ""), "target": _read_png(p / g["target"], "RGB"),
            "region": _read_png(p / g["region"], "L") > 127,
            "sample": _read_png(p / g["sample"], "RGB") if g.get("sample") else None,
            "target_c": None if g.get("target_c") is None else np.asarray(g["target_c"], np.float32),
            "target_state": EditState.from_dict(g["target_state"]) if g.get("target_state") else None,
            "change": g.get("change", "")}


def _named_files(doc: dict) -> list[str]:
    out = [d.get("lines") for d in doc.get("tasks", [])]
    for g in doc.get("groups", []):
        out += [g.get("target"), g.get("region"), g.get("sample")]
    return [f for f in out if f and "/" not in f and "\\" not in f]
