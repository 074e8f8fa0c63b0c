"""The server's configuration: one frozen dataclass, validated on construction."""
from __future__ import annotations

from dataclasses import dataclass
from neuedit.errors import UsageError
from neuedit.runtime.editing import PROJECT_STEPS  # noqa: F401  a projection's steps without an encoder


@dataclass(frozen=True)
class ServerConfig:
    bundles: tuple[str, ...]                # exported bundle folders to serve (each needs its ONNX graphs)
    max_body_bytes: int = 8 * 2**20         # a request body above this gets 413 (base64 images included)
    max_steps: int = 50                     # latent edit: the most optimisation steps one request may ask for
    max_project_steps: int = 300            # photo projection: the most Adam steps one request may ask for
    max_sketch_pixels: int = 2048 * 2048    # a sketch PNG whose header claims more pixels is refused undecoded
    max_photo_pixels: int = 4096 * 4096     # the same for uploaded photos (PNG or JPEG)
    queue_size: int = 64                    # inference requests in flight (decoding, waiting, running); more: 503
    retry_after_s: int = 1                  # the Retry-After header sent with a 503
    batching: bool = True                   # requests for the same model and method queued while the engine is
                                            # busy share its next call (bench/bench_server.py: wins under load)
    batch_window_ms: float = 0.0            # extra wait for company even when the engine is free (0: none; a
                                            # few ms can pay on a GPU, where bigger batches cost little more)
    max_batch: int = 16                     # rows in one engine call at most
    inference_threads: int = 2              # engine calls running at once (the thread-pool executor's size);
                                            # about one per CPU core with threads=1
    decode_threads: int = 2                 # threads decoding and encoding PNG/JPEG off the event loop
    threads: int | None = 1                 # ONNX Runtime intra-op threads per engine call (None, or 0 on the
                                            # command line: ORT's default, one per core; slower on a shared
                                            # CPU: its threads spin-wait)
    providers: str = "auto"                 # ONNX Runtime execution providers: "auto" (CUDA when onnxruntime-gpu
                                            # has it, else CPU), "cpu", "cuda"
    static_dir: str | None = None           # the web client's folder (None: the one shipped in the package)
    max_lr: float = 100.0                   # latent edit: the largest step size accepted

    def __post_init__(self):
        object.__setattr__(self, "bundles", tuple(str(b) for b in self.bundles))
        if not self.bundles:
            raise UsageError("no bundles to serve: give at least one exported bundle folder")
        for name in ("max_body_bytes", "max_steps", "max_project_steps", "max_sketch_pixels", "max_photo_pixels", "queue_size",
                     "max_batch", "inference_threads", "decode_threads"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_window_ms < 0:
            raise UsageError("batch_window_ms cannot be negative")
        if self.retry_after_s < 0:
            raise UsageError("retry_after_s cannot be negative")
        if self.threads is not None and self.threads < 1:
            raise UsageError("threads must be at least 1 (or None for ONNX Runtime's default)")
        if not self.max_lr > 0:
            raise UsageError("max_lr must be positive")
