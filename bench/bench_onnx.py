"""ONNX Runtime vs PyTorch eager on CPU, for G1, G2 and the latent editor's step.

Not a test: it prints a table and writes JSON. For the presets `demo` (64x64) and
`report128` (the 128x128 model of docs/method.md §1) it builds random-weight bundles (z 128-d, the
anime_faces schema), exports them, and times batch 1 and 8 of each graph in both
runtimes with the same thread count. Each graph's FLOPs (counted with
torch.utils.flop_counter on the PyTorch run: convolutions and matmuls, the backward's
input-gradient convolutions included) are set against this CPU's measured fp32 matmul
GFLOP/s, which gives a floor on the time. `--int8` adds ONNX Runtime's dynamic int8
quantisation of the graphs (speed and drift from fp32).

    python bench/bench_onnx.py [--presets demo report128] [--batches 1 8] [--json out.json] [--int8]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timeit(*fns, min_time: float = 0.6, min_runs: int = 3, max_runs: int = 200) -> list[float]:
    """Median seconds per call of each function, after one warm-up call each. The functions
    take turns, so load from other processes on a shared machine hits all of them alike."""
    for fn in fns:
        fn()
    times, start = [[] for _ in fns], time.perf_counter()
    while len(times[0]) < min_runs or (time.perf_counter() - start < min_time * len(fns) and len(times[0]) < max_runs):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def matmul_gflops(threads: int, n: int = 1024) -> float:
    """This CPU's fp32 matmul rate through torch (MKL/oneDNN), best of a few runs."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(timeit(lambda: torch.mm(a, b), min_time=0.3)[0] for _ in range(3))
    return 2 * n ** 3 / best / 1e9


def torch_callable(bundle, graph: str, feeds: dict):
    """A zero-argument PyTorch eager call of `graph` on `feeds` (the unfolded networks): the
    parity check's reference (`neuedit.export.parity.run_torch`)."""
    from neuedit.export.parity import run_torch
    from neuedit.nn.weights import load_module
    from neuedit.runtime.graphs import GRAPHS
    net = load_module(bundle, GRAPHS[graph].net)
    return lambda: run_torch(bundle, graph, feeds, net)


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def ort_session(path, threads: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def quantize(path: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantisation (weights int8, activations quantised per call)."""
    import logging
    from onnxruntime.quantization import QuantType, quantize_dynamic
    out = path.with_name(path.stem + ".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    try:
        quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=["demo", "report128"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--graphs", nargs="+", default=["g1", "g2", "latent_step"])
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for both runtimes (default 1: on a shared machine, PyTorch's OpenMP "
                         "threads spin-wait for descheduled peers and its times explode)")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per measurement and runtime")
    ap.add_argument("--work", default=None, help="folder for the bundles (default: a temporary one)")
    ap.add_argument("--json", default="bench_onnx.json", help="write the results here")
    ap.add_argument("--int8", action="store_true", help="also time ONNX Runtime dynamic int8 quantisation")
    args = ap.parse_args(argv)

    import torch
    import onnxruntime as ort
    from neuedit.runtime import bundle as bundle_mod
    from neuedit.export.onnx_export import export_bundle
    from neuedit.export.parity import example_inputs
    from neuedit.nn.testing import make_random_bundle

    torch.set_num_threads(args.threads)
    peak = matmul_gflops(args.threads)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}")
    print(f"fp32 matmul (1024^3, torch): {peak:.1f} GFLOP/s  -> floor ms = GFLOP / this rate\n")

    tmp = tempfile.TemporaryDirectory() if args.work is None else None
    work = Path(args.work or tmp.name)
    rows = []
    header = (f"{'preset':<10} {'graph':<12} {'N':>2} {'GFLOP':>7} {'torch ms':>9} {'ort ms':>8} "
              f"{'torch/ort':>9} {'floor ms':>8} {'ort eff':>7}"
              + (f" {'int8 ms':>8} {'int8 drift':>10}" if args.int8 else ""))
    for preset in args.presets:
        path = work / preset
        t0 = time.perf_counter()
        if not (path / "bundle.json").is_file() or "onnx" not in bundle_mod.read(path).meta:
            make_random_bundle(path, preset=preset, z_dim=128, with_d=False, name=preset)
            export_bundle(path, log=lambda *a: None)
        b = bundle_mod.read(path)
        print(f"{preset}: {b.resolution}x{b.resolution}, bundle built and exported (parity checked) in "
              f"{time.perf_counter() - t0:.0f} s")
        print(header)
        for graph in args.graphs:
            if graph not in b.meta["onnx"]:
                continue
            sess = ort_session(b.file(f"onnx:{graph}"), args.threads)
            q = ort_session(quantize(b.file(f"onnx:{graph}")), args.threads) if args.int8 else None
            for n in args.batches:
                feeds = example_inputs(graph, b.z_dim, b.c_dim, b.resolution, n=n, seed=n)
                fn = torch_callable(b, graph, feeds)
                with torch.set_grad_enabled(graph == "latent_step"):  # latent_step enables grad itself
                    t_torch, t_ort = timeit(fn, lambda: sess.run(None, feeds), min_time=args.min_time)
                    flops = count_flops(fn)
                floor = flops / (peak * 1e9)
                row = {"preset": preset, "graph": graph, "batch": n, "gflop": flops / 1e9,
                       "torch_ms": t_torch * 1e3, "ort_ms": t_ort * 1e3, "torch_over_ort": t_torch / t_ort,
                       "floor_ms": floor * 1e3, "ort_efficiency": floor / t_ort}
                line = (f"{preset:<10} {graph:<12} {n:>2} {flops / 1e9:>7.3f} {t_torch * 1e3:>9.2f} "
                        f"{t_ort * 1e3:>8.2f} {t_torch / t_ort:>9.2f} {floor * 1e3:>8.2f} {floor / t_ort:>6.0%}")
                if q is not None:
                    (t_q,) = timeit(lambda: q.run(None, feeds), min_time=args.min_time)
                    ref, got = sess.run(None, feeds), q.run(None, feeds)
                    names = [o.name for o in sess.get_outputs()]
                    key = names.index("z_t_next") if "z_t_next" in names else 0
                    drift = float(np.abs(ref[key] - got[key]).max())
                    row.update(int8_ms=t_q * 1e3, int8_drift=drift, int8_drift_output=names[key])
                    line += f" {t_q * 1e3:>8.2f} {drift:>10.2e}"
                print(line)
                rows.append(row)
        print()
    # re-measured at the end: on a shared machine, load from other processes may have
    # depressed the first measurement (and so made the floors too generous)
    peak_end = matmul_gflops(args.threads)
    if peak_end > peak * 1.05:
        print(f"fp32 matmul re-measured at {peak_end:.1f} GFLOP/s (was {peak:.1f}): floors and efficiencies "
              f"above are {peak_end / peak:.2f}x too generous")
    result = {"matmul_gflops_end": peak_end, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "threads": args.threads,
              "torch": torch.__version__, "onnxruntime": ort.__version__, "matmul_gflops": peak, "rows": rows}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"torch/ort > 1: ONNX Runtime is faster. ort eff = floor / ort time. Wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
