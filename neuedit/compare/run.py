"""The whole comparison: prepare the sources, run the harness, score, aggregate and write the report folder."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from neuedit.runtime import bundle as bundle_mod
from neuedit.compare.tasks import TaskSet
from neuedit.compare.config import CompareConfig
from neuedit.compare.editors import Editors
from neuedit.compare.figures import write_chain_grid, write_stability_plot, write_task_grid
from neuedit.compare.harness import progress_bar, run_chains, run_tasks
from neuedit.compare.report import jsonable, summary_markdown, write_csv
from neuedit.compare.scoring import Realism, score_realism
from neuedit.compare.sources import Prepared, prepare_sources
from neuedit.compare.stats import statistics


def run_info(b, ts: TaskSet, tasks_dir, methods: list[str], rows: list[dict], n_real: int, prep: Prepared,
             realism: Realism) -> dict:
    """What the run was (bundle, task set and its digest, mix, threads) and what it cost (projection,
    median ms per method), plus the chains' KIDs per round: summary.json's "info", also read by summary.md."""
    digest = ""
    if tasks_dir is not None and (Path(tasks_dir) / "tasks.json").is_file():
        digest = hashlib.sha256((Path(tasks_dir) / "tasks.json").read_bytes()).hexdigest()
    mix: dict[str, int] = {}
    for t in ts.tasks:
        k = f"{t.source.kind}/{t.stroke.kind}"
        mix[k] = mix.get(k, 0) + 1
    return {"bundle": b.name, "bundle_path": str(b.path), "resolution": b.resolution, "tasks": str(tasks_dir or ""),
            "tasks_digest": digest or "-" * 12, "n_tasks": len(ts.tasks), "n_chains": len(ts.chains),
            "task_mix": ", ".join(f"{v} {k}" for k, v in sorted(mix.items())), "n_real": int(n_real),
            "threads": torch.get_num_threads(), "project_ms": prep.project_ms,
            "median_ms": {m: float(np.median([row["ms"] for row in rows if row["method"] == m])) if rows
                          else float("nan") for m in methods},
            "chain_kid": realism.chain_kid, "methods": methods}


def set_up(bundle, check, cfg: CompareConfig, out: str | Path, sources: list, log):
    """Read the bundle, `check` the task set against it, build the editors and project the photos
    among `sources` -> (bundle, out folder, editors, prepared sources)."""
    b = bundle_mod.read(bundle) if not isinstance(bundle, bundle_mod.Bundle) else bundle
    check(b)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    editors = Editors(b, cfg)
    if cfg.two_stage and not editors.backend.has_g2:
        log(f"bundle {b.name} has no stage-two generator: comparing the latent editor alone")
    if cfg.latent_steps and any(s.kind == "real" for s in sources):
        log(f"projecting {sum(s.kind == 'real' for s in sources)} photos into the latent space "
            f"({cfg.project_steps} Adam steps)...")
    return b, out, editors, prepare_sources(editors.backend, sources, cfg)


def write_config(out: Path, cfg: CompareConfig, info: dict) -> None:
    (out / "config.json").write_text(json.dumps(jsonable({"compare": asdict(cfg), **{k: info[k] for k in (
        "bundle", "bundle_path", "tasks", "tasks_digest", "threads", "resolution")}}), indent=2) + "\n")


def compare(bundle, ts: TaskSet, cfg: CompareConfig, out: str | Path, heldout: np.ndarray | None = None,
            progress: bool = True, log=print, tasks_dir: str | Path | None = None) -> dict:
    """Run every method on every task and chain of `ts`, write the report into `out`; returns the
    summary (as summary.json). `heldout` uint8 [M, H, W, 3]: real images for KID (default the set's)."""
    sources = [t.source for t in ts.tasks] + [c.source for c in ts.chains]
    b, out, editors, prep = set_up(bundle, ts.check, cfg, out, sources, log)
    methods = editors.methods
    rounds = len(ts.chains[0].rounds) if ts.chains else 0
    total = (len(ts.tasks) + len(ts.chains) * rounds) * len(methods)
    with progress_bar(total, progress, f"compare {b.name}") as bar:
        rows, images = run_tasks(ts, editors, prep, bar)
        chain_rows, chain_images = run_chains(ts, editors, prep, len(ts.tasks), bar)
    real = ts.heldout if heldout is None else heldout
    realism = score_realism(ts, editors, rows, images, chain_rows, chain_images, real, b.schema, cfg)
    st = statistics(ts, methods, rows, chain_rows, realism.real_rows, cfg)
    info = run_info(b, ts, tasks_dir, methods, rows, len(real), prep, realism)

    write_csv(out / "results.csv", rows)
    write_csv(out / "stability.csv", chain_rows)
    (out / "projections.json").write_text(json.dumps(prep.projections, indent=1) + "\n")
    write_config(out, cfg, info)
    write_task_grid(out / "grid.png", ts, prep, images, methods, cfg.grid_tasks)
    if chain_rows:
        write_chain_grid(out / "stability_grid.png", ts, prep.before[len(ts.tasks):], chain_images, methods,
                         cfg.grid_chains)
        write_stability_plot(out / "stability.png", st["stab"], methods, rounds)
    md = summary_markdown(info, st["stats"], realism.kid, st["diffs"], st["stab"], methods, rounds, cfg, st["by_kind"])
    (out / "summary.md").write_text(md + "\n")
    summary = jsonable({"info": info, "methods": st["stats"], "kid": realism.kid, "paired_vs_two_stage": st["diffs"],
                        "by_kind": {f"{a}/{s}": v for (a, s), v in st["by_kind"].items()}, "stability": st["stab"]})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary

