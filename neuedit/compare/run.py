"""The one comparison pipeline, for every task kind: the kind's edits under one progress bar, its
scores, statistics, tables and figures (`Kind.report`), then one write sequence into the report
folder (`write_report`). The kinds: `kind_strokes` (synthetic strokes), `kind_truth` (a known
target), `kind_semantic` (did the requested edit happen); docs/comparison.md describes them."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neuedit.runtime import bundle as bundle_mod
from neuedit.compare.editors import Editors
from neuedit.compare.harness import progress_bar
from neuedit.compare.report import jsonable, write_csv
from neuedit.compare.sources import Prepared, prepare_sources

CONFIG_KEYS = ("bundle", "bundle_path", "tasks", "tasks_digest", "threads", "resolution")  # config.json's, from info


@dataclass(frozen=True)
class Report:
    """What a run writes (`write_report`), every statistic a (mean, lo, hi, n) tuple."""
    config: dict                                 # config.json: the settings and what was compared
    tables: dict[str, list[dict]]                # CSV name -> rows (one per edit)
    summary: dict                                # summary.json (run info, statistics)
    markdown: str                                # summary.md
    figures: dict[str, Callable[[Path], None]]   # PNG name -> its writer (given the path)
    files: dict[str, object] = field(default_factory=dict)  # other JSON files: name -> value


class Kind:
    """A task kind as `run` drives it: the number of edits, the edits (every editor on every task,
    scored as they go) and the report of them."""
    title = ""  # the progress bar's label

    def edits(self) -> int:
        raise NotImplementedError

    def edit(self, bar):
        """Every edit, `bar.update(k)` after each k -> what `report` takes."""
        raise NotImplementedError

    def report(self, edited) -> Report:
        raise NotImplementedError


def run(kind: Kind, out: str | Path, progress: bool = True) -> Report:
    """Run `kind` and write its report into folder `out` -> the report (summary as computed, not JSON)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(kind.edits(), progress, kind.title) as bar:
        edited = kind.edit(bar)
    report = kind.report(edited)
    write_report(out, report)
    return report


def write_report(out: Path, report: Report) -> None:
    """The one write sequence: config.json, the CSV tables, other JSON files, the figures, summary.md
    and last summary.json (a folder with summary.json is complete)."""
    (out / "config.json").write_text(json.dumps(jsonable(report.config), indent=2) + "\n")
    for name, rows in report.tables.items():
        write_csv(out / name, rows)
    for name, value in report.files.items():
        (out / name).write_text(json.dumps(jsonable(value), indent=1) + "\n")
    for name, draw in report.figures.items():
        draw(out / name)
    (out / "summary.md").write_text(report.markdown + "\n")
    (out / "summary.json").write_text(json.dumps(jsonable(report.summary), indent=1) + "\n")


def digest(folder: str | Path | None, names: tuple[str, ...]) -> str:
    """sha256 over the files `names` of a task set folder, in order; dashes unless all are there."""
    files = [Path(folder) / n for n in names] if folder is not None else []
    if not files or not all(f.is_file() for f in files):
        return "-" * 12
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def run_info(b, tasks_dir, set_files: tuple[str, ...], rows: list[dict], methods: list[str], **kind) -> dict:
    """What the run was (bundle `b`, task set and its digest, the kind's own keys, threads) and what
    it cost (median ms per edit and method): summary.json's "info", which summary.md and
    config.json read too."""
    return {"bundle": b.name, "bundle_path": str(b.path), "resolution": b.resolution, "tasks": str(tasks_dir or ""),
            "tasks_digest": digest(tasks_dir, set_files), **kind, "threads": torch.get_num_threads(),
            "median_ms": {m: float(np.median([r["ms"] for r in rows if r["method"] == m])) if rows
                          else float("nan") for m in methods}, "methods": methods}


def run_config(cfg, info: dict, key: str = "compare") -> dict:
    """config.json: the settings (`cfg`, a dataclass) and what was compared."""
    return {key: asdict(cfg), **{k: info[k] for k in CONFIG_KEYS}}


def set_up(bundle, check, cfg, sources: list, log) -> tuple[bundle_mod.Bundle, Editors, Prepared]:
    """For the kinds that compare `Editors`: read the bundle, `check` the task set against it, build
    the editors and project the photos among `sources` -> (bundle, editors, prepared sources)."""
    b = bundle_mod.read(bundle) if not isinstance(bundle, bundle_mod.Bundle) else bundle
    check(b)
    editors = Editors(b, cfg)
    if cfg.two_stage and not editors.backend.has_g2:
        log(f"bundle {b.name} has no stage-two generator: comparing the latent editor alone")
    if cfg.latent_steps and any(s.kind == "real" for s in sources):
        log(f"projecting {sum(s.kind == 'real' for s in sources)} photos into the latent space "
            f"({'default' if cfg.project_steps is None else cfg.project_steps} Adam steps)...")
    return b, editors, prepare_sources(editors.backend, sources, cfg)
