"""ONNX export: graphs, metadata, BatchNorm folding, the backward rewrite, parity."""
import json

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.cli.main import main as cli_main
from neuedit.runtime.engine import file_digest
from neuedit.runtime.graphs import GRAPHS, META_BUNDLE, META_C_INPUT, META_GRAPH, META_WEIGHTS
from neuedit.export.onnx_export import conv_input_grads_to_forward_ops, fold_batchnorm
from neuedit.export.parity import ParityError, check_bundle, check_graph, compare_outputs


@pytest.fixture(params=["labels", "empty"])
def exported(request):
    return request.getfixturevalue("tiny_exported" if request.param == "labels" else "tiny_exported_empty")


def _io(path):
    m = onnx.load(str(path))
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return m, {i.name: dims(i) for i in m.graph.input}, {o.name: dims(o) for o in m.graph.output}


def test_export_records_graphs_in_bundle_json(exported):
    b = bundle_mod.read(exported.path)
    assert b.meta["onnx"] == {g.name: g.file for g in GRAPHS.values()}
    for g in GRAPHS:
        assert b.file(f"onnx:{g}").is_file()


def test_graph_interfaces_with_labels(tiny_exported):
    b, z, c, r = tiny_exported, tiny_exported.z_dim, tiny_exported.c_dim, tiny_exported.resolution
    _, ins, outs = _io(b.path / "g1.onnx")
    assert ins == {"z": ["N", z], "c": ["N", c]} and outs == {"image": ["N", 3, r, r]}
    _, ins, outs = _io(b.path / "g2.onnx")
    assert list(ins) == ["image", "sketch", "mask"] and ins["mask"] == ["N", 1, r, r]
    assert outs == {"edited": ["N", 3, r, r]}
    _, ins, outs = _io(b.path / "latent_step.onnx")
    assert list(ins) == ["z_t", "c_t", "sketch", "mask", "lr", "lr_c", "m", "v", "t", "adam", "z_anchor", "anchor", "edit_c"]
    assert ins["m"] == ["N", z + c] and ins["lr"] == [] and ins["c_t"] == ["N", c]
    assert list(outs) == ["z_t_next", "c_t_next", "image", "dist", "m_next", "v_next", "t_next"]
    assert outs["dist"] == ["N"] and outs["t_next"] == []


def test_c_dim_0_drops_the_c_inputs(tiny_exported_empty):
    b = tiny_exported_empty
    m, ins, outs = _io(b.path / "g1.onnx")
    assert list(ins) == ["z"]
    assert {p.key: p.value for p in m.metadata_props}[META_C_INPUT] == "dropped"
    m, ins, outs = _io(b.path / "latent_step.onnx")
    assert "c_t" not in ins and "c_t_next" not in outs and ins["m"] == ["N", b.z_dim]
    # and no zero-size tensor is left anywhere in the graph
    inferred = onnx.shape_inference.infer_shapes(m)
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        assert 0 not in [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim], v.name


def test_metadata_and_no_batchnorm(exported):
    for g, f in ((g.name, g.file) for g in GRAPHS.values()):
        path = exported.path / f
        onnx.checker.check_model(str(path), full_check=True)
        m = onnx.load(str(path))
        props = {p.key: p.value for p in m.metadata_props}
        meta = json.loads(props[META_BUNDLE])
        assert meta == {k: v for k, v in exported.meta.items() if k != "onnx"}
        assert props[META_GRAPH] == g
        net = GRAPHS[g].net  # the network whose weights the graph holds
        assert props[META_WEIGHTS] == file_digest(exported.file(net))
        ops = {n.op_type for n in m.graph.node}
        assert "BatchNormalization" not in ops
    # the step holds G1's convolutions twice: forward, and their input gradients (stride 1:
    # flipped-weight convolutions rather than ConvTranspose); besides them, the depthwise
    # convolutions that stand for pixel_unshuffle and nearest upsampling's backward
    aux = ("_pixel_unshuffle_weight_", "_block_sum_weight_")
    count = lambda g, op: sum(n.op_type == op and not any(a in n.input[1] for a in aux)  # noqa: E731
                              for n in onnx.load(str(exported.path / g)).graph.node)
    assert count("latent_step.onnx", "Conv") == 2 * count("g1.onnx", "Conv") > 0
    assert count("latent_step.onnx", "ConvTranspose") == 0


