"""The semantic kind (`neuedit.compare.semantic`): did a colour stroke on the hair give that hair colour, on
the eyes that eye colour, on a shoe or bag that colour, and what was kept? Every editor (a function
of a task batch, timed per batch) on every batch, judged per task by `semantic.score`, with the
learned-feature KID of each editor's results (docs/comparison.md, "Edits that do what the strokes ask").

Writes results.csv (one row per task and editor), summary.md, summary.json (statistics per batch
and editor; `table`, the benchmark's table), semantic.json (that table), config.json and, per
batch, <name>-<kind>-<origin>.png (original | strokes | `figure` editors)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from neuedit.data.datasets import image_grid, to_uint8
from neuedit.runtime import editing
from neuedit.runtime.editor import Editor
from neuedit.runtime.state import EditConfig, sample_state
from neuedit.compare import semantic as S
from neuedit.compare.config import TWO_STAGE, pick
from neuedit.compare.harness import timed
from neuedit.compare.report import fmt, section, stat_table
from neuedit.compare.run import Kind, Report, run_config, run_info
from neuedit.compare.stats import aggregate

UNEDITED = "unedited"
IDEAL = "ideal G1(z, c')"  # a stage-one sample with the requested attribute: the answer of a perfect edit
IDEAL_OBJECT = "ideal recolour"  # the source's object moved to the stroke colour, shading kept (stage two's object pairs)
# (column, label, higher is better); success, others_kept as shares (the table prints them as %)
SEMANTIC_METRICS = [("success", "success", True), ("centre_ssim", "centre SSIM", True),
                    ("others_kept", "others kept", True), ("de_before", "ΔE before", False),
                    ("de_after", "ΔE after", False), ("edge_f1", "edge F1", True), ("ms", "ms/edit", False)]
SCORES = [c for c, _, _ in SEMANTIC_METRICS if c != "ms"]  # what `semantic.score` gives, per kind some
FACE_COLUMNS = ("success", "centre_ssim", "others_kept", "ms")
KIND_COLUMNS = {"object": ("success", "de_before", "de_after", "edge_f1", "ms"),
                "hair": FACE_COLUMNS, "eyes": FACE_COLUMNS}


@dataclass(frozen=True)
class SemanticConfig:
    kinds: tuple[str, ...] = ("hair", "eyes")   # task kinds (`semantic.KINDS`); eyes on samples only
    sources: tuple[str, ...] = ("sample", "real")
    n: int = 96                                # tasks per kind and source
    seed: int = 0                              # the tasks' draws and the bootstrap
    project_steps: int | None = None           # Adam steps projecting a photo for the latent editors (None:
    #                                            the projection's default: none after an encoder, else 100)
    latent_real: bool = False                  # the latent editors on photos too (slow)
    name: str = "semantic"                     # figure files: <name>-<kind>-<origin>.png
    figure: tuple[str, ...] = ("latent default, 30 steps", TWO_STAGE)  # editors shown in the figures
    figure_tasks: int = 8                      # tasks (rows) per figure
    boot: int = 2000                           # bootstrap resamples for the 95% intervals


def semantic_tasks(cfg: SemanticConfig, editor: Editor, photos: np.ndarray, palettes: dict) -> list[S.Tasks]:
    """One batch of cfg.n tasks per kind and source (eyes: samples only), drawn in that order from
    `np.random.default_rng(cfg.seed)`. photos [>= n, 3, R, R]: the real sources; palettes: {"hair",
    "eyes"} colour -> RGB (anime kinds)."""
    rng, out = np.random.default_rng(cfg.seed), []
    for kind in cfg.kinds:
        for origin in cfg.sources:
            if kind == "object":
                st = sample_state(cfg.n, editor.z_dim, editor.schema, rng) if origin == "sample" else None
                out.append(S.object_tasks(origin, cfg.n, editor.generate(st.z, st.c) if st else photos, rng, st))
            elif not (kind == "eyes" and origin == "real"):
                out.append(S.anime_tasks(kind, origin, cfg.n, editor.generate, editor.z_dim, editor.schema,
                                         palettes["hair"], rng, photos=photos, eye_palette=palettes["eyes"]))
    return out


def semantic_editors(editor: Editor, variants: dict[str, tuple[EditConfig, tuple[int, ...]]],
                     project_steps: int | None = None) -> dict[str, Callable[[S.Tasks], np.ndarray]]:
    """name -> fn(task batch) -> results [N, 3, R, R]: the source unedited, the two-stage editor alone
    and pasted back (ΔE 25), and the latent editor per variant {name: (settings, step counts)} and
    step count, a photo projected first."""
    out = {UNEDITED: lambda t: t.source}
    if TWO_STAGE in editor.methods:
        out[TWO_STAGE] = lambda t: editor.two_stage(t.source, t.sketch, t.mask)
        out[f"{TWO_STAGE}, paste 25"] = lambda t: editing.paste(t.source, editor.two_stage(t.source, t.sketch, t.mask),
                                                                t.mask, 25.0)

    def latent(cfg: EditConfig, steps: int):
        def edit(t: S.Tasks) -> np.ndarray:
            if t.state is None:  # a photo: projected, edited, the change carried onto the photo
                return editor.latent_photo(t.source, t.sketch, t.mask, cfg, steps=steps, project_steps=project_steps).image
            return editor.latent(t.state, t.sketch, t.mask, cfg, steps=steps).image
        return edit
    for v, (cfg, steps) in variants.items():
        for s in steps:
            out[f"latent {v}, {s} steps"] = latent(cfg, s)
    return out


class Semantic(Kind):
    """Every editor on every task batch; `judge(images) -> logits [N, C]` and `features(images) -> [N, F]`
    are the evaluation classifier's, `reference` [M, 3, R, R] held-out photos that are no source."""

    def __init__(self, bundle, editor: Editor, batches: list[S.Tasks], editors: dict, judge, features,
                 reference: np.ndarray, cfg: SemanticConfig):
        self.b, self.editor, self.editors, self.cfg = bundle, editor, editors, cfg
        self.judge, self.features = judge, features
        self.f_ref = features(reference)
        self.n_real = len(reference)
        self.plan = [(t, self._names(t)) for t in batches]
        self.title = f"semantic {bundle.name}"

    def _names(self, t: S.Tasks) -> list[str]:
        names = [n for n in self.editors if t.origin != "real" or not n.startswith("latent") or self.cfg.latent_real]
        if t.kind == "object":
            return names[:1] + [IDEAL_OBJECT] + names[1:]
        return names[:1] + [IDEAL] + names[1:] if t.state is not None else names

    def _ideal(self, t: S.Tasks) -> np.ndarray:
        if t.kind == "object":
            return S.ideal_recolour(t)
        if t.kind == "eyes":
            return t.extra["ideal"]
        return self.editor.generate(t.state.z, S.with_group(t.state.c, self.editor.schema, "hair_colour", t.target))

    def edits(self) -> int:
        return sum(len(t) * len(names) for t, names in self.plan)

    def edit(self, bar) -> tuple[list[dict], dict]:
        """-> (one row per task and editor, {(batch label, editor): results [N, 3, R, R]})."""
        rows, results = [], {}
        for t, names in self.plan:
            for name in names:
                edited, ms = timed(self._ideal if name in (IDEAL, IDEAL_OBJECT) else self.editors[name], t)
                edited, ms = np.asarray(edited, np.float32), ms / max(len(t), 1)  # the batch's time per task
                scores = S.score(t, edited, self.judge, self.editor.schema)
                rows += [{"task": label(t), "index": i, "method": name,  # every column, nan where the kind has none
                          **{c: float(scores[c][i]) if c in scores else float("nan") for c in SCORES}, "ms": ms}
                         for i in range(len(t))]
                results[label(t), name] = edited
                bar.update(len(t))
        return rows, results

    def report(self, edited: tuple) -> Report:
        rows, results = edited
        cfg, cols = self.cfg, [c for c, _, _ in SEMANTIC_METRICS]
        stats = {label(t): aggregate([r for r in rows if r["task"] == label(t)], names, cols, cfg)
                 for t, names in self.plan}
        kid = {label(t): {n: S.learned_kid(self.features, results[label(t), n], self.f_ref) for n in names}
               for t, names in self.plan}
        kid_source = {label(t): S.learned_kid(self.features, t.source, self.f_ref) for t, _ in self.plan}
        table = [self._row(t, n, stats[label(t)][n], kid[label(t)][n], kid_source[label(t)])
                 for t, names in self.plan for n in names]
        methods = list(dict.fromkeys(n for _, names in self.plan for n in names))
        info = run_info(self.b, None, (), rows, methods, n_tasks=sum(len(t) for t, _ in self.plan),
                        batches=list(stats), n_real=self.n_real)
        summary = {"info": info, "by_task": stats, "kid": kid, "kid_source": kid_source, "table": table}
        figures = {f"{cfg.name}-{t.kind}-{t.origin}.png": self._figure(t, results) for t, _ in self.plan}
        return Report(run_config(cfg, info, "semantic"), {"results.csv": rows}, summary,
                      self.markdown(info, stats, kid, kid_source), figures, {"semantic.json": table})

    def _row(self, t: S.Tasks, name: str, st: dict, kid: float, kid_source: float) -> dict:
        """The benchmark's table row of one batch and editor: means, shares in %."""
        row = {"task": label(t), "editor": name, "n": len(t), "success %": 100 * st["success"][0]}
        if t.kind == "object":
            row.update({"ΔE before": st["de_before"][0], "ΔE after": st["de_after"][0], "edge F1": st["edge_f1"][0]})
        else:
            row.update({"centre SSIM": st["centre_ssim"][0], "others kept %": 100 * st["others_kept"][0]})
        return {**row, "KID": kid, "KID source": kid_source, "ms/edit": st["ms"][0]}

    def _figure(self, t: S.Tasks, results: dict) -> Callable:
        """The writer of one batch's figure: original | strokes | each `cfg.figure` editor that ran, 2x upscaled."""
        def write(path):
            from PIL import Image
            over = t.source * (1 - t.mask) + t.sketch * t.mask
            shown = [results[label(t), e] for e in self.cfg.figure if (label(t), e) in results]
            tiles = [x for i in range(min(len(t), self.cfg.figure_tasks))
                     for x in [t.source[i], over[i]] + [r[i] for r in shown]]
            grid = Image.fromarray(image_grid(to_uint8(np.stack(tiles)), 2 + len(shown)))
            grid.resize((grid.width * 2, grid.height * 2), Image.LANCZOS).save(path, optimize=True)
        return write

    def markdown(self, info: dict, stats: dict, kid: dict, kid_source: dict) -> str:
        """summary.md: a table per batch (means [95% interval]; shares, not %) and how it is measured."""
        out = [f"# Semantic edits: {info['bundle']}", "",
               f"{info['n_tasks']} tasks in {len(stats)} batches; `{UNEDITED}` is the source, `{IDEAL}` the answer of "
               f"a perfect edit of a stage-one sample, `{IDEAL_OBJECT}` the object moved to the stroke colour in Lab "
               "with its shading kept (what stage two's object pairs teach). Mean [95% bootstrap interval]; KID: learned features against "
               f"{info['n_real']} held-out photos that are no source.", ""]
        for t, names in self.plan:
            name, cols = label(t), pick(SEMANTIC_METRICS, *KIND_COLUMNS[t.kind])
            kids = (["KID ↓", "KID source"], lambda m: [fmt(kid[name][m]), fmt(kid_source[name])])  # used at once
            out += section(name, stat_table(stats[name], names, cols, kids))
        out += section("Metrics", "success, kept and real as `neuedit.compare.semantic` defines them "
                                  "(docs/comparison.md, \"Edits that do what the strokes ask\"); ms/edit: one batch's "
                                  f"wall time per task ({info['threads']} torch threads).")
        return "\n".join(out)


def label(t: S.Tasks) -> str:
    """A batch's name in the tables: '<kind> / <origin>'."""
    return f"{t.kind} / {t.origin}"
