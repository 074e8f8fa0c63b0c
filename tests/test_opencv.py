"""OpenCV DNN reads the exported graphs (docs/export.md): g1, g2, the encoder and the latent step
of every shipped bundle and of the tiny test bundles load in `cv2.dnn.readNetFromONNX`, and their
outputs equal ONNX Runtime's within the contract's tolerance on its example inputs at batch 1 and
2 (the latent step in each of its variants: Adam, gradient descent, Adam's first step).

Before `static_batch_shapes` the exporter computed G's reshape target from the batch
(Shape -> Squeeze -> Concat -> Reshape) and OpenCV refused g1.onnx at load ("dynamic 'zero'
shapes are not supported"). The latent step loads since it keeps per-sample values [N, 1] and
the export rewrites what OpenCV 4 cannot import (Expand, And, mixed Concat operands, an unused
input); before that it failed at load (Concat node_cat, Where node_where_2, Expand node_expand).
OpenCV 4's Mats have at least two axes, so a rank-1 output (the step's dist [N]) comes back as
[N, 1] and a scalar (t_next) as [1, 1]: those are compared in the contract's shape.
"""
import os

import numpy as np
import pytest

from neuedit.export.parity import run_onnx
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.graphs import GRAPHS, STEP_VARIANTS, example_inputs, tolerance

SHIPPED = bundle_mod.shipped()
OPENCV_GRAPHS = ("g1", "g2", "encoder", "latent_step")  # every graph of the contract
BATCHES = (1, 2)


@pytest.fixture(scope="module")
def cv2():
    reason = "OpenCV is not installed (pip install opencv-python-headless; [train] has it)"
    if os.environ.get("CI"):
        try:
            import cv2
        except ImportError as e:
            pytest.fail(f"{reason}: {e}")  # CI must never skip silently
        return cv2
    return pytest.importorskip("cv2", reason=reason)


def opencv_outputs(cv2, path, feeds: dict, names) -> dict:
    net = cv2.dnn.readNetFromONNX(str(path))
    for name, blob in feeds.items():
        net.setInput(blob, name)
    return dict(zip(names, net.forward(list(names))))


def as_contract_shape(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """OpenCV's blob in ONNX Runtime's shape: a rank-0 or rank-1 output comes back with two axes
    ([1, 1], [N, 1]) from OpenCV 4 and is reshaped when it has the same number of values; any
    other output must have ONNX Runtime's shape as it is."""
    if want.ndim < 2 and got.ndim == 2 and got.size == want.size and 1 in got.shape:
        return got.reshape(want.shape)
    return got


def assert_opencv_matches_ort(cv2, b: bundle_mod.Bundle, graph: str) -> dict:
    """Load `graph` of bundle `b` in OpenCV and compare it with ONNX Runtime at each batch (and,
    for the latent step, each variant); returns {output: largest difference}."""
    path = b.file(f"onnx:{graph}")
    names = GRAPHS[graph].output_names(b.c_dim)
    variants = STEP_VARIANTS if graph == "latent_step" else ("adam",)  # the others ignore the variant
    worst = {}
    for n in BATCHES:
        for variant in variants:
            feeds = example_inputs(graph, b.z_dim, b.c_dim, b.resolution, n=n, seed=n, variant=variant)
            want = run_onnx(path, feeds)
            got = opencv_outputs(cv2, path, feeds, names)
            for name in names:
                w = want[name]
                g = as_contract_shape(np.asarray(got[name]), w)
                where = f"{path} {name} at batch {n}" + (f" ({variant})" if graph == "latent_step" else "")
                assert g.shape == w.shape, f"{where}: OpenCV shape {g.shape}, ONNX Runtime {w.shape}"
                d = float(np.abs(g.astype(np.float64) - w).max(initial=0.0))
                tol = tolerance(graph, name)
                assert d <= tol, f"{where}: OpenCV differs from ONNX Runtime by {d:.3g} (tol {tol:g})"
                worst[name] = max(worst.get(name, 0.0), d)
    return worst


SHIPPED_GRAPHS = [(p, g) for p in SHIPPED for g in OPENCV_GRAPHS if g in bundle_mod.read(p).meta.get("onnx", {})]


@pytest.mark.parametrize("path,graph", SHIPPED_GRAPHS, ids=[f"{p.name}-{g}" for p, g in SHIPPED_GRAPHS])
def test_shipped_graphs_run_in_opencv(cv2, path, graph):
    assert_opencv_matches_ort(cv2, bundle_mod.read(path), graph)


def test_every_shipped_bundle_has_opencv_graphs():
    names = {p.name for p in SHIPPED}
    assert names >= {"anime", "shoes", "handbags"}
    for g in ("g1", "g2", "latent_step"):
        assert {p.name for p, h in SHIPPED_GRAPHS if h == g} == names, g


@pytest.mark.parametrize("fixture", ["tiny_exported", "tiny_exported_empty"])
def test_tiny_exported_graphs_run_in_opencv(cv2, request, fixture):
    b = request.getfixturevalue(fixture)
    graphs = [g for g in OPENCV_GRAPHS if g in b.meta["onnx"]]
    assert {"g1", "g2", "latent_step"} <= set(graphs)
    for g in graphs:
        assert_opencv_matches_ort(cv2, b, g)


def test_as_contract_shape_only_reshapes_rank0_and_rank1_outputs():
    assert as_contract_shape(np.zeros((3, 1)), np.zeros(3)).shape == (3,)
    assert as_contract_shape(np.zeros((1, 1)), np.zeros(())).shape == ()
    assert as_contract_shape(np.zeros((1, 6)), np.zeros((2, 3))).shape == (1, 6)  # a wrong shape stays wrong
    assert as_contract_shape(np.zeros((2, 2)), np.zeros(4)).shape == (2, 2)
