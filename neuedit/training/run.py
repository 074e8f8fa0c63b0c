"""One process's view of a training run, for both stages: devices and DDP, per-step seeding,
data order, atomic checkpoints and resume, CSV/TensorBoard logs, sample grids and loss plots.
The loop that drives it is `neuedit.training.loop`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from neuedit.runtime.bundle import atomic_write_bytes, config_digest
from neuedit.errors import UsageError


@dataclass(frozen=True)
class RunConfig:
    out: str                     # run folder: config.json, checkpoint.pt, log.csv, samples/, bundle/
    iterations: int = 100_000    # total optimisation steps
    batch: int = 64              # images per step (per process under DDP)
    seed: int = 0                # seeds weights, data order and every step's noise
    log_every: int = 25          # CSV / TensorBoard rows every N steps
    sample_every: int = 500      # sample grid + loss plot every N steps
    ckpt_every: int = 500        # checkpoint + bundle every N steps
    device: str = "auto"         # "auto" (CUDA if available), "cpu", "cuda", "cuda:1"...
    bf16: bool = False           # bf16 autocast on CUDA
    tensorboard: bool = True     # also write TensorBoard scalars
    progress: bool = True        # tqdm progress bar on rank 0

    def __post_init__(self):
        if self.iterations < 1 or self.batch < 1:
            raise UsageError("iterations and batch must be positive")
        if min(self.log_every, self.sample_every, self.ckpt_every) < 1:
            raise UsageError("log/sample/checkpoint intervals must be positive")


def step_generator(seed: int, step: int, rank: int, device) -> torch.Generator:
    """All randomness of one step comes from here: resume is exact without replaying RNG streams."""
    h = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    g = torch.Generator(device=device)
    g.manual_seed(int.from_bytes(h, "little") & ((1 << 63) - 1))
    return g


def step_numpy_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, rank, 7])


class Run:
    """One process's view of a training run (rank 0 writes files)."""

    def __init__(self, cfg: RunConfig, config_dict: dict):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = self._pick_device(cfg.device)
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.config = config_dict
        # what must match for a checkpoint to continue this run: not logging, paths or the warm
        # start (it only sets step 0's weights, which a checkpoint replaces)
        self.digest = config_digest({k: v for k, v in config_dict.items() if k not in ("run", "init_from")} |
                                    {"run": {k: v for k, v in config_dict.get("run", {}).items()
                                             if k in ("iterations", "batch", "seed")}})
        self._tb = None
        self._bar = None
        self._t0 = time.time()
        if self.is_main:
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.out / "config.json", (json.dumps(config_dict, indent=2) + "\n").encode())

    # ---- devices --------------------------------------------------------------------
    def _pick_device(self, name: str) -> torch.device:
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(name)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise UsageError("device 'cuda' requested but no CUDA GPU is available")
            if self.distributed and dev.index is None:
                dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        return dev

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16 and self.device.type == "cuda")

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel under torchrun; the module itself otherwise."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids, broadcast_buffers=False)

    # ---- randomness and data order ------------------------------------------------------
    def generator(self, step: int) -> torch.Generator:
        return step_generator(self.cfg.seed, step, self.rank, self.device)

    def numpy_rng(self, step: int) -> np.random.Generator:
        return step_numpy_rng(self.cfg.seed, step, self.rank)

    def batch_indices(self, n: int, step: int) -> torch.Tensor:
        """This rank's indices for `step`: an epoch-seeded permutation split across ranks
        (DistributedSampler's scheme), so resuming at any step reads the same batches."""
        per_rank = n // self.world
        steps_per_epoch = max(1, per_rank // self.cfg.batch)
        epoch, j = divmod(step, steps_per_epoch)
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g)[self.rank: per_rank * self.world: self.world]
        if per_rank < self.cfg.batch:  # tiny datasets: wrap around
            perm = perm.repeat(math.ceil(self.cfg.batch / max(1, per_rank)))
            return perm[: self.cfg.batch]
        return perm[j * self.cfg.batch: (j + 1) * self.cfg.batch]

    # ---- checkpoints ---------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self, step: int, modules: dict, optimizers: dict) -> None:
        if not self.is_main:
            return
        state = {"step": step, "digest": self.digest,
                 "modules": {k: unwrap(m).state_dict() for k, m in modules.items()},
                 "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                 "torch_rng": torch.get_rng_state()}
        tmp = self.out / ".checkpoint.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_path)

    def load_checkpoint(self, modules: dict, optimizers: dict) -> int:
        """Restore from checkpoint.pt; returns the step to continue from (0 when there is none)."""
        if not self.ckpt_path.is_file():
            return 0
        try:
            state = torch.load(self.ckpt_path, map_location=self.device, weights_only=True)
        except Exception as e:
            raise UsageError(f"{self.ckpt_path} cannot be read ({e}); delete it to start over") from None
        if state.get("digest") != self.digest:
            raise UsageError(f"{self.ckpt_path} was written by a run with a different configuration "
                             f"(digest {state.get('digest')} != {self.digest}); use a new --out folder")
        for k, m in modules.items():
            unwrap(m).load_state_dict(state["modules"][k])
        for k, o in optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        torch.set_rng_state(state["torch_rng"].cpu())
        return int(state["step"])

    # ---- logging -----------------------------------------------------------------------
    def start_progress(self, start: int, total: int, desc: str):
        if self.is_main and self.cfg.progress:
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=start, desc=desc, unit="it", dynamic_ncols=True)

    def tick(self, scalars: dict) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in scalars.items() if not k.startswith("lr")}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self.distributed and dist.is_initialized():
            dist.barrier()

    def log(self, step: int, scalars: dict) -> None:
        """Append a row to log.csv (and TensorBoard); keys are the loss variable names."""
        if not self.is_main:
            return
        row = {"step": step, "time": round(time.time() - self._t0, 2), **{k: float(v) for k, v in scalars.items()}}
        path = self.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        if self.cfg.tensorboard:
            if self._tb is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                    self._tb = SummaryWriter(str(self.out / "tb"))
                except ImportError:
                    self.cfg = RunConfig(**{**asdict(self.cfg), "tensorboard": False})
                    return
            for k, v in scalars.items():
                self._tb.add_scalar(k, float(v), step)

    def truncate_log(self, step: int) -> None:
        """On resume, drop log rows past the checkpoint so curves have no duplicates."""
        path = self.out / "log.csv"
        if not (self.is_main and path.exists()):
            return
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(r["step"]) < step]
        if rows:
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(keep)

    def save_grid(self, step: int, images: np.ndarray, nrow: int, name: str = "samples") -> Path | None:
        """images [N, 3, H, W] in [-1, 1] -> samples/<name>_<step>.png (and <name>_latest.png)."""
        if not self.is_main:
            return None
        from PIL import Image
        from neuedit.data.datasets import image_grid, to_uint8
        grid = image_grid(to_uint8(images), nrow)
        p = self.out / "samples" / f"{name}_{step:07d}.png"
        Image.fromarray(grid).save(p)
        Image.fromarray(grid).save(self.out / "samples" / f"{name}_latest.png")
        return p

    def plot_losses(self, keys: list[str]) -> None:
        """log.csv -> losses.png (docs/method.md §1)."""
        path = self.out / "log.csv"
        if not (self.is_main and path.exists()):
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return
        keys = [k for k in keys if k in rows[0]]
        if not keys:
            return
        fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6), squeeze=False)
        steps = [int(r["step"]) for r in rows]
        for ax, k in zip(axes[0], keys):
            ax.plot(steps, [float(r[k]) for r in rows], lw=0.8)
            ax.set_title(k, fontsize=9)
            ax.set_xlabel("iteration", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.tight_layout()
        fig.savefig(self.out / "losses.png", dpi=110)
        plt.close(fig)


def unwrap(m):
    """The module inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return m.module if hasattr(m, "module") else m


class TensorData:
    """Training images held as one uint8 tensor on the training device; batches by index."""

    def __init__(self, images, device):
        self.images = torch.from_numpy(images.images).to(device)  # [N, H, W, 3] uint8
        self.c = torch.from_numpy(images.c).to(device)
        self.device = device

    def __len__(self):
        return len(self.images)

    def get(self, idx: torch.Tensor, flip: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> images [N, 3, R, R] in [-1, 1] (flipped where `flip`), labels c [N, C]."""
        idx = idx.to(self.device)
        x = self.images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x, self.c[idx]
