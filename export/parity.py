"""Parity between a bundle's PyTorch networks and its ONNX graphs (docs/method.md §5).

Like optimum's `validate_model_outputs`: `onnx.checker` first, then on fresh random inputs
the output *names*, then *shapes*, then *values* are compared, each output against its own
absolute tolerance (the graph contract's, `neuedit.runtime.graphs`). The PyTorch side is the bundle's original
network (BatchNorm unfolded) and `neuedit.nn.backend.latent_step` itself, so the check covers
BatchNorm folding and the hand-written backward pass too. A mismatch raises `ParityError`
naming the graph, the output and the largest difference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neuedit.errors import NeueditError
from neuedit.nn.backend import latent_step
from neuedit.nn.weights import load_graph_net
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.graphs import GRAPHS, STEP_VARIANTS, Detail, example_inputs, tolerance
from neuedit.runtime.state import group_matrix


class ParityError(NeueditError, ValueError):
    """ONNX Runtime's outputs differ from PyTorch's (or the graph fails the ONNX checker)."""

    def __init__(self, message: str, graph: str, output: str | None = None, max_diff: float | None = None,
                 tol: float | None = None):
        super().__init__(message)
        self.graph, self.output, self.max_diff, self.tol = graph, output, max_diff, tol


@dataclass
class ParityReport:
    graph: str
    path: Path
    max_diff: dict = field(default_factory=dict)  # output -> largest |onnx - torch| over all rounds
    tol: dict = field(default_factory=dict)       # output -> tolerance used

    def summary(self) -> str:
        worst = ", ".join(f"{k} {v:.1e}" for k, v in self.max_diff.items())
        return f"parity {self.graph}: ok ({worst})"


def compare_outputs(graph: str, expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                    tol: float | dict | None = None) -> dict[str, float]:
    """Names, then shapes, then values. `tol` is one absolute tolerance or {output: tol} over the
    contract's (`neuedit.runtime.graphs.tolerance`). Returns {output: largest absolute difference}."""
    if list(actual) != list(expected):
        raise ParityError(f"{graph}: ONNX outputs {list(actual)} but PyTorch gives {list(expected)}", graph)
    for name, want in expected.items():
        got = actual[name]
        if tuple(got.shape) != tuple(want.shape):
            raise ParityError(f"{graph}: output {name!r} has shape {list(got.shape)} in ONNX but "
                              f"{list(want.shape)} in PyTorch", graph, name)
    diffs = {}
    for name, want in expected.items():
        t = tolerance(graph, name, tol)
        got = np.asarray(actual[name], np.float64)
        want = np.asarray(want, np.float64)
        if not np.array_equal(np.isfinite(got), np.isfinite(want)):
            raise ParityError(f"{graph}: output {name!r} is NaN/inf in one runtime but not the other", graph, name,
                              float("inf"), t)
        d = float(np.abs(np.where(np.isfinite(want), got - want, 0)).max(initial=0.0))
        if not d <= t:
            idx = np.unravel_index(int(np.abs(got - want).argmax()), want.shape) if want.size else ()
            raise ParityError(f"{graph}: output {name!r} differs by up to {d:.3g} (tolerance {t:g}) at index "
                              f"{list(map(int, idx))}: ONNX {got[idx]:.6g}, PyTorch {want[idx]:.6g}",
                              graph, name, d, t)
        diffs[name] = d
    return diffs


def check_model(path: str | Path, graph: str = "") -> None:
    """`onnx.checker.check_model` with full shape inference; ParityError when it complains."""
    import onnx
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # ValidationError, InferenceError, DecodeError...
        raise ParityError(f"{path}: onnx.checker: {type(e).__name__}: {e}", graph or Path(path).stem) from None


def run_onnx(path: str | Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # one thread: ONNX Runtime's multi-threaded kernels sum in a varying order, and the latent
    # step's gradient (thousands of cancelling per-pixel terms) then moved z_t_next by up to
    # 1e-3 from run to run on the same inputs; single-threaded it is reproducible and within 3e-7
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def run_torch(bundle: bundle_mod.Bundle, graph: str, feeds: dict[str, np.ndarray], net=None) -> dict[str, np.ndarray]:
    """The PyTorch reference of `graph` on `feeds`, outputs named as in the ONNX contract."""
    contract = GRAPHS[graph]
    net = load_graph_net(bundle, graph) if net is None else net
    x = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in feeds.items()}
    first = x[contract.inputs[0].name]
    for p in contract.input_ports(1):  # the graphs of a c_dim-0 bundle take no c: PyTorch gets [N, 0]
        x.setdefault(p.name, first[:, :0])
    args = [x[k] for k in contract.input_names(1)]
    with torch.no_grad():
        if graph != "latent_step":
            outs = net(*args)
            outs = outs if isinstance(outs, tuple) else (outs,)
        else:
            groups = torch.from_numpy(group_matrix(bundle.schema, bundle.c_dim))
            outs = latent_step(net, groups, *args)
    named = dict(zip(contract.output_names(1), outs))  # all outputs, c_t_next included
    return {k: named[k].detach().numpy() for k in contract.output_names(bundle.c_dim)}


def check_graph(bundle: bundle_mod.Bundle | str | Path, graph: str, n: int = 3, seed: int = 1234,
                tol: float | dict | None = None, path: str | Path | None = None) -> ParityReport:
    """Check one graph of `bundle` (the file its bundle.json names, or `path`) against PyTorch.

    Fresh random inputs with batches (`n`, `n + 1`, ...) other than the export's; the latent
    step is checked as Adam under way, as plain gradient descent, and as Adam's first step
    (zero moments and frozen c: exact zeros in the gradient).
    """
    b = bundle if isinstance(bundle, bundle_mod.Bundle) else bundle_mod.read(bundle)
    path = Path(path) if path is not None else b.file(f"onnx:{graph}")
    check_model(path, graph)
    net = load_graph_net(b, graph)
    report = ParityReport(graph, path)
    variants = STEP_VARIANTS if graph == "latent_step" else ("adam", "adam")
    for i, variant in enumerate(variants):
        feeds = example_inputs(graph, b.z_dim, b.c_dim, b.resolution, n=n + i, seed=seed + i, variant=variant,
                               detail=Detail.of(b.meta))
        diffs = compare_outputs(graph, run_torch(b, graph, feeds, net), run_onnx(path, feeds), tol)
        for k, d in diffs.items():
            report.max_diff[k] = max(report.max_diff.get(k, 0.0), d)
            report.tol[k] = tolerance(graph, k, tol)
    return report


def check_bundle(bundle: bundle_mod.Bundle | str | Path, graphs=None, n: int = 3, seed: int = 1234,
                 tol: float | dict | None = None) -> list[ParityReport]:
    """Check every exported graph of `bundle` (or those in `graphs`); ParityError on the first failure."""
    b = bundle if isinstance(bundle, bundle_mod.Bundle) else bundle_mod.read(bundle)
    exported = b.meta.get("onnx", {})
    graphs = [g for g in GRAPHS if g in exported] if graphs is None else list(graphs)
    if not graphs:
        raise ParityError(f"bundle {b.path} has no ONNX graphs to check; export it first", "")
    return [check_graph(b, g, n, seed, tol) for g in graphs]