def test_parity_all_graphs(exported):
    reports = check_bundle(exported)
    assert [r.graph for r in reports] == ["g1", "g2", "latent_step", "encoder", "g1_detail"]
    for r in reports:
        assert r.max_diff and all(d <= r.tol[k] for k, d in r.max_diff.items())
    step, enc = reports[2].max_diff, reports[3].max_diff
    assert ("c_t_next" in step) == (exported.c_dim > 0)
    assert ("c_t" in enc) == (exported.c_dim > 0) and "z_t" in enc


def test_fold_batchnorm_keeps_outputs(tiny_bundle):
    torch.manual_seed(0)
    for key, args in (("g1", (torch.randn(3, tiny_bundle.z_dim), torch.rand(3, tiny_bundle.c_dim))),
                      ("g2", (torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16), torch.ones(3, 1, 16, 16)))):
        net = load_module(tiny_bundle, key)
        folded = fold_batchnorm(net)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the original is untouched
        with torch.no_grad():
            assert torch.allclose(net(*args), folded(*args), atol=1e-5)


@pytest.mark.parametrize("size", [16, 15])
def test_convolution_backward_becomes_forward_ops(size):
    """Stride 1 (grouped, dilated, 'same' or not): a flipped-weight conv; strided: a
    transposed conv, which needs output_padding (odd sizes most of all)."""
    from torch.fx.experimental.proxy_tensor import make_fx
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, 2, 1), nn.Tanh(),
                        nn.Conv2d(6, 4, 3, 1, 2, dilation=2, groups=2), nn.Tanh(),
                        nn.Conv2d(4, 2, 5, 1, 1), nn.Conv2d(2, 2, 3, 1, 3)).requires_grad_(False)

    def grad_of_input(x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(net(x).square().sum(), [x])
        return g

    x = torch.randn(2, 3, size, size)
    gm = make_fx(grad_of_input, tracing_mode="symbolic", _allow_non_fake_inputs=True)(x)
    assert conv_input_grads_to_forward_ops(gm) == {"conv": 2, "conv_transpose": 3}
    assert "convolution_backward" not in gm.code
    x2 = torch.randn(3, 3, size, size)
    assert torch.allclose(gm(x2), grad_of_input(x2), atol=1e-6)


def test_compare_outputs_checks_names_shapes_values():
    a = {"image": np.zeros((2, 3)), "dist": np.zeros(2)}
    with pytest.raises(ParityError, match="outputs"):
        compare_outputs("g", a, {"image": a["image"]})
    with pytest.raises(ParityError, match="shape") as e:
        compare_outputs("g", a, {"image": np.zeros((2, 4)), "dist": a["dist"]})
    assert e.value.output == "image"
    with pytest.raises(ParityError) as e:
        compare_outputs("g", a, {"image": a["image"], "dist": np.array([0.0, 3e-4])})
    assert e.value.output == "dist" and e.value.max_diff == pytest.approx(3e-4) and "dist" in str(e.value)
    assert compare_outputs("g", a, {"image": a["image"], "dist": np.array([0.0, 3e-4])}, tol={"dist": 1e-3})
    with pytest.raises(ParityError, match="NaN"):
        compare_outputs("g", a, {"image": a["image"], "dist": np.array([0.0, np.nan])})


def _perturb_output(src, dst, output: str, delta: float):
    """Copy a graph, adding `delta` to one of its outputs."""
    m = onnx.load(str(src))
    for node in m.graph.node:
        node.output[:] = [f"{output}_raw" if o == output else o for o in node.output]
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(delta, np.float32), "perturbation"))
    m.graph.node.append(onnx.helper.make_node("Add", [f"{output}_raw", "perturbation"], [output]))
    onnx.save(m, str(dst))


