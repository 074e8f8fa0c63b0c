"""The comparison's settings and vocabulary: `CompareConfig`, the method names and the metric columns."""
from __future__ import annotations

from dataclasses import dataclass

from neuedit.evaluation import metrics as M
from neuedit.errors import UsageError
from neuedit.runtime.state import EditConfig

TWO_STAGE = "two-stage"
SOURCE = "source"  # the unedited image, as a reference row
TARGET = "target"  # ground truth: the known answer scored as a result, as a reference row
REAL = "real (held-out)"  # held-out real images, as a reference row


def latent_name(steps: int) -> str:
    return f"latent-{steps}"


@dataclass(frozen=True)
class CompareConfig:
    latent_steps: tuple[int, ...] = (1, 10, 50)  # one latent-editor run per step count (none: the
                                                 # two-stage editor alone, no projection)
    optimizer: str = "adam"                      # latent editor's optimiser ("gd": plain gradient descent)
    lr: float | None = None                      # latent step size (None: EditConfig's)
    anchor: float | None = None                  # latent editor's pull toward the starting z (None: EditConfig's)
    two_stage: bool = True                       # run the two-stage editor (when the bundle has G2)
    project_steps: int | None = None             # Adam steps projecting a real photo into (z, c) (None: the
    #                                              projection's default: none after an encoder, else 100)
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
    grid_tasks: int = 8                          # tasks shown in grid.png (known targets: at least
                                                 # this many, whole sources, every kind)
    grid_chains: int = 2                         # chains shown in stability_grid.png
    seed: int = 0                                # projection starts, bootstrap, KID subsets

    def __post_init__(self):
        if any(s < 0 for s in self.latent_steps) or len(set(self.latent_steps)) != len(self.latent_steps):
            raise UsageError("latent_steps must be distinct non-negative step counts")
        EditConfig(optimizer=self.optimizer, lr=self.lr)  # validates optimizer and lr
        if self.dilate < 1 or self.dilate % 2 == 0:
            raise UsageError("dilate must be a positive odd number")
        if (self.project_steps or 0) < 0 or self.project_candidates < 1 or self.edge_tol < 0:
            raise UsageError("need project_steps >= 0, project_candidates >= 1, edge_tol >= 0")
        if self.edge_method not in ("canny", "xdog"):
            raise UsageError("edge_method must be canny or xdog")

    def methods(self, two_stage: bool) -> list[str]:
        return [latent_name(s) for s in self.latent_steps] + ([TWO_STAGE] if two_stage else [])

    def edge_window_px(self, resolution: int) -> int:
        """The edge-precision window at this resolution (scoring and summary.md must agree on it)."""
        return self.edge_window if self.edge_window is not None else max(2, resolution // 16)


# The reported columns: (column, label, higher is better). Statistics, tables and plots follow these lists.
TASK_METRICS = [
    ("dist", "Dist", False), ("de00", "ΔE00", False), ("de_under", "ΔE<10", True), ("edge_f1", "edge F1", True),
    ("l1_out", "L1 out", False), ("psnr_out", "PSNR out", True), ("ssim_out", "SSIM out", True),
    ("d_score", "D score", True), ("attr_agree", "attr. agree", True), ("ms", "ms/edit", False),
]
CHAIN_METRICS = [("dist_new", "Dist new", False), ("dist_earlier", "Dist earlier", False),
                 ("l1_untouched", "L1 untouched", False), ("psnr_untouched", "PSNR untouched", True),
                 ("d_score", "D score", True)]

# The known-target kind's columns (neuedit.compare.kind_truth): against the target first, then the
# stroke and realism metrics above where they apply (`chamfer` and `edge_f1` on the pair's line strokes).
TRUTH_METRICS = [
    ("psnr", "PSNR", True), ("psnr_in", "PSNR region", True), ("psnr_rest", "PSNR rest", True),
    ("ssim", "SSIM", True), ("ssim_in", "SSIM region", True), ("ssim_rest", "SSIM rest", True),
    ("l1", "L1", False), ("l1_in", "L1 region", False), ("l1_rest", "L1 rest", False),
    ("de00_region", "ΔE00 region", False), ("dist", "Dist", False), ("de00", "ΔE00 strokes", False),
    ("edge_f1", "edge F1", True), ("chamfer", "chamfer px", False), ("l1_out", "L1 out", False),
    ("d_score", "D score", True), ("attr_agree", "attr. agree", True), ("ms", "ms/edit", False),
]


def pick(metrics: list[tuple], *keys: str) -> list[tuple]:
    """The (column, label, higher is better) entries of `metrics` named `keys`, in that order."""
    by = {m[0]: m for m in metrics}
    return [by[k] for k in keys]
