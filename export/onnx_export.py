"""ONNX export of a bundle: G1, G2 and one step of the latent editor.

- `fold_batchnorm` folds every eval-mode BatchNorm into the layer before it (a convolution,
  a convolution followed by PixelShuffle, or G's dense layer), so the graphs have no
  BatchNormalization node; the PyTorch originals stay the parity reference.
- G1 and G2 are exported with the dynamo exporter (`torch.onnx.export(dynamo=True)`).
- ONNX has no autograd, so the latent editor's step is traced *with its backward pass*:
  `make_fx` records `neuedit.nn.backend.latent_step` (forward + `torch.autograd.grad`) as ATen
  ops; every `aten.convolution_backward` that only needs the input gradient (weights are
  frozen) becomes a forward op (`conv_input_grads_to_forward_ops`): a convolution with the
  flipped weight at stride 1, else a transposed convolution with the same weight. The
  resulting graph goes through the same dynamo exporter. The other backward ops
  (threshold, tanh, sigmoid backward, pixel_unshuffle) have ONNX translations.
- Each graph gets a dynamic batch axis "N", named inputs and outputs (the graph contract,
  `neuedit.runtime.graphs`), and the bundle.json in its metadata. For c_dim 0 the `c` / `c_t`
  inputs (and `c_t_next`) are dropped: the graph builds the empty tensor itself.
"""
from __future__ import annotations

import copy
import inspect
import json
import logging
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.nn.backend import latent_step
from neuedit.runtime.engine import file_digest
from neuedit.runtime.graphs import GRAPHS, META_BUNDLE, META_C_INPUT, META_EXPORT, META_GRAPH, META_WEIGHTS, example_inputs
from neuedit.nn.nets import Generator, UpGenerator
from neuedit.runtime.state import group_matrix
from neuedit.errors import NeueditError

from neuedit.export.parity import check_graph

OPSET = 18  # ONNX Runtime >= 1.14 runs it; the exporter's own default


class ExportError(NeueditError, ValueError):
    """A network or graph the exporter cannot turn into ONNX."""


# ---- BatchNorm folding -------------------------------------------------------------------------
def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = x * scale + shift, per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    return scale, shift


def _fold_into(layer: nn.Module, scale: torch.Tensor, shift: torch.Tensor, repeat: int = 1) -> nn.Module:
    """A copy of `layer` (Conv2d or Linear) whose output rows are scaled and shifted; output
    channel k of the layer belongs to BN channel k // repeat (PixelShuffle, G's view)."""
    scale, shift = scale.repeat_interleave(repeat), shift.repeat_interleave(repeat)
    w = layer.weight * scale.view(-1, *([1] * (layer.weight.dim() - 1)))
    b = (layer.bias * scale if layer.bias is not None else 0) + shift
    if isinstance(layer, nn.Conv2d):
        new = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                        layer.dilation, layer.groups, bias=True, padding_mode=layer.padding_mode)
    else:
        new = nn.Linear(layer.in_features, layer.out_features, bias=True)
    new.weight.data.copy_(w)
    new.bias.data.copy_(b)
    return new


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of `module` (eval mode) with every BatchNorm2d folded into the layer feeding it.

    Handles `Sequential(..., Conv2d, [PixelShuffle(r),] BatchNorm2d, ...)` anywhere and the
    generators' `fc -> view -> fc_bn` (both G architectures); any BatchNorm left over raises ExportError, so a new
    architecture cannot silently export with unfolded (or training-mode) normalisation.
    """
    m = copy.deepcopy(module).eval()
    for seq in [s for s in m.modules() if isinstance(s, nn.Sequential)]:
        for i, bn in enumerate(list(seq)):
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            j, repeat = i - 1, 1
            if j >= 0 and isinstance(seq[j], nn.PixelShuffle):
                repeat, j = seq[j].upscale_factor ** 2, j - 1
            if j >= 0 and isinstance(seq[j], nn.Conv2d):
                seq[j] = _fold_into(seq[j], *_bn_affine(bn), repeat)
                seq[i] = nn.Identity()
    if isinstance(m, (Generator, UpGenerator)) and isinstance(m.fc_bn[0], nn.BatchNorm2d):
        m.fc = _fold_into(m.fc, *_bn_affine(m.fc_bn[0]), repeat=m.base * m.base)  # view(-1, ch, base, base)
        m.fc_bn[0] = nn.Identity()
    left = [n for n, s in m.named_modules() if isinstance(s, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ExportError(f"cannot fold BatchNorm {', '.join(left)} of {type(module).__name__} into a layer")
    return m.requires_grad_(False)


# ---- the graphs' modules ------------------------------------------------------------------------
class _G1(nn.Module):
    """G1 with the ONNX interface: (z, c) -> image, or (z) -> image when c_dim is 0."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z, c=None):
        if c is None:
            c = z[:, :0]  # [N, 0]
        return self.G(z, c)