def test_perturbed_graph_fails_parity_naming_the_output(tiny_exported, tmp_path):
    bad = tmp_path / "latent_step.onnx"
    _perturb_output(tiny_exported.path / "latent_step.onnx", bad, "dist", 1e-3)
    with pytest.raises(ParityError) as e:
        check_graph(tiny_exported, "latent_step", path=bad)
    assert e.value.output == "dist" and e.value.graph == "latent_step"
    assert e.value.max_diff == pytest.approx(1e-3, rel=1e-2) and "'dist'" in str(e.value)


def test_perturbed_weight_fails_parity(tiny_exported, tmp_path):
    m = onnx.load(str(tiny_exported.path / "g1.onnx"))
    init = max(m.graph.initializer, key=lambda t: np.prod(t.dims))
    w = onnx.numpy_helper.to_array(init).copy()
    w.flat[0] += 0.5
    init.CopyFrom(onnx.numpy_helper.from_array(w, init.name))
    onnx.save(m, str(tmp_path / "g1.onnx"))
    with pytest.raises(ParityError) as e:
        check_graph(tiny_exported, "g1", path=tmp_path / "g1.onnx")
    assert e.value.output == "image"


def test_cli_check_and_export(tiny_exported, tiny_bundle_empty, tmp_path, capsys):
    assert cli_main(["export", str(tiny_exported.path), "--check"]) == 0
    assert "parity latent_step: ok" in capsys.readouterr().out
    # a bundle never exported: --check fails with a message, not a traceback
    assert cli_main(["export", str(tiny_bundle_empty.path), "--check"]) == 1
    assert "export it first" in capsys.readouterr().err
    out = tmp_path / "copy"
    assert cli_main(["export", str(tiny_bundle_empty.path), "--out", str(out), "--opset", "18"]) == 0
    assert bundle_mod.read(out).meta["onnx"]["latent_step"] == "latent_step.onnx"
    assert "onnx" not in bundle_mod.read(tiny_bundle_empty.path).meta  # the source is left alone
    assert "engine: tiny_empty" in capsys.readouterr().out


def test_cpu_recipe_networks_export_with_parity(tmp_path):
    """The resize-conv generator of the shipped demos: BatchNorm folded (dense layer included),
    nearest upsampling in G1 and in the latent step's backward pass, parity checked."""
    from neuedit.export.onnx_export import export_bundle
    from neuedit.nn.testing import make_random_bundle
    b = make_random_bundle(tmp_path / "cpu", preset="tiny_cpu", name="cpu")
    assert b.meta["g1"]["name"] == "up_g" and b.meta["d"]["name"] == "sn_d" and b.meta["g2"]["name"] == "edit_unet"
    out = export_bundle(b.path, out=tmp_path / "exported", log=lambda *a: None)
    assert set(out.meta["onnx"]) == {"g1", "g2", "latent_step", "encoder", "g1_detail"}


def test_g2_keep_unchanged_exports_with_parity(tmp_path):
    """G2's keep layer (Lab, blur, the stroke pixels' max) is part of the g2 graph, so ONNX Runtime and
    the page run what PyTorch runs; parity is checked on export and again here on a real change."""
    import json
    import onnxruntime as ort
    import torch
    from neuedit.export.onnx_export import export_bundle
    from neuedit.nn.testing import make_random_bundle
    b = make_random_bundle(tmp_path / "keep", preset="tiny_cpu", name="keep")
    meta = json.loads((b.path / "bundle.json").read_text())
    meta["g2"]["kwargs"]["keep"] = 10.0
    (b.path / "bundle.json").write_text(json.dumps(meta))
    out = export_bundle(b.path, out=tmp_path / "exported", log=lambda *a: None)
    G2 = load_module(out, "g2").eval()
    assert G2.keep == 10.0
    r = out.resolution
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, r, r, generator=g) * 2 - 1
    sketch = torch.rand(2, 3, r, r, generator=g) * 2 - 1
    mask = (torch.rand(2, 1, r, r, generator=g) > 0.9).float()
    with torch.no_grad():
        want = G2(image, sketch, mask).numpy()
    sess = ort.InferenceSession(str(out.path / out.meta["onnx"]["g2"]), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, dict(zip(names, [image.numpy(), sketch.numpy(), mask.numpy()])))[0]
    assert np.abs(got - want).max() < 1e-4
