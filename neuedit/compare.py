"""One-stage (latent optimisation) against two-stage editing on a task set, with numbers.

Every task of a `neuedit.tasks.TaskSet` is edited by the latent editor at each step count
(`latent-<steps>`) and by the two-stage editor (`two-stage`), each edit alone (batch 1,
timed). A stage-one sample starts both editors from its state; a real photo goes to the
two-stage editor as it is and to the latent editor through `project` (iGAN-style: Adam on
(z, c) to reconstruct it). Each result is scored (`neuedit.metrics`) against the task's
strokes and against the image before the edit (the photo, or G1's sample): following the
strokes, keeping the rest (raw output, no paste-back), realism (KID on the project's
handcrafted descriptor against held-out real images, the stage-one D's score, agreement of
its ACGAN head with known attributes) and cost. Chains of K successive edits (all strokes
so far go in each time, as in the web client; each edit starts from the previous result)
measure stability: drift of earlier strokes and of untouched pixels, realism per round.

`compare` writes into one folder: results.csv (per task and method), stability.csv (per
chain, round and method), summary.md and summary.json (means with 95% bootstrap intervals,
paired differences against two-stage), grid.png (original | strokes | each method),
stability_grid.png, stability.png, projections.json and config.json.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import bundle as bundle_mod
from . import metrics as M
from .data import to_unit_range
from .editor import LatentEditor
from .sketch import from_rgba
from .state import EditConfig, EditState, sample_z
from .tasks import Source, TaskSet

TWO_STAGE = "two-stage"
SOURCE = "source"  # the unedited image, as a reference row
REAL = "real (held-out)"  # held-out real images, as a reference row


def latent_name(steps: int) -> str:
    return f"latent-{steps}"


@dataclass(frozen=True)
class CompareConfig:
    latent_steps: tuple[int, ...] = (1, 10, 50)  # one latent-editor run per step count
    optimizer: str = "adam"                      # latent editor's optimiser ("gd": the report's web app)
    lr: float | None = None                      # latent step size (None: 0.05 for adam, 2.0 for gd)
    anchor: float = 0.0                          # latent editor's pull toward the starting z
    two_stage: bool = True                       # run the two-stage editor (when the bundle has G2)
    project_steps: int = 200                     # Adam steps projecting a real photo into (z, c)
    project_lr: float = 0.05                     # their step size (on z~ = atanh z, c~ = logit c)
    project_candidates: int = 16                 # random starts tried; the best reconstruction is optimised
    dilate: int = 5                              # k: keep metrics leave out the mask dilated by k x k (odd)
    edge_tol: int = 1                            # px within which a result edge matches a sketch line
    edge_window: int | None = None               # precision counts edges this near a line (None: max(2, R/16) px)
    edge_method: str = "canny"                   # edge detector for results ("canny" or "xdog")
    de_threshold: float = M.DE_THRESHOLD         # CIEDE2000 under which a stroke pixel has its colour
    kid_subsets: int = 100                       # KID: random subsets averaged
    kid_subset_size: int = 1000                  # KID: rows per subset (at most the smaller set)
    boot: int = 2000                             # bootstrap resamples for the 95% intervals
    grid_tasks: int = 8                          # tasks shown in grid.png
    grid_chains: int = 2                         # chains shown in stability_grid.png
    seed: int = 0                                # projection starts, bootstrap, KID subsets

    def __post_init__(self):
        if any(s < 0 for s in self.latent_steps) or len(set(self.latent_steps)) != len(self.latent_steps):
            raise ValueError("latent_steps must be distinct non-negative step counts")
        EditConfig(optimizer=self.optimizer, lr=self.lr)  # validates optimizer and lr
        if self.dilate < 1 or self.dilate % 2 == 0:
            raise ValueError("dilate must be a positive odd number")
        if self.project_steps < 0 or self.project_candidates < 1 or self.edge_tol < 0:
            raise ValueError("need project_steps >= 0, project_candidates >= 1, edge_tol >= 0")
        if self.edge_method not in ("canny", "xdog"):
            raise ValueError("edge_method must be canny or xdog")

    def methods(self, two_stage: bool) -> list[str]:
        return [latent_name(s) for s in self.latent_steps] + ([TWO_STAGE] if two_stage else [])


# ---- projection ----------------------------------------------------------------------------------
def project(G, image: np.ndarray, steps: int = 200, *, rng: np.random.Generator | None = None,
            c0: np.ndarray | None = None, schema=None, lr: float = 0.05,
            candidates: int = 16) -> tuple[EditState, np.ndarray, np.ndarray]:
    """Project real images into G's latent space (iGAN-style): the best of `candidates` random
    z (c: `c0` [N, c_dim] when the labels are known, else sampled from `schema`), then `steps`
    Adam steps on (z~, c~) minimising the mean squared error.

    image [N, 3, R, R] in [-1, 1] -> (state with N rows, reconstruction [N, 3, R, R], MSE [N]).
    Images are projected independently (a batch changes nothing but speed).
    """
    x = torch.as_tensor(np.asarray(image, np.float32))
    assert x.dim() == 4 and x.shape[1:] == (3, G.resolution, G.resolution), \
        f"image must be [N, 3, {G.resolution}, {G.resolution}], got {tuple(x.shape)}"
    n, z_dim, c_dim = len(x), G.z_dim, G.c_dim
    rng = np.random.default_rng(0) if rng is None else rng
    zs = sample_z(candidates, z_dim, rng)
    if c0 is None:
        cs = (schema.sample(candidates, rng) if (schema is not None and c_dim)
              else np.full((candidates, c_dim), 0.5, np.float32))
        cs = np.broadcast_to(cs, (n, candidates, c_dim))
    else:
        cs = np.repeat(np.asarray(c0, np.float32)[:, None], candidates, 1)
    z0, c_start = np.empty((n, z_dim), np.float32), np.empty((n, c_dim), np.float32)
    with torch.no_grad():
        for i in range(n):
            rec = G(torch.from_numpy(zs), torch.from_numpy(np.array(cs[i], np.float32)))
            k = int(((rec - x[i:i + 1]) ** 2).flatten(1).mean(1).argmin())
            z0[i], c_start[i] = zs[k], cs[i, k]
    start = EditState(z0, c_start)
    z_t = torch.from_numpy(start.z_tilde()).requires_grad_(True)
    c_t = torch.from_numpy(start.c_tilde()).requires_grad_(True)
    opt = torch.optim.Adam([z_t, c_t] if c_dim else [z_t], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            rec = G(torch.tanh(z_t), torch.sigmoid(c_t))
            loss = ((rec - x) ** 2).flatten(1).mean(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
    state = EditState.from_tilde(z_t.detach().numpy(), c_t.detach().numpy())
    with torch.no_grad():
        rec = G(torch.from_numpy(state.z), torch.from_numpy(state.c))
        mse = ((rec - x) ** 2).flatten(1).mean(1)
    return state, rec.numpy(), mse.numpy()


# ---- sources, sketches, editors ---------------------------------------------------------------------
@dataclass
class Prepared:
    """Everything the editors start from, for a list of sources."""
    before: np.ndarray        # [N, 3, R, R] the image before the edit (G1's sample or the photo)
    starts: list[EditState]   # the latent editor's start (the sample's state or the projection)
    start_images: np.ndarray  # [N, 3, R, R] G1(start): the latent editor's image before the edit
    start_l1: np.ndarray      # [N] mean |G1(start) - before| (the projection's error; 0 for samples)
    project_ms: float         # projection time per real image (batched), nan without real sources
    projections: list[dict]   # per real source: file, state, mse


def prepare_sources(G1, sources: list[Source], cfg: CompareConfig, schema) -> Prepared:
    r = G1.resolution
    before = np.zeros((len(sources), 3, r, r), np.float32)
    starts: list[EditState | None] = [None] * len(sources)
    samples = [i for i, s in enumerate(sources) if s.kind == "sample"]
    reals = [i for i, s in enumerate(sources) if s.kind == "real"]
    if samples:
        z = np.concatenate([sources[i].state.z for i in samples])
        c = np.concatenate([sources[i].state.c for i in samples])
        with torch.no_grad():
            before[samples] = G1(torch.from_numpy(z), torch.from_numpy(c)).numpy()
        for i in samples:
            starts[i] = EditState(sources[i].state.z, sources[i].state.c)
    start_l1 = np.zeros(len(sources), np.float32)
    start_images = before.copy()
    projections, project_ms = [], float("nan")
    if reals:
        imgs = np.stack([to_unit_range(sources[i].image) for i in reals])
        before[reals] = imgs
        known = [sources[i].c for i in reals]
        c0 = np.stack(known) if G1.c_dim and all(k is not None for k in known) else None
        t = time.perf_counter()
        st, rec, mse = project(G1, imgs, cfg.project_steps, rng=np.random.default_rng([cfg.seed, 7]), c0=c0,
                               schema=schema, lr=cfg.project_lr, candidates=cfg.project_candidates)
        project_ms = 1e3 * (time.perf_counter() - t) / len(reals)
        for j, i in enumerate(reals):
            starts[i] = st.row(j)
            start_images[i] = rec[j]
            start_l1[i] = float(np.abs(rec[j] - imgs[j]).mean())
            projections.append({"file": sources[i].file, "mse": float(mse[j]), "l1": float(start_l1[i]),
                                "state": st.row(j).to_dict()})
    return Prepared(before, starts, start_images, start_l1, project_ms, projections)


def sketch_arrays(rgba: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """RGBA uint8 [R, R, 4] -> (sketch [3, R, R], mask [1, R, R])."""
    return from_rgba(rgba, r)


def cumulative(layers: list[np.ndarray]) -> list[np.ndarray]:
    """Stroke layers RGBA [R, R, 4] -> the sketch after each (later strokes over earlier ones)."""
    out, acc = [], np.zeros_like(layers[0])
    for layer in layers:
        acc = acc.copy()
        on = layer[..., 3] > 0
        acc[on] = layer[on]
        out.append(acc)
    return out


class Editors:
    """The editors under comparison, each called on one image and timed."""

    def __init__(self, bundle, cfg: CompareConfig):
        self.G1 = bundle_mod.load_module(bundle, "g1")
        self.latent = LatentEditor(self.G1, bundle.schema)
        self.G2 = bundle_mod.load_module(bundle, "g2") if (cfg.two_stage and bundle.has_g2) else None
        self.D = bundle_mod.load_module(bundle, "d") if "d" in bundle.meta else None
        self.cfg = cfg

    @property
    def methods(self) -> list[str]:
        return self.cfg.methods(self.G2 is not None)

    def edit(self, method: str, state: EditState | None, image: np.ndarray, from_state: bool,
             sketch: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, EditState | None, float]:
        """One edit -> (result [3, R, R], the latent editor's new state or None, milliseconds).

        The latent editor starts from `state`; the two-stage editor from G1(state) when
        `from_state` (G1 runs inside the timed call, as when serving a sample), else from
        `image` [3, R, R]. sketch [3, R, R], mask [1, R, R].
        """
        t = time.perf_counter()
        if method == TWO_STAGE:
            with torch.no_grad():
                i1 = (self.G1(torch.from_numpy(state.z), torch.from_numpy(state.c)) if from_state
                      else torch.from_numpy(np.ascontiguousarray(image[None], np.float32)))
                out = self.G2(i1, torch.from_numpy(sketch[None]), torch.from_numpy(mask[None]))[0].numpy()
            return out, None, 1e3 * (time.perf_counter() - t)
        steps = int(method.split("-")[1])
        ec = EditConfig(optimizer=self.cfg.optimizer, lr=self.cfg.lr, steps=steps, anchor=self.cfg.anchor)
        r = self.latent.edit(state, sketch[None], mask[None], ec)
        ms = 1e3 * (time.perf_counter() - t)
        return r.image[0], EditState(r.state.z, r.state.c), ms

    def discriminate(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """D on images [N, 3, R, R] -> (score sigmoid(logit) [N], c_logits [N, c_dim]); nan without D."""
        if self.D is None:
            return np.full(len(images), np.nan), np.full((len(images), self.G1.c_dim), np.nan)
        scores, cls = [], []
        with torch.no_grad():
            for i in range(0, len(images), chunk):
                logit, c_logits = self.D(torch.from_numpy(np.ascontiguousarray(images[i:i + chunk], np.float32)))
                scores.append(torch.sigmoid(logit).numpy())
                cls.append(c_logits.numpy())
        return np.concatenate(scores), np.concatenate(cls)


# ---- scoring ---------------------------------------------------------------------------------------------
def edit_metrics(result: np.ndarray, before: np.ndarray, sketch: np.ndarray, mask: np.ndarray, kind: str,
                 cfg: CompareConfig) -> dict:
    """Following the strokes and keeping the rest for one result [3, R, R] (see neuedit.metrics)."""
    nan = float("nan")
    row = {"dist": M.stroke_dist(result, sketch, mask), "de00": nan, "de_under": nan,
           "edge_p": nan, "edge_r": nan, "edge_f1": nan}
    if kind == "colour":
        row["de00"], row["de_under"] = M.delta_e(result, sketch, mask, cfg.de_threshold)
    else:
        r = result.shape[-1]
        window = cfg.edge_window if cfg.edge_window is not None else max(2, r // 16)
        row["edge_p"], row["edge_r"], row["edge_f1"] = M.edge_f1(M.result_edges(result, cfg.edge_method),
                                                                 mask[0] > 0.5, cfg.edge_tol, window)
    row.update(M.keep_metrics(result, before, mask, cfg.dilate))
    return row


def realism_columns(rows: list[dict], images: np.ndarray, targets: list, editors: Editors, schema) -> None:
    """Add d_score and attr_agree to rows (one per image [N, 3, R, R]); targets: known c or None."""
    score, c_logits = editors.discriminate(images)
    for row, s, cl, c in zip(rows, score, c_logits, targets):
        row["d_score"] = float(s)
        row["attr_agree"] = (M.attribute_agreement(cl, c, schema)
                             if (c is not None and schema.c_dim and np.isfinite(cl).all()) else float("nan"))


def kid_of(images: np.ndarray, real_features: np.ndarray, cfg: CompareConfig) -> tuple[float, float]:
    """KID (mean, std over subsets) of images [N, 3, R, R] against real features."""
    f = M.image_features(np.stack([M.to_uint8(x) for x in images])) if len(images) else np.zeros((0, 1))
    return M.kid(f, real_features, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)


# ---- the runs -------------------------------------------------------------------------------------------
def _bar(total: int, progress: bool, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="edit", disable=not progress, leave=False)


def run_tasks(ts: TaskSet, editors: Editors, prep: Prepared, bar) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Every method on every task -> (rows, {method: results [T, 3, R, R]}); `source` rows hold the
    unedited image as a reference."""
    r, cfg = ts.resolution, editors.cfg
    rows, images = [], {m: [] for m in [SOURCE] + editors.methods}
    arrays = [sketch_arrays(t.stroke.rgba, r) for t in ts.tasks]
    if ts.tasks:  # untimed warm-up of every method (first calls allocate)
        for m in editors.methods:
            editors.edit(m, prep.starts[0], prep.before[0], ts.tasks[0].source.kind == "sample", *arrays[0])
    for i, task in enumerate(ts.tasks):
        sk, mk = arrays[i]
        base = {"task": task.id, "source": task.source.kind, "stroke": task.stroke.kind,
                "sketch_from": task.stroke.origin.split(":")[0], "stroke_px": int(mk.sum())}
        rows.append({**base, "method": SOURCE, "ms": 0.0, "start_l1": 0.0,
                     **edit_metrics(prep.before[i], prep.before[i], sk, mk, task.stroke.kind, cfg)})
        images[SOURCE].append(prep.before[i])
        for m in editors.methods:
            out, _, ms = editors.edit(m, prep.starts[i], prep.before[i], task.source.kind == "sample", sk, mk)
            start_l1 = 0.0 if m == TWO_STAGE else float(prep.start_l1[i])
            rows.append({**base, "method": m, "ms": ms, "start_l1": start_l1,
                         **edit_metrics(out, prep.before[i], sk, mk, task.stroke.kind, cfg)})
            images[m].append(out)
            bar.update(1)
    return rows, {m: np.stack(v) if v else np.zeros((0, 3, r, r), np.float32) for m, v in images.items()}


def run_chains(ts: TaskSet, editors: Editors, prep: Prepared, offset: int, bar) -> tuple[list[dict], dict]:
    """K successive edits per chain and method -> (rows, {method: images [C, K + 1, 3, R, R]}).

    Round k gives the editor the previous result (the latent editor: its state, Adam moments
    reset) and all strokes so far; scored on the new strokes (dist_new), on earlier strokes not
    painted over (dist_earlier), and outside the dilated union of all strokes against the
    image before the first edit (the untouched pixels)."""
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


# ---- aggregation ---------------------------------------------------------------------------------------------
TASK_METRICS = [  # (column, label, higher is better)
    ("dist", "Dist", False), ("de00", "ΔE00", False), ("de_under", "ΔE<10", True), ("edge_f1", "edge F1", True),
    ("l1_out", "L1 out", False), ("psnr_out", "PSNR out", True), ("ssim_out", "SSIM out", True),
    ("d_score", "D score", True), ("attr_agree", "attr. agree", True), ("ms", "ms/edit", False),
]
CHAIN_METRICS = [("dist_new", "Dist new", False), ("dist_earlier", "Dist earlier", False),
                 ("l1_untouched", "L1 untouched", False), ("psnr_untouched", "PSNR untouched", True),
                 ("d_score", "D score", True)]


def aggregate(rows: list[dict], methods: list[str], columns: list[str], cfg: CompareConfig,
              key: str = "method") -> dict:
    """{method: {column: (mean, lo, hi, n)}} with percentile-bootstrap 95% intervals."""
    return {m: {c: M.mean_ci([r.get(c, np.nan) for r in rows if r[key] == m], n_boot=cfg.boot, seed=cfg.seed)
                for c in columns}
            for m in methods}


def paired(rows: list[dict], methods: list[str], columns: list[str], cfg: CompareConfig) -> dict:
    """Per task, method minus two-stage -> {method: {column: (mean, lo, hi, n)}}."""
    by = {(r["task"], r["method"]): r for r in rows}
    tasks = sorted({r["task"] for r in rows})
    out = {}
    for m in methods:
        if m == TWO_STAGE:
            continue
        out[m] = {}
        for c in columns:
            d = [by[t, m][c] - by[t, TWO_STAGE][c] for t in tasks if (t, m) in by and (t, TWO_STAGE) in by]
            d = [x for x in d if np.isfinite(x)]
            out[m][c] = M.mean_ci(d, n_boot=cfg.boot, seed=cfg.seed)
    return out


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "inf"
    a = abs(x)
    return f"{x:.{digits}g}" if (a >= 1e-3 or a == 0) and a < 1e4 else f"{x:.2e}"


def _cell(s: tuple) -> str:
    mean, lo, hi, n = s
    if n == 0:
        return "–"
    return _fmt(mean) if n < 2 else f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]"


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    cols = list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(v) for k, v in r.items()})


