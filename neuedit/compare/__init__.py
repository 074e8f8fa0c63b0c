"""One-stage (latent optimisation) against two-stage editing on a task set, with numbers.

Every task of a `neuedit.compare.tasks.TaskSet` is edited by the latent editor at each step count
(`latent-<steps>`) and by the two-stage editor (`two-stage`), each edit alone (batch 1,
timed). A stage-one sample starts both editors from its state; a real photo goes to the
two-stage editor as it is and to the latent editor through `project` (iGAN-style: the latent
editor's Adam steps on (z, c) with the photo as the sketch; `neuedit.runtime.editing`). The editors
are the editing core on its PyTorch backend, as the server runs it on ONNX Runtime. Each result is scored (`neuedit.evaluation.metrics`) against the task's
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

Modules, in the order a run uses them: `config` (settings, method and column names),
`sketches`, `sources` (what the editors start from), `editors`, `scoring`,
`harness` (tasks and chains), `stats`, `report` (CSV, Markdown, JSON), `figures`, `run` (`compare`).

Ground truth (`compare_truth`): edits whose answer is known (a held-out photo restored from a
recoloured or reshaped copy, a stage-one sample turned into G1 with another attribute or a
nearby z), each source and target with 1, 3 and 10 strokes, scored against the target (PSNR,
SSIM, L1 in the changed region and outside it, CIEDE2000 over the region, chamfer distance to
line strokes) through the same editors, sources and harness. Modules: `truth` (the set, on
disk), `truth_draw` (`make_truth`, from a seed), `truth_scoring`, `truth_report`,
`truth_figures`, `truth_run` (`compare_truth`).
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
