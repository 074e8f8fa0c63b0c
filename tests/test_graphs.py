"""The graph contract (neuedit.runtime.graphs): every graph the engine runs matches it, the
PyTorch step takes exactly its inputs, and its example inputs pass parity."""
import inspect

import numpy as np
import onnxruntime as ort
import pytest

from neuedit.nn.backend import latent_step
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.graphs import GRAPHS, LATENT_STEP, Detail, StepFeeds, StepOutputs, example_inputs

SHIPPED = bundle_mod.shipped()


def _bundles(request):
    names = ["tiny_exported", "tiny_exported_empty"]
    return [request.getfixturevalue(n) for n in names] + [bundle_mod.read(p) for p in SHIPPED]


def _session(path):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_every_exported_graph_matches_the_contract(request):
    """Names, order, dtypes and shapes of each graph of the tiny bundles (with and without c)
    and of every shipped bundle, against the contract; then a run of the example inputs gives
    outputs of the contract's shapes."""
    seen = set()
    for b in _bundles(request):
        for name, file in b.meta["onnx"].items():
            g = GRAPHS[name]
            assert file == g.file
            sess = _session(b.path / file)
            ins, outs = sess.get_inputs(), sess.get_outputs()
            assert tuple(i.name for i in ins) == g.input_names(b.c_dim), (b.name, name)
            assert tuple(o.name for o in outs) == g.output_names(b.c_dim), (b.name, name)
            detail = Detail.of(b.meta)
            want = g.input_shapes(b.z_dim, b.c_dim, b.resolution, detail)
            for i in ins:
                assert i.type == "tensor(float)"  # ORT_TYPE, spelled out
                assert len(i.shape) == len(want[i.name])
                for have, size in zip(i.shape, want[i.name]):
                    assert (size is None and not isinstance(have, int)) or have == size, (b.name, name, i.name)
            feeds = example_inputs(name, b.z_dim, b.c_dim, b.resolution, n=2, detail=detail)
            got = dict(zip(g.output_names(b.c_dim), sess.run(None, feeds)))
            for p in g.output_ports(b.c_dim):
                shape = p.shape(b.z_dim, b.c_dim, b.resolution, detail)
                assert got[p.name].shape == tuple(2 if s is None else s for s in shape), (b.name, name, p.name)
            seen.add((name, b.c_dim > 0))
    assert {("g1", True), ("g1", False), ("g2", True), ("latent_step", False), ("encoder", True),
            ("g1_detail", True)} <= seen


def test_the_pytorch_step_takes_the_contracts_inputs_in_order():
    params = list(inspect.signature(latent_step).parameters)[2:]  # after G, groups
    contract = LATENT_STEP.input_names(c_dim=1)
    assert tuple(params[:len(contract)]) == contract
    assert all(inspect.signature(latent_step).parameters[p].default is not inspect.Parameter.empty
               for p in params[len(contract):])  # only Adam's constants follow
    assert tuple(f for f in StepFeeds.__dataclass_fields__) == contract
    assert tuple(f for f in StepOutputs.__dataclass_fields__) == LATENT_STEP.output_names(c_dim=1)


def test_dropping_c_removes_exactly_the_c_ports():
    assert LATENT_STEP.input_names(0) == tuple(n for n in LATENT_STEP.input_names(1) if n != "c_t")
    assert LATENT_STEP.output_names(0) == tuple(n for n in LATENT_STEP.output_names(1) if n != "c_t_next")
    assert GRAPHS["g1"].input_names(0) == ("z",)
    assert GRAPHS["g2"].input_names(0) == GRAPHS["g2"].input_names(5)


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_the_contracts_example_inputs_pass_parity(tiny_exported, graph):
    from neuedit.export.parity import check_graph
    report = check_graph(tiny_exported, graph)
    assert set(report.max_diff) == set(GRAPHS[graph].output_names(tiny_exported.c_dim))
    assert all(report.max_diff[k] <= report.tol[k] for k in report.max_diff)


def test_example_inputs_cover_the_editors_ranges():
    ex = example_inputs("latent_step", 8, 3, 16, n=4, seed=1)
    assert set(ex) == set(LATENT_STEP.input_names(3))
    assert all(v.dtype == np.float32 for v in ex.values())
    assert np.abs(np.tanh(ex["z_t"])).max() < 1 and ex["adam"] == 1.0
    first = example_inputs("latent_step", 8, 3, 16, variant="adam_first")
    assert first["t"] == 0 and not first["m"].any() and first["edit_c"] == 0