def _csv_value(v):
    """Floats with 6 significant digits, nan as an empty cell (not applicable), inf as 'inf'."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


# ---- pictures ---------------------------------------------------------------------------------------------
def strokes_over(before: np.ndarray, sketch: np.ndarray, mask: np.ndarray, fade: float = 0.65) -> np.ndarray:
    """The strokes painted over a faded copy of the image, [3, R, R] in [-1, 1]."""
    faded = before * (1 - fade) + fade
    return faded * (1 - mask) + sketch * mask


def labelled_grid(tiles: list[list[np.ndarray]], labels: list[str], scale: int, row_labels: list[str] | None = None,
                  pad: int = 2) -> Image.Image:
    """Rows of tiles [3, R, R] in [-1, 1] under a header of column labels (and beside row labels) -> PIL image."""
    r = tiles[0][0].shape[-1] * scale
    cols = max(len(row) for row in tiles)
    head = 14
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = (max(probe.textlength(t) for t in row_labels) + 6) if row_labels else 0
    left = int(math.ceil(left))
    img = Image.new("RGB", (left + pad + cols * (r + pad), head + pad + len(tiles) * (r + pad)), "white")
    draw = ImageDraw.Draw(img)
    for j, text in enumerate(labels[:cols]):
        draw.text((left + pad + j * (r + pad) + 1, 1), text, fill=(0, 0, 0))
    for i, row in enumerate(tiles):
        y = head + pad + i * (r + pad)
        if row_labels:
            draw.text((2, y + r // 2 - 6), row_labels[i], fill=(0, 0, 0))
        for j, t in enumerate(row):
            tile = Image.fromarray(M.to_uint8(t)).resize((r, r), Image.NEAREST)
            img.paste(tile, (left + pad + j * (r + pad), y))
    return img


def grid_scale(r: int) -> int:
    return max(1, 128 // r)


def write_task_grid(path: Path, ts: TaskSet, prep: Prepared, images: dict, methods: list[str], n: int) -> None:
    """Per task: original | strokes over it | the latent editor's start (a photo's projection) | each method."""
    if not ts.tasks or n <= 0:
        return
    r = ts.resolution
    tiles = []
    for i in range(min(n, len(ts.tasks))):
        sk, mk = sketch_arrays(ts.tasks[i].stroke.rgba, r)
        tiles.append([prep.before[i], strokes_over(prep.before[i], sk, mk), prep.start_images[i]]
                     + [images[m][i] for m in methods])
    rows = [f"{t.id} {t.source.kind}/{t.stroke.kind}" for t in ts.tasks[:len(tiles)]]
    labelled_grid(tiles, ["original", "strokes", "latent start"] + methods, grid_scale(r), rows).save(path)


def write_chain_grid(path: Path, ts: TaskSet, before: np.ndarray, chain_images: dict, methods: list[str],
                     n: int) -> None:
    """Per chain: a row of the strokes so far at each round, then one row per method (before: the
    latent editor's start, a photo's projection; then rounds 1..K)."""
    if not ts.chains or n <= 0 or not chain_images:
        return
    r = ts.resolution
    tiles, rows = [], []
    for j in range(min(n, len(ts.chains))):
        layers = cumulative([s.rgba for s in ts.chains[j].rounds])
        tiles.append([before[j]] + [strokes_over(before[j], *sketch_arrays(c, r)) for c in layers])
        tiles += [list(chain_images[m][j]) for m in methods]
        rows += [f"{ts.chains[j].id} strokes"] + methods
    labels = ["before"] + [f"round {k + 1}" for k in range(len(ts.chains[0].rounds))]
    labelled_grid(tiles, labels, grid_scale(r), rows).save(path)


def write_stability_plot(path: Path, stab: dict, methods: list[str], rounds: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(CHAIN_METRICS), figsize=(3.2 * len(CHAIN_METRICS), 3), constrained_layout=True)
    ks = np.arange(1, rounds + 1)
    for ax, (col, label, better_high) in zip(axes, CHAIN_METRICS):
        for m in methods:
            s = [stab[m][k][col] for k in ks]
            mean = np.array([x[0] for x in s])
            lo, hi = np.array([x[1] for x in s]), np.array([x[2] for x in s])
            ax.plot(ks, mean, marker="o", label=m)
            ax.fill_between(ks, lo, hi, alpha=0.15)
        ax.set_title(f"{label} ({'higher' if better_high else 'lower'} is better)", fontsize=9)
        ax.set_xlabel("round")
        ax.set_xticks(ks)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the report -------------------------------------------------------------------------------------------------
METRIC_NOTES = """\
## Metrics

