"""One-stage (latent optimisation) against two-stage editing, in numbers: one pipeline,
tasks -> editors -> scorers -> statistics -> report and figures, for three task kinds
(docs/comparison.md):

- **synthetic strokes** (`kind_strokes`, `compare`): a `neuedit.compare.tasks.TaskSet`, strokes
  from other real images, each task edited by the latent editor at each step count
  (`latent-<steps>`) and the two-stage editor (`two-stage`), alone (batch 1, timed), plus chains
  of K successive edits for stability; scored on following the strokes, keeping the rest
  (raw output, no paste-back), realism (KID on the project's handcrafted descriptor, the
  stage-one D's score and attribute agreement) and cost;
- **known target** (`kind_truth`, `compare_truth`): a `neuedit.compare.truth.TruthSet` (drawn by
  `truth_draw.make_truth`), each source and target with 1, 3 and 10 strokes, scored against
  the target (PSNR, SSIM, L1 in the changed region and outside it, CIEDE2000 over it, chamfer
  distance to line strokes) through the same editors, sources, harness and realism;
- **semantic** (`kind_semantic`, run by bench/semantic_edits.py): hair, eye and object colour
  requests (`semantic`), each editor a function of a task batch, judged by the evaluation
  classifier or the object's colour.

A stage-one sample starts both editors from its state; a photo goes to the two-stage editor as
it is and to the latent editor through `project` (iGAN-style Adam steps on (z, c) with the photo
as the sketch). `run.run` drives a kind and writes its report folder in one sequence
(config.json, the CSV tables, JSON files, figures, summary.md, summary.json).

Modules, in pipeline order: `config` (settings, method and column names); tasks: `tasks`,
`truth`, `truth_draw`, `semantic`, `sketches`, `sources` (what the editors start from);
`editors`, `harness` (every editor on every task, timed, with a progress bar); `scoring`;
`stats`; `report` (CSV, Markdown, JSON); `figures`; `run` (the runner); the kinds:
`kind_strokes`, `kind_truth`, `kind_semantic`.
"""
from __future__ import annotations

from neuedit.compare.config import REAL, SOURCE, TARGET, TWO_STAGE, CompareConfig, latent_name
from neuedit.runtime.editing import project  # noqa: F401  (photo projection: the editing core's)
from neuedit.compare.kind_strokes import compare
from neuedit.compare.kind_truth import compare_truth
from neuedit.compare.sketches import cumulative
from neuedit.compare.stats import aggregate, paired
from neuedit.compare.truth import Answer, TruthSet
from neuedit.compare.truth_draw import TruthConfig, make_truth

__all__ = ["Answer", "CompareConfig", "REAL", "SOURCE", "TARGET", "TWO_STAGE", "TruthConfig", "TruthSet", "aggregate",
           "compare", "compare_truth", "cumulative", "latent_name", "make_truth", "paired", "project"]
