"""The edit harness: every method on every task, and K successive edits per stability chain, scored as
they go; the progress bar and the timer of every task kind."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from neuedit.evaluation import metrics as M
from neuedit.compare.tasks import TaskSet
from neuedit.compare.config import SOURCE, TWO_STAGE
from neuedit.compare.editors import Editors
from neuedit.compare.scoring import edit_metrics
from neuedit.compare.sketches import cumulative, sketch_arrays
from neuedit.compare.sources import Prepared


def progress_bar(total: int, progress: bool, desc: str):
    """A tqdm bar counting edits (hidden when not `progress`); imported late as only the runs need it."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="edit", disable=not progress, leave=False)


def timed(fn: Callable, *args) -> tuple[object, float]:
    """fn(*args) -> (its result, wall milliseconds). `Editors.edit` times its own calls the same way."""
    t = time.perf_counter()
    out = fn(*args)
    return out, 1e3 * (time.perf_counter() - t)


def run_tasks(ts: TaskSet, editors: Editors, prep: Prepared, bar,
              score: Callable[[int, np.ndarray], dict] | None = None,
              references: dict[str, np.ndarray] | None = None) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Every method on every task -> (rows, {method: results [T, 3, R, R]}); `source` rows hold the
    unedited image as a reference. `score(i, result)`, when given, adds columns to each row of
    task i; `references` {name: images [T, 3, R, R]} are scored as results in rows of their own,
    after `source` (the ground-truth comparison passes its targets both ways)."""
    more = score or (lambda i, out: {})
    refs = {SOURCE: prep.before, **(references or {})}
    r, cfg = ts.resolution, editors.cfg
    rows, images = [], {m: [] for m in list(refs) + editors.methods}
    arrays = [sketch_arrays(t.stroke.rgba, r) for t in ts.tasks]
    if ts.tasks:  # untimed warm-up of every method (first calls allocate)
        for m in editors.methods:
            editors.edit(m, prep.starts[0], prep.before[0], ts.tasks[0].source.kind == "sample", *arrays[0])
    for i, task in enumerate(ts.tasks):
        sk, mk = arrays[i]
        base = {"task": task.id, "source": task.source.kind, "stroke": task.stroke.kind,
                "sketch_from": task.stroke.origin.split(":")[0], "stroke_px": int(mk.sum())}
        for name, ref in refs.items():
            rows.append({**base, "method": name, "ms": 0.0, "start_l1": 0.0,
                         **edit_metrics(ref[i], prep.before[i], sk, mk, task.stroke.kind, cfg), **more(i, ref[i])})
            images[name].append(ref[i])
        for m in editors.methods:
            out, _, ms = editors.edit(m, prep.starts[i], prep.before[i], task.source.kind == "sample", sk, mk)
            start_l1 = 0.0 if m == TWO_STAGE else float(prep.start_l1[i])
            rows.append({**base, "method": m, "ms": ms, "start_l1": start_l1,
                         **edit_metrics(out, prep.before[i], sk, mk, task.stroke.kind, cfg), **more(i, out)})
            images[m].append(out)
            bar.update(1)
    return rows, {m: np.stack(v) if v else np.zeros((0, 3, r, r), np.float32) for m, v in images.items()}


def run_chains(ts: TaskSet, editors: Editors, prep: Prepared, offset: int, bar) -> tuple[list[dict], dict]:
    """K successive edits per chain and method -> (rows, {method: images [C, K + 1, 3, R, R]}).

    Round k gives the editor the previous result (the latent editor: its state, Adam moments
    reset) and all strokes so far; scored on the new strokes (dist_new), on earlier strokes not
    painted over (dist_earlier), and outside the dilated union of all strokes against the
    image before the first edit (the untouched pixels). The chains' sources sit in `prep` from
    row `offset` on."""
    r, cfg = ts.resolution, editors.cfg
    rows, images = [], {m: [] for m in editors.methods}
    for j, chain in enumerate(ts.chains):
        before, start = prep.before[offset + j], prep.starts[offset + j]
        layers = [s.rgba for s in chain.rounds]
        sketches = [sketch_arrays(c, r) for c in cumulative(layers)]
        new = [sketch_arrays(s, r) for s in layers]
        for m in editors.methods:
            img, state = before, start
            seq = [before if m == TWO_STAGE else prep.start_images[offset + j]]
            for k in range(len(layers)):
                sk, mk = sketches[k]
                from_state = k == 0 and chain.source.kind == "sample"
                out, new_state, ms = editors.edit(m, state, img, from_state, sk, mk)
                earlier = (sketches[k - 1][1] > 0.5) & (new[k][1] < 0.5) if k else np.zeros_like(mk, bool)
                keep = M.keep_metrics(out, before, mk, cfg.dilate)
                rows.append({"chain": chain.id, "source": chain.source.kind, "method": m, "round": k + 1, "ms": ms,
                             "dist_new": M.stroke_dist(out, *new[k]),
                             "dist_earlier": M.stroke_dist(out, sk, earlier.astype(np.float32)) if earlier.any()
                             else float("nan"),
                             "l1_untouched": keep["l1_out"], "psnr_untouched": keep["psnr_out"],
                             "ssim_untouched": keep["ssim_out"]})
                img, state = out, new_state
                seq.append(out)
                bar.update(1)
            images[m].append(np.stack(seq))
    return rows, {m: np.stack(v) for m, v in images.items() if v}