- **Dist**: the report's Dist(I, I') on stroke pixels: mean L1 per stroke pixel and channel, in [-1, 1] units.
- **ΔE00**, **ΔE<10** (colour strokes): CIEDE2000 (scikit-image `rgb2lab` + `deltaE_ciede2000`, sRGB/D65) between the
  result and the stroke colour on stroke pixels: the mean, and the share of stroke pixels under 10.
- **edge F1** (edge strokes): F1 of the sketch's 1-px lines against the result's edge map (`neuedit.strokes.edge_map`,
  {edge_method}), a match within {edge_tol} px; precision counts only result edges within {window} px of a sketch line.
- **L1/PSNR/SSIM out**: the raw result (no paste-back) against the image before the edit (the photo, or G1's sample)
  outside the stroke mask dilated by {dilate}x{dilate}; L1 in [-1, 1] units; PSNR and SSIM (7x7 window) on [0, 1] RGB;
  an inf PSNR counts as {psnr_cap:g} dB in means. On photos the latent editor also pays for its projection (`start_l1`
  in results.csv is that projection's mean L1 error).
- **KID**: unbiased MMD² with the cubic polynomial kernel, mean ± std over {kid_subsets} random subsets, between the
  results and {n_real} held-out real images, on the project's fixed handcrafted descriptor (Lab colour moments on a
  2x2 grid, Lab histograms, HOG, uniform LBP; 454-d, at 64x64) — not Inception: it sees colour statistics, gradient
  layout and texture, not semantics; compare values only within this run. Row `real (held-out)`: D score of the held-out
  images, KID between two halves of them (the noise floor); `source`: the unedited images.
- **D score**: mean sigmoid of the stage-one discriminator's real/fake logit. **attr. agree**: share of known attributes
  (the sample's c; a photo's labels) on which D's ACGAN head agrees (exclusive group: its largest logit is the labelled
  attribute); strokes may legitimately change an attribute (a hair colour), so read it as consistency, not accuracy.
