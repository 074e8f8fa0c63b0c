"""Training machinery both stages share (docs/method.md, "Training").

- `run`: one process's view of a run folder: devices and DDP, per-step seeding, data order,
  atomic checkpoints and exact resume, logs, grids (`Run`, `RunConfig`, `TensorData`);
- `loop`: the loop over a stage's phases (`Stage`, `Phase`, `train_loop`), the learning-rate
  schedule and optimiser settings (`OptimConfig`), EMA and warm starts;
- `gan`: the adversarial objective (`LossConfig`, `d_loss_terms`, `g_loss_terms`);
- `cli`: the flags and recipe files every trainer's command shares.

`neuedit.stage1` and `neuedit.stage2` hold only what is their own and import nothing from
each other.
"""
from neuedit.training.gan import LossConfig, d_loss_terms, g_loss_terms
from neuedit.training.loop import OptimConfig, Phase, Stage, ema_update, lr_at, train_loop, warm_start
from neuedit.training.run import Run, RunConfig, TensorData, step_generator, step_numpy_rng, unwrap

__all__ = ["LossConfig", "OptimConfig", "Phase", "Run", "RunConfig", "Stage", "TensorData", "d_loss_terms",
           "ema_update", "g_loss_terms", "lr_at", "step_generator", "step_numpy_rng", "train_loop", "unwrap",
           "warm_start"]
