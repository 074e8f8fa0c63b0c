"""The ground-truth comparison: every editor on a ground-truth set (`neuedit.compare.truth`), scored
against the targets, written as a report folder.

The editors, their sources (a sample's state; a photo's projection for the latent editor) and
the harness are the task comparison's; only the scoring (`truth_scoring`), the tables
(`truth_report`) and the pictures (`truth_figures`) are this comparison's own.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from neuedit.compare.config import TARGET, CompareConfig
from neuedit.compare.harness import progress_bar, run_tasks
from neuedit.compare.report import jsonable, write_csv
from neuedit.compare.sources import Prepared
from neuedit.compare.run import set_up, write_config
from neuedit.compare.truth import TruthSet
from neuedit.compare.truth_figures import write_curve, write_grid
from neuedit.compare.truth_report import csv_rows, kind_label, truth_markdown, truth_statistics
from neuedit.compare.truth_scoring import scorer, targets_of, truth_realism


def truth_info(b, ts: TruthSet, tasks_dir, methods: list[str], rows: list[dict], n_real: int,
               prep: Prepared) -> dict:
    """What the run was and what it cost: summary.json's "info", also read by summary.md."""
    digest = ""
    if tasks_dir is not None and (Path(tasks_dir) / "truth.json").is_file():
        h = hashlib.sha256()
        for name in ("tasks.json", "truth.json"):
            h.update((Path(tasks_dir) / name).read_bytes())
        digest = h.hexdigest()
    firsts = {}
    for t, a in zip(ts.tasks.tasks, ts.answers):
        firsts.setdefault(a.group, f"{t.source.kind} {kind_label(vars(a))}")
    mix = Counter(firsts.values())
    return {"bundle": b.name, "bundle_path": str(b.path), "resolution": b.resolution, "tasks": str(tasks_dir or ""),
            "tasks_digest": digest or "-" * 12, "n_tasks": len(ts.answers), "n_groups": len(firsts),
            "group_mix": ", ".join(f"{v} {k}" for k, v in sorted(mix.items())), "strokes": ts.strokes,
            "skipped_groups": ts.tasks.meta.get("skipped_groups", []), "n_real": int(n_real),
            "threads": torch.get_num_threads(), "project_ms": prep.project_ms,
            "median_ms": {m: float(np.median([r["ms"] for r in rows if r["method"] == m])) if rows
                          else float("nan") for m in methods}, "methods": methods}


def compare_truth(bundle, ts: TruthSet, cfg: CompareConfig, out: str | Path, heldout: np.ndarray | None = None,
                  progress: bool = True, log=print, tasks_dir: str | Path | None = None) -> dict:
    """Run every editor on every task of `ts`, score against the targets and write into `out`:
    results.csv, summary.md, summary.json, psnr_vs_strokes.png, grid.png, projections.json,
    config.json. `heldout` uint8 [M, R, R, 3]: photos for KID (default the set's). Returns the summary."""
    sources = [t.source for t in ts.tasks.tasks]
    b, out, editors, prep = set_up(bundle, ts.check, cfg, out, sources, log)
    methods = editors.methods
    ts.check_samples(prep.before)
    targets = targets_of(ts)
    with progress_bar(len(sources) * len(methods), progress, f"truth {b.name}") as bar:
        rows, images = run_tasks(ts.tasks, editors, prep, bar, score=scorer(ts, targets, cfg),
                                 references={TARGET: targets})
    real = ts.tasks.heldout if heldout is None else heldout
    kids, real_rows = truth_realism(ts, editors, rows, images, real, b.schema, cfg)
    st = truth_statistics(rows, real_rows, methods, ts.strokes, cfg)
    info = truth_info(b, ts, tasks_dir, methods, rows, len(real), prep)

    write_csv(out / "results.csv", csv_rows(rows))
    (out / "projections.json").write_text(json.dumps(prep.projections, indent=1) + "\n")
    write_config(out, cfg, info)
    if rows:
        write_curve(out / "psnr_vs_strokes.png", st["by_strokes"], methods)
    write_grid(out / "grid.png", ts, prep.before, targets, images, methods, cfg.grid_tasks)
    (out / "summary.md").write_text(truth_markdown(info, st, kids, methods, cfg) + "\n")
    summary = jsonable({"info": info, "methods": st["stats"], "kid": kids, "paired_vs_two_stage": st["diffs"],
                        "by_strokes": st["by_strokes"],
                        "by_kind": {f"{a}/{k}": v for (a, k), v in st["by_kind"].items()}})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