- **ms/edit**: wall time of one edit at batch 1 on this machine ({threads} torch threads); the latent editor's includes
  its final render, the two-stage editor's includes G1 for samples; projection of a photo is extra ({project_ms}).
- Intervals: 95% percentile bootstrap over tasks ({boot} resamples). Paired differences are per task, method minus
  two-stage.
- Stability: each chain applies K successive edits, one new stroke each; every edit gets the previous result and all
  strokes so far (as the web client sends them). Dist new: on the new stroke; Dist earlier: on earlier strokes not
  painted over; untouched: outside the dilated union of all strokes, against the image before the first edit.
"""


def summary_markdown(info: dict, stats: dict, kids: dict, diffs: dict, stab: dict, methods: list[str],
                     rounds: int, cfg: CompareConfig, by_kind: dict) -> str:
    ref = [SOURCE] + methods
    out = [f"# One-stage vs two-stage editing: {info['bundle']}", "",
           f"{info['n_tasks']} tasks ({info['task_mix']}), {info['n_chains']} chains of {rounds} edits, "
           f"task set `{info['tasks']}` (sha256 {info['tasks_digest'][:12]}), latent editor: {cfg.optimizer}"
           f"{'' if cfg.lr is None else f' lr {cfg.lr}'}{'' if not cfg.anchor else f' anchor {cfg.anchor}'}. "
           "Mean [95% bootstrap interval]; `source` is the unedited image.", ""]

    def table(title, cols, rows_, extra=None):
        header = ["method"] + [f"{lab} {'↑' if hi else '↓'}" for c, lab, hi in cols] + (extra[0] if extra else [])
        body = []
        for m in rows_:
            body.append([m] + [_cell(stats[m][c]) if m in stats else "–" for c, _, _ in cols]
                        + (extra[1](m) if extra else []))
        out.extend([f"## {title}", "", md_table(header, body), ""])

    cols = {c: (c, lab, hi) for c, lab, hi in TASK_METRICS}
    table("Following the strokes", [cols[c] for c in ("dist", "de00", "de_under", "edge_f1")], ref)
    table("Keeping the rest", [cols[c] for c in ("l1_out", "psnr_out", "ssim_out")], ref)
    kid_rows = ref + [REAL]
    table("Realism", [cols[c] for c in ("d_score", "attr_agree")], kid_rows,
          (["KID ↓ (± std)"], lambda m: [f"{_fmt(kids[m][0])} ± {_fmt(kids[m][1])}" if m in kids else "–"]))
    medians = info["median_ms"]
    table("Cost", [cols["ms"]], methods, (["median ms"], lambda m: [_fmt(medians.get(m, float("nan")))]))
    if diffs:
        header = ["method − two-stage"] + [lab for c, lab, _ in TASK_METRICS if c != "ms"]
        body = [[m] + [_cell(diffs[m][c]) + (" *" if _excludes_zero(diffs[m][c]) else "") for c, _, _ in TASK_METRICS
                       if c != "ms"] for m in diffs]
        out.extend(["## Paired differences against two-stage", "",
                    "Per task, method minus two-stage; * where the 95% interval excludes 0.", "",
                    md_table(header, body), ""])
    if by_kind:
        keys = ("dist", "de00", "edge_f1", "l1_out", "d_score")
        header = ["source", "stroke", "method", "n"] + [cols[c][1] for c in keys]
        body = []
        for (src, stroke), st in by_kind.items():
            for m in ref:
                body.append([src, stroke, m, str(st[m]["dist"][3])] + [_cell(st[m][c]) for c in keys])
        out.extend(["## By source and stroke kind", "", md_table(header, body), ""])
    if stab:
        header = ["method", "round"] + [f"{lab} {'↑' if hi else '↓'}" for _, lab, hi in CHAIN_METRICS] + ["KID ↓"]
        body = [[m, str(k)] + [_cell(stab[m][k][c]) for c, _, _ in CHAIN_METRICS]
                + [_fmt(info["chain_kid"][m][k - 1][0])] for m in methods for k in range(1, rounds + 1)]
        out.extend(["## Stability over successive edits", "",
                    f"{info['n_chains']} chains; KID per round is over only {info['n_chains']} images (noisy).", "",
                    md_table(header, body), "", "![stability](stability.png)", "",
                    "![stability grid](stability_grid.png)", ""])
    out.extend(["## Examples", "", "![grid](grid.png)", "",
                "Columns: original | strokes over the faded original | the latent editor's start (a photo's "
                "projection; the sample itself otherwise) | " + " | ".join(methods) + ".", ""])
    window = cfg.edge_window if cfg.edge_window is not None else max(2, info["resolution"] // 16)
    out.append(METRIC_NOTES.format(edge_method=cfg.edge_method, edge_tol=cfg.edge_tol, window=window,
                                   dilate=cfg.dilate, psnr_cap=M.PSNR_CAP, kid_subsets=cfg.kid_subsets,
                                   n_real=info["n_real"], threads=info["threads"], boot=cfg.boot,
                                   project_ms=(f"{_fmt(info['project_ms'])} ms per photo, batched, "
                                               f"{cfg.project_steps} Adam steps")
                                   if np.isfinite(info["project_ms"]) else "no photos here"))
    return "\n".join(out)


def _excludes_zero(s: tuple) -> bool:
    _, lo, hi, n = s
    return n >= 2 and np.isfinite(lo) and (lo > 0 or hi < 0)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


# ---- the whole comparison -----------------------------------------------------------------------------------------
@dataclass
class Realism:
    kid: dict             # {method: (mean, std)}, plus SOURCE and REAL (two halves of the held-out images)
    real_rows: list       # one row per held-out image with its d_score
    chain_kid: dict       # {method: [(mean, std) per round]}


def score_realism(ts: TaskSet, editors: Editors, rows: list[dict], images: dict, chain_rows: list[dict],
                  chain_images: dict, real: np.ndarray, schema, cfg: CompareConfig) -> Realism:
    """Adds d_score and attr_agree to task rows and d_score to chain rows; KIDs against `real` uint8 [M, H, W, 3]."""
    r = ts.resolution
    real_f = M.image_features(real) if len(real) else np.zeros((0, 454))
    targets = {t.id: t.source.c for t in ts.tasks}
    kids = {}
    for m in [SOURCE] + editors.methods:
        rs = [row for row in rows if row["method"] == m]
        realism_columns(rs, images[m], [targets[row["task"]] for row in rs], editors, schema)
        kids[m] = kid_of(images[m], real_f, cfg)
    half = len(real_f) // 2
    kids[REAL] = M.kid(real_f[:half], real_f[half:], cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
    real_rows = [{"method": REAL} for _ in range(len(real))]
    if len(real):
        realism_columns(real_rows, to_unit_range(np.stack([_resize(x, r) for x in real])), [None] * len(real),
                        editors, schema)
    chain_kid = {}
    for m, ims in chain_images.items():  # ims [C, K + 1, 3, R, R]; rows are chain-major, then round
        score, _ = editors.discriminate(ims[:, 1:].reshape(-1, 3, r, r))
        for row, sc in zip([row for row in chain_rows if row["method"] == m], score):
            row["d_score"] = float(sc)
        chain_kid[m] = [kid_of(ims[:, k], real_f, cfg) for k in range(1, ims.shape[1])]
    return Realism(kids, real_rows, chain_kid)


def statistics(ts: TaskSet, methods: list[str], rows: list[dict], chain_rows: list[dict], real_rows: list[dict],
               cfg: CompareConfig) -> dict:
    """Means with intervals: per method, paired against two-stage, by task kind, per stability round."""
    cols = [c for c, _, _ in TASK_METRICS]
    stats = aggregate(rows, [SOURCE] + methods, cols, cfg)
    stats[REAL] = aggregate(real_rows, [REAL], cols, cfg)[REAL]
    diffs = paired(rows, methods, [c for c in cols if c != "ms"], cfg) if TWO_STAGE in methods else {}
    by_kind = {}
    for key in sorted({(t.source.kind, t.stroke.kind) for t in ts.tasks}):
        sub = [row for row in rows if (row["source"], row["stroke"]) == key]
        by_kind[key] = aggregate(sub, [SOURCE] + methods, cols, cfg)
    rounds = sorted({row["round"] for row in chain_rows})
    stab = {m: {k: {c: M.mean_ci([row[c] for row in chain_rows if row["method"] == m and row["round"] == k],
                                 n_boot=cfg.boot, seed=cfg.seed) for c, _, _ in CHAIN_METRICS}
                for k in rounds} for m in methods} if chain_rows else {}
    return {"stats": stats, "diffs": diffs, "by_kind": by_kind, "stab": stab}


def run_info(b, ts: TaskSet, tasks_dir, methods: list[str], rows: list[dict], n_real: int, prep: Prepared,
             realism: Realism) -> dict:
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


def compare(bundle, ts: TaskSet, cfg: CompareConfig, out: str | Path, heldout: np.ndarray | None = None,
            progress: bool = True, log=print, tasks_dir: str | Path | None = None) -> dict:
    """Run every method on every task and chain of `ts`, write the report into `out`; returns the
    summary (as summary.json). `heldout` uint8 [M, H, W, 3]: real images for KID (default the set's)."""
    b = bundle_mod.read(bundle) if not isinstance(bundle, bundle_mod.Bundle) else bundle
    ts.check(b)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    editors = Editors(b, cfg)
    if cfg.two_stage and editors.G2 is None:
        log(f"bundle {b.name} has no stage-two generator: comparing the latent editor alone")
    methods = editors.methods
    sources = [t.source for t in ts.tasks] + [c.source for c in ts.chains]
    if any(s.kind == "real" for s in sources):
        log(f"projecting {sum(s.kind == 'real' for s in sources)} photos into the latent space "
            f"({cfg.project_steps} Adam steps)...")
    prep = prepare_sources(editors.G1, sources, cfg, b.schema)
    rounds = len(ts.chains[0].rounds) if ts.chains else 0
    total = (len(ts.tasks) + len(ts.chains) * rounds) * len(methods)
    with _bar(total, progress, f"compare {b.name}") as bar:
        rows, images = run_tasks(ts, editors, prep, bar)
        chain_rows, chain_images = run_chains(ts, editors, prep, len(ts.tasks), bar)
    real = ts.heldout if heldout is None else heldout
    realism = score_realism(ts, editors, rows, images, chain_rows, chain_images, real, b.schema, cfg)
    st = statistics(ts, methods, rows, chain_rows, realism.real_rows, cfg)
    info = run_info(b, ts, tasks_dir, methods, rows, len(real), prep, realism)

    write_csv(out / "results.csv", rows)
    write_csv(out / "stability.csv", chain_rows)
    (out / "projections.json").write_text(json.dumps(prep.projections, indent=1) + "\n")
    (out / "config.json").write_text(json.dumps(_jsonable({"compare": asdict(cfg), **{k: info[k] for k in (
        "bundle", "bundle_path", "tasks", "tasks_digest", "threads", "resolution")}}), indent=2) + "\n")
    write_task_grid(out / "grid.png", ts, prep, images, methods, cfg.grid_tasks)
    if chain_rows:
        write_chain_grid(out / "stability_grid.png", ts, prep.before[len(ts.tasks):], chain_images, methods,
                         cfg.grid_chains)
        write_stability_plot(out / "stability.png", st["stab"], methods, rounds)
    md = summary_markdown(info, st["stats"], realism.kid, st["diffs"], st["stab"], methods, rounds, cfg, st["by_kind"])
    (out / "summary.md").write_text(md + "\n")
    summary = _jsonable({"info": info, "methods": st["stats"], "kid": realism.kid, "paired_vs_two_stage": st["diffs"],
                         "by_kind": {f"{a}/{s}": v for (a, s), v in st["by_kind"].items()}, "stability": st["stab"]})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _resize(image: np.ndarray, r: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [r, r, 3] (bicubic), unchanged when already r x r."""
    if image.shape[:2] == (r, r):
        return image
    return np.asarray(Image.fromarray(image).resize((r, r), Image.BICUBIC))