class _E(nn.Module):
    """The encoder with the ONNX interface: image -> (z_t, c_t), or (z_t,) when c_dim is 0."""

    def __init__(self, E: nn.Module):
        super().__init__()
        self.E = E

    def forward(self, image):
        z_t, c_t = self.E(image)
        return (z_t, c_t) if self.E.c_dim else (z_t,)


class _G2(nn.Module):
    def __init__(self, G2: nn.Module):
        super().__init__()
        self.G2 = G2

    def forward(self, image, sketch, mask):
        return self.G2(image, sketch, mask)


# ---- the latent step with its backward pass ----------------------------------------------------
def _step_fn(G: nn.Module, groups: torch.Tensor):
    """latent_step as a function of the graph's inputs, in the contract's order (no c_t, no
    c_t_next when c_dim is 0); `groups` [C, C] becomes a constant of the graph."""
    if groups.shape[0]:
        return lambda *x: latent_step(G, groups, *x)

    def step(z_t, *rest):
        out = latent_step(G, groups, z_t, z_t[:, :0], *rest)
        return out[:1] + out[2:]
    return step


def _shape(node) -> tuple:
    val = node.meta.get("val")
    if val is None:
        raise ExportError(f"no shape recorded for {node}")
    return tuple(val.shape)


def flipped_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """The weight of the convolution that computes a stride-1 convolution's input gradient:
    [C_out, C_in / g, kh, kw] -> [C_in, C_out / g, kh, kw], in and out swapped per group,
    the kernel rotated by 180 degrees."""
    c_out, c_in_g = weight.shape[:2]
    w = weight.reshape(groups, c_out // groups, c_in_g, *weight.shape[2:]).transpose(1, 2)
    return w.reshape(groups * c_in_g, c_out // groups, *weight.shape[2:]).flip(2, 3).contiguous()


def conv_input_grads_to_forward_ops(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Rewrite each `aten.convolution_backward` whose weight and bias gradients are unused.

    Stride 1 (all of G1): the input gradient is a plain convolution of the output gradient
    with the flipped, in/out-swapped weight and padding d (k - 1) - p. That is exact, and
    ONNX Runtime runs Conv in its blocked layout, about twice as fast as ConvTranspose.
    Strided: the transposed convolution with the same weight, with the output_padding that
    recovers the input rows the strided forward conv never reached.
    Returns {"conv": n, "conv_transpose": n}; ExportError for a backward that needs the
    weight gradient (weights are frozen in the editor, never trained through ONNX).
    """
    aten = torch.ops.aten
    done = {"conv": 0, "conv_transpose": 0}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.convolution_backward.default:
            continue
        grad_out, inp, weight, _bias_sizes, stride, padding, dilation, transposed, out_pad, groups, mask = node.args
        users = {u: u.args[1] for u in node.users}
        if any(i != 0 and u.users for u, i in users.items()) or transposed:
            raise ExportError(f"{node}: convolution_backward needs weight/bias gradients or is transposed "
                              f"(output_mask {mask}); only frozen-weight input gradients can be exported")
        in_sz, out_sz, k = _shape(inp)[2:], _shape(grad_out)[2:], _shape(weight)[2:]
        pad_t = [d * (int(kk) - 1) - p for p, d, kk in zip(padding, dilation, k)]
        const_w = weight.op == "get_attr"
        with gm.graph.inserting_before(node):
            if all(st == 1 for st in stride) and all(p >= 0 for p in pad_t) and const_w:
                name = f"_grad_input_weight_{done['conv']}"
                gm.register_buffer(name, flipped_weight(getattr(gm, weight.target), groups))
                w_t = gm.graph.get_attr(name)
                new = gm.graph.call_function(aten.convolution.default, (grad_out, w_t, None, [1] * len(stride),
                                                                        pad_t, dilation, False, [0] * len(stride),
                                                                        groups))
                done["conv"] += 1
            else:
                # conv_transpose's output size is (o - 1) s - 2p + d (k - 1) + 1 + output_padding
                op = [int(i) - ((int(o) - 1) * st - 2 * p + d * (int(kk) - 1) + 1)
                      for i, o, st, p, d, kk in zip(in_sz, out_sz, stride, padding, dilation, k)]
                if any(x < 0 or x >= max(st, d) for x, st, d in zip(op, stride, dilation)):
                    raise ExportError(f"{node}: cannot express the input gradient as a transposed convolution")
                new = gm.graph.call_function(aten.convolution.default,
                                             (grad_out, weight, None, stride, padding, dilation, True, op, groups))
                done["conv_transpose"] += 1
        new.meta["val"] = node.meta["val"][0] if isinstance(node.meta.get("val"), (tuple, list)) else None
        for u, i in users.items():
            if i == 0:
                u.replace_all_uses_with(new)
            gm.graph.erase_node(u)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return done


def drop_empty_cat_inputs(gm: torch.fx.GraphModule) -> int:
    """Remove zero-width operands of `aten.cat` (c [N, 0] when c_dim is 0): zero-size tensors
    are legal ONNX but a fragile corner of ONNX Runtime. Returns the number removed."""
    n_done = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.cat.default:
            continue
        parts, dim = node.args[0], (node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0))
        keep = [p for p in parts if not (isinstance(p, torch.fx.Node) and _static_zero(p, dim))]
        if keep and len(keep) < len(parts):
            node.args = (keep, *node.args[1:])
            n_done += len(parts) - len(keep)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return n_done


def _static_zero(node, dim: int) -> bool:
    val = node.meta.get("val")
    if val is None or not hasattr(val, "shape"):
        return False
    size = val.shape[dim]
    return isinstance(size, int) and size == 0


def trace_latent_step(G: nn.Module, groups: np.ndarray, example: tuple) -> torch.fx.GraphModule:
    """The latent step of `G` (BatchNorm folded, frozen) with the schema's group matrix `groups`
    [C, C] as an ATen graph with its backward pass written in forward ops only. Shapes stay
    symbolic in the batch."""
    from torch.fx.experimental.proxy_tensor import make_fx
    fn = _step_fn(G, torch.from_numpy(np.asarray(groups, np.float32)))
    gm = make_fx(fn, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example)
    conv_input_grads_to_forward_ops(gm)
    drop_empty_cat_inputs(gm)
    return gm


class _Step(nn.Module):
    """The traced step under its graph input names: torch.export names a graph's inputs after
    `forward`'s signature, so the signature is the contract's (`neuedit.runtime.graphs`)."""

    def __init__(self, gm: torch.fx.GraphModule, c_dim: int):
        super().__init__()
        self.gm = gm
        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                   for n in GRAPHS["latent_step"].input_names(c_dim)]
        forward = lambda *x: tuple(self.gm(*x))  # noqa: E731
        forward.__signature__ = inspect.Signature(params[1:])
        self.forward = forward


# ---- export ------------------------------------------------------------------------------------
def optimize_graph(model) -> None:
    """Constant folding and clean-up of an `onnx_ir.Model`, in place.

    Not the exporter's `optimize=True`: onnxscript's default rewrite rules include
    "x + 0 -> x" matched with an absolute tolerance of 1e-8, which deletes Adam's
    `sqrt(v) + eps` (eps = 1e-8) and turns a zero gradient into 0/0 = NaN. ONNX Runtime
    fuses what is left when it loads the graph.
    """
    from onnx_ir.passes import common as passes
    from onnxscript import optimizer
    passes.InlinePass()(model)
    optimizer.fold_constants(model)
    for p in (passes.RemoveUnusedNodesPass(), passes.RemoveUnusedFunctionsPass(), passes.RemoveUnusedOpsetsPass(),
              passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
              passes.DeduplicateInitializersPass(), passes.CommonSubexpressionEliminationPass(),
              passes.RemoveUnusedNodesPass()):
        p(model)


def _export(module: nn.Module, args: tuple, path: Path, graph: str, c_dim: int, opset: int,
            metadata: dict[str, str]) -> Path:
    import onnx
    contract = GRAPHS[graph]
    names, outs = contract.input_names(c_dim), contract.output_names(c_dim)
    batch = torch.export.Dim("N", min=1, max=4096)
    dyn = tuple({0: batch} if p.batched else None for p in contract.input_ports(c_dim))
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" and similar chatter
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(module, args, None, dynamo=True, output_names=list(outs),
                                     dynamic_shapes=dyn, opset_version=opset, optimize=False, verbose=False)
        optimize_graph(prog.model)
    except Exception as e:
        raise ExportError(f"{path.name}: torch.onnx.export failed: {type(e).__name__}: {str(e)[:2000]}") from e
    finally:
        quiet.setLevel(level)
    model = prog.model_proto
    got_in, got_out = [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    if got_in != list(names) or got_out != list(outs):
        raise ExportError(f"{path.name}: exported inputs {got_in} / outputs {got_out}, expected "
                          f"{list(names)} / {list(outs)}")
    bn = [n.name for n in model.graph.node if n.op_type == "BatchNormalization"]
    if bn:
        raise ExportError(f"{path.name}: BatchNormalization nodes remain after folding: {bn[:3]}")
    for k, v in metadata.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    model.producer_name = "neuedit"
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save_model(model, str(tmp), save_as_external_data=False)
    tmp.replace(path)
    return path


def export_graph(bundle: bundle_mod.Bundle, graph: str, opset: int = OPSET, batch: int = 2,
                 path: str | Path | None = None) -> Path:
    """Export one graph of the contract ("g1", "g2", "latent_step", "encoder") of `bundle` into its
    folder (or to `path`)."""
    contract = GRAPHS[graph]
    net = contract.net
    G = fold_batchnorm(load_module(bundle, net))
    z_dim, c_dim, r = bundle.z_dim, bundle.c_dim, bundle.resolution
    ex = example_inputs(graph, z_dim, c_dim, r, n=batch)
    args = tuple(torch.from_numpy(a) for a in ex.values())
    if graph == "g1":
        module = _G1(G)
    elif graph == "g2":
        module = _G2(G)
    elif graph == "encoder":
        module = _E(G)
    else:
        module = _Step(trace_latent_step(G, group_matrix(bundle.schema, c_dim), args), c_dim)
    meta = {k: v for k, v in bundle.meta.items() if k != "onnx"}
    metadata = {
        META_BUNDLE: json.dumps(meta, sort_keys=True),
        META_GRAPH: graph,
        META_WEIGHTS: file_digest(bundle.file(net)),
        META_C_INPUT: "present" if c_dim else "dropped",
        META_EXPORT: json.dumps({"opset": opset, "torch": torch.__version__, "batchnorm": "folded",
                                 "inputs": list(contract.input_names(c_dim)),
                                 "outputs": list(contract.output_names(c_dim))}),
    }
    path = bundle.path / contract.file if path is None else Path(path)
    return _export(module, args, path, graph, c_dim, opset, metadata)


def copy_bundle(src: bundle_mod.Bundle, out: str | Path) -> bundle_mod.Bundle:
    """Copy a bundle's bundle.json and the weight files it names into `out` (no ONNX)."""
    out = Path(out)
    if out.resolve() == src.path.resolve():
        return src
    out.mkdir(parents=True, exist_ok=True)
    for key, net in src.info.networks.items():
        shutil.copy2(src.file(key), out / net.weights)
    return bundle_mod.write_meta(out, src.info.without_graphs())


def export_bundle(bundle_dir: str | Path, out: str | Path | None = None, opset: int = OPSET, check: bool = True,
                  tol: float | dict | None = None, log=print) -> bundle_mod.Bundle:
    """Export G1, G2 (if present) and the latent step into the bundle (or a copy in `out`),
    check parity, and record the graphs in bundle.json's "onnx".

    The graphs are written under temporary names and put in place only after parity holds
    for all of them: a ParityError leaves the bundle as it was.
    """
    b = bundle_mod.read(bundle_dir)
    if out is not None:
        b = copy_bundle(b, out)
    graphs = [g for g, c in GRAPHS.items() if c.net in b.info.networks]  # every graph whose network it has
    staged = {g: b.path / f".{GRAPHS[g].file}.new" for g in graphs}
    try:
        for g in graphs:
            p = export_graph(b, g, opset, path=staged[g])
            log(f"exported {g} ({p.stat().st_size / 1e6:.1f} MB)")
        if check:
            for g in graphs:
                log(check_graph(b, g, tol=tol, path=staged[g]).summary())
        for g in graphs:
            staged[g].replace(b.path / GRAPHS[g].file)
    finally:
        for p in staged.values():
            p.unlink(missing_ok=True)
    b = bundle_mod.write_meta(b.path, replace(b.info, onnx={g: GRAPHS[g].file for g in graphs}))
    log(f"wrote {', '.join(GRAPHS[g].file for g in graphs)} into {b.path}")
    return b


def serve_only(b: bundle_mod.Bundle) -> bundle_mod.Bundle:
    """Drop the safetensors weights from an exported bundle (the ONNX graphs carry them) and
    list the files that remain in bundle.json: the small, torch-free form of docs/method.md §5.
    The networks keep their architecture but name no weights file: a bundle names only files it has."""
    if not b.info.onnx:
        raise ExportError(f"{b.path} has no ONNX graphs; export it before stripping its weights")
    nets = {k: replace(n, weights=None) for k, n in b.info.networks.items()}
    files = sorted(["bundle.json", *b.info.onnx.values()])
    # bundle.json first, so no moment leaves it naming a weights file already deleted
    b = bundle_mod.write_meta(b.path, replace(b.info, networks=nets, files=files))
    for f in b.path.glob("*.safetensors"):
        f.unlink()
    return b
