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
  (threshold, tanh, sigmoid backward, pixel_unshuffle) have ONNX translations. Nearest
  upsampling, which `make_fx` decomposes into a gather and a scatter-add, goes back to Resize
  and a depthwise block-sum convolution (`nearest_upsampling_to_resize`), and the batch-sized
  seed of the backward pass is broadcast, not expanded (`expand_by_broadcast`).
- Reshape and Expand targets computed from the batch become constants with -1 (or 1) for it
  (`static_batch_shapes`): the batch axis stays dynamic for ONNX Runtime, and importers that
  fix shapes at load (OpenCV DNN) read the graphs. For OpenCV DNN 4 the latent step also needs
  constant-shape Expands as broadcasting Muls (`expand_as_mul`), no And (`and_to_nested_where`),
  its Concat operands broadcast alike (`broadcast_concat_operands`) and no input that nothing
  reads (`consume_unused_inputs`); `latent_step` itself keeps per-sample values [N, 1]
  (docs/export.md).
- Each graph gets a dynamic batch axis "N", named inputs and outputs (the graph contract,
  `neuedit.runtime.graphs`), and the bundle.json in its metadata. For c_dim 0 the `c` / `c_t`
  inputs (and `c_t_next`) are dropped: the graph builds the empty tensor itself.
"""
from __future__ import annotations

import copy
import inspect
import json
import logging
import math
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuedit.nn.weights import load_graph_net, load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.nn.backend import latent_step
from neuedit.runtime.engine import file_digest
from neuedit.runtime.graphs import (GRAPHS, META_BUNDLE, META_C_INPUT, META_EXPORT, META_GRAPH, META_WEIGHTS, Detail,
                                    example_inputs)
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
    for g in [s for s in m.modules() if isinstance(s, (Generator, UpGenerator))]:  # (DetailG1 holds one)
        if isinstance(g.fc_bn[0], nn.BatchNorm2d):
            g.fc = _fold_into(g.fc, *_bn_affine(g.fc_bn[0]), repeat=g.base * g.base)  # view(-1, ch, base, base)
            g.fc_bn[0] = nn.Identity()
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


class _G1DetailNoC(nn.Module):
    """`DetailG1` as (z, r) when c_dim is 0 (the exported inputs are named after the arguments;
    with a condition `DetailG1`'s own (z, c, r) is the interface)."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z, r):
        return self.G(z, z[:, :0], r)


class _E(nn.Module):
    """The encoder with the ONNX interface: image -> (z_t, c_t, r), or (z_t, r) when c_dim is 0."""

    def __init__(self, E: nn.Module):
        super().__init__()
        if not E.detail:
            raise ExportError("the encoder predicts no detail map (the contract's r): retrain it with "
                              "`neuedit train-encoder` (detail > 0)")
        self.E = E

    def forward(self, image):
        z_t, c_t, r = self.E(image)
        return (z_t, c_t, r) if self.E.c_dim else (z_t, r)


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


def _const_value(node, memo: dict):
    """The value of an FX node computed from constants alone (the index tensors `make_fx` builds
    with arange), else None."""
    if not isinstance(node, torch.fx.Node):
        return node
    if node not in memo:
        memo[node] = None
        if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
            # placeholders, weights (get_attr) and batch sizes (sym_size) are not constants
            args = torch.fx.node.map_aggregate(node.args, lambda a: _const_value(a, memo))
            kwargs = torch.fx.node.map_aggregate(node.kwargs, lambda a: _const_value(a, memo))
            if all(memo.get(a) is not None for a in node.all_input_nodes):
                with torch.no_grad():
                    memo[node] = node.target(*args, **kwargs)
    return memo[node]


def _nearest_scale(index, n_in, n_out) -> int | None:
    """s when `index` (as make_fx traces nearest interpolation) is i // s for i < n_out = s n_in."""
    if not (isinstance(n_in, int) and isinstance(n_out, int)) or n_in <= 0 or n_out % n_in or index is None:
        return None
    s = n_out // n_in
    want = torch.arange(n_out) // s
    return s if index.numel() == n_out and torch.equal(index.reshape(-1).long(), want) else None


def nearest_upsampling_to_resize(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Rewrite the nearest-neighbour upsampling `make_fx` decomposes (UpGenerator's nn.Upsample).

    The forward `_unsafe_index(x, [None, None, i // s, j // s])` becomes `upsample_nearest2d`
    (ONNX Resize, as in g1.onnx) and its backward, a scatter-add into zeros of the input's
    shape (`_unsafe_index_put(new_zeros(...), ..., accumulate=True)`: ONNX ConstantOfShape on
    the batch, Transpose, ScatterND), becomes the sum over each s x s block: a depthwise
    convolution with a weight of ones and stride s. Same values (the block sum in another order), no
    gather/scatter, and no tensor whose shape is computed from the batch. Returns
    {"forward": n, "backward": n}; other index ops are left alone.
    """
    aten = torch.ops.aten
    memo, done = {}, {"forward": 0, "backward": 0}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in (aten._unsafe_index.Tensor, aten._unsafe_index_put.default):
            continue
        fwd = node.target == aten._unsafe_index.Tensor
        if fwd:
            x, idx = node.args[:2]
            small, big = _shape(x), _shape(node)
        else:
            base, idx, g = node.args[:3]
            accumulate = node.args[3] if len(node.args) > 3 else node.kwargs.get("accumulate", False)
            if not accumulate or base.op != "call_function" or base.target not in (aten.new_zeros.default,
                                                                                   aten.zeros.default):
                continue
            small, big = _shape(base), _shape(g)
        if len(idx) != 4 or idx[0] is not None or idx[1] is not None or len(small) != 4 or len(big) != 4:
            continue
        ih, iw = _const_value(idx[2], memo), _const_value(idx[3], memo)
        if ih is None or iw is None or tuple(ih.shape) != (big[2], 1) or tuple(iw.shape) != (big[3],):
            continue
        sh, sw = _nearest_scale(ih, small[2], big[2]), _nearest_scale(iw, small[3], big[3])
        if sh is None or sw is None:
            continue
        with gm.graph.inserting_before(node):
            if fwd:
                new = gm.graph.call_function(aten.upsample_nearest2d.vec, (x, None, [float(sh), float(sw)]))
            else:
                # a depthwise convolution with ones, not avg_pool2d * s^2: OpenCV DNN 4 gives an
                # AveragePool behind a Reshape its input's size at load (docs/export.md)
                name = f"_block_sum_weight_{done['backward']}"
                g_val = g.meta["val"]
                gm.register_buffer(name, torch.ones(small[1], 1, sh, sw, dtype=g_val.dtype))
                w = gm.graph.get_attr(name)
                new = gm.graph.call_function(aten.convolution.default, (g, w, None, [sh, sw], [0, 0], [1, 1], False,
                                                                        [0, 0], small[1]))
        new.meta["val"] = node.meta.get("val")
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        done["forward" if fwd else "backward"] += 1
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return done


def expand_by_broadcast(gm: torch.fx.GraphModule) -> int:
    """Rewrite `expand(x, sizes)` whose sizes hold the batch but whose x has no batch axis (the
    seed of `loss.sum()`'s backward: ones_like(sum).expand([N])) as `where(ref < ref, ref, x)`,
    ref an earlier tensor of exactly the expanded shape: `ref < ref` is false for every value
    (NaN included), so the result is x broadcast to ref's shape, whatever ref holds. ONNX
    Expand needs the batch as a tensor (Shape), which importers that fix shapes at load cannot
    compute; Where broadcasts. (A constant True condition would do the same, but OpenCV DNN
    reads no BOOL initializer.) Returns the number rewritten."""
    aten = torch.ops.aten
    n_done, seen = 0, []
    for node in list(gm.graph.nodes):
        val = node.meta.get("val")
        if node.op == "call_function" and node.target == aten.expand.default and isinstance(val, torch.Tensor):
            x, sizes = node.args[:2]
            x_val = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
            dynamic = any(not isinstance(s, int) for s in sizes)
            if dynamic and isinstance(x_val, torch.Tensor) and all(isinstance(d, int) for d in x_val.shape):
                want = [str(d) for d in val.shape]  # symbols by name: no guard on the batch
                ref = next((r for r in seen if [str(d) for d in r.meta["val"].shape] == want
                            and r.meta["val"].dtype == val.dtype), None)
                if ref is not None:
                    with gm.graph.inserting_before(node):
                        never = gm.graph.call_function(aten.lt.Tensor, (ref, ref))
                        new = gm.graph.call_function(aten.where.self, (never, ref, x))
                    never.meta["val"] = torch.empty_like(val, dtype=torch.bool)
                    new.meta["val"] = val
                    node.replace_all_uses_with(new)
                    gm.graph.erase_node(node)
                    n_done += 1
                    continue
        if isinstance(val, torch.Tensor) and node.op in ("placeholder", "call_function"):
            seen.append(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return n_done


def pixel_unshuffle_to_conv(gm: torch.fx.GraphModule) -> int:
    """Rewrite `pixel_unshuffle(x, r)` (PixelShuffle's backward, in Generator) as a depthwise
    convolution with stride r whose one-hot weight picks pixel (i, j) of each r x r block of
    channel c for output channel c r^2 + i r + j: the same values exactly (one product by 1 per
    output). The exporter writes pixel_unshuffle as Shape, Div, Concat and 6-D Reshapes of sizes
    computed from the input, which OpenCV DNN cannot import. Returns the number rewritten."""
    aten = torch.ops.aten
    n_done = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.pixel_unshuffle.default:
            continue
        x, r = node.args[:2]
        c = _shape(x)[1]
        if not isinstance(c, int) or not isinstance(r, int):
            continue
        w = torch.zeros(c * r * r, 1, r, r, dtype=x.meta["val"].dtype)
        for i in range(r):
            for j in range(r):
                w[i * r + j::r * r, 0, i, j] = 1.0
        name = f"_pixel_unshuffle_weight_{n_done}"
        gm.register_buffer(name, w)
        with gm.graph.inserting_before(node):
            w_t = gm.graph.get_attr(name)
            new = gm.graph.call_function(aten.convolution.default, (x, w_t, None, [r, r], [0, 0], [1, 1], False,
                                                                    [0, 0], c))
        new.meta["val"] = node.meta.get("val")
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        n_done += 1
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return n_done


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
    nearest_upsampling_to_resize(gm)
    pixel_unshuffle_to_conv(gm)
    expand_by_broadcast(gm)
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


# ---- batch-independent shape tensors -------------------------------------------------------------
_SHAPE_OPS = {"Shape", "Squeeze", "Unsqueeze", "Reshape", "Concat", "Gather", "Slice", "Cast", "Identity"}


def _int_attr(node, name: str, default):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _shape_entries(value, memo: dict):
    """The int64 tensor `value` as a numpy object array whose entries are ints or the name of a
    symbolic dimension ("N"), when it is a constant or computed from `Shape` by the ops in
    _SHAPE_OPS with constant operands; None otherwise."""
    if value is None:
        return None
    if value in memo:
        return memo[value]
    memo[value] = None  # cycles cannot happen in a DAG, but keep recursion honest
    out = None
    if value.const_value is not None:
        arr = value.const_value.numpy()
        if arr.dtype.kind in "iu" and arr.size <= 64:
            out = arr.astype(object)
    elif (node := value.producer()) is not None and node.op_type in _SHAPE_OPS and node.domain in ("", "ai.onnx"):
        ins = [_shape_entries(v, memo) if node.op_type != "Shape" else None for v in node.inputs]
        op = node.op_type
        try:
            if op == "Shape":
                shape = node.inputs[0].shape
                if shape is not None and all(isinstance(d, int) or d.value is not None for d in shape):
                    dims = [d if isinstance(d, int) else str(d.value) for d in shape]
                    start, end = _int_attr(node, "start", 0), _int_attr(node, "end", None)
                    out = np.array(dims[start:end], dtype=object).reshape(-1)
            elif any(a is None for a in ins[:1]):
                out = None
            elif op in ("Identity", "Cast"):
                out = ins[0] if op == "Identity" or _int_attr(node, "to", 0) == 7 else None  # 7: INT64
            elif op == "Squeeze":
                axes = ins[1] if len(ins) > 1 else _int_attr(node, "axes", None)
                out = np.squeeze(ins[0], axis=None if axes is None else tuple(int(a) for a in axes))
            elif op == "Unsqueeze":
                axes = ins[1] if len(ins) > 1 else _int_attr(node, "axes", None)
                out, rank = ins[0], ins[0].ndim + len(axes)  # negative axes count in the output
                for a in sorted(int(a) % rank for a in axes):
                    out = np.expand_dims(out, a)
            elif op == "Reshape" and ins[1] is not None and all(isinstance(s, int) and s != 0 for s in ins[1]):
                out = ins[0].reshape([int(s) for s in ins[1]])
            elif op == "Concat" and all(a is not None for a in ins):
                out = np.concatenate(ins, axis=_int_attr(node, "axis", 0))
            elif op == "Gather" and ins[1] is not None and all(isinstance(i, int) for i in ins[1].flat):
                out = np.take(ins[0], ins[1].astype(np.int64), axis=_int_attr(node, "axis", 0))
            elif op == "Slice" and ins[0].ndim == 1 and all(a is not None for a in ins[1:]):
                starts, ends = ins[1], ins[2]
                axes = ins[3] if len(ins) > 3 else [0]
                steps = ins[4] if len(ins) > 4 else [1]
                if len(starts) == 1 and list(axes) in ([0], [-1]):
                    n = len(ins[0])  # clamp the int64 "to the end" sentinels
                    out = ins[0][slice(max(-n - 1, min(n, int(starts[0]))), max(-n - 1, min(n, int(ends[0]))),
                                       int(steps[0]))]
        except (ValueError, TypeError, IndexError):  # numpy's AxisError is a ValueError
            out = None
    memo[value] = out
    return out


def _dims(value) -> list | None:
    shape = value.shape
    if shape is None or not all(isinstance(d, int) or d.value is not None for d in shape):
        return None
    return [d if isinstance(d, int) else str(d.value) for d in shape]


def _static_reshape(data_dims: list | None, target: list) -> list | None:
    """Reshape's target `target` (ints and symbolic names) with its one symbolic entry as -1,
    resolving a -1 already there from the input's shape `data_dims`; None when not possible."""
    sym = [i for i, s in enumerate(target) if isinstance(s, str)]
    ints = [s for s in target if isinstance(s, int)]
    if len(sym) != 1 or 0 in ints or ints.count(-1) > 1:
        return None
    out = list(target)
    if -1 in ints:  # e.g. view(x, [N, -1]): the -1 is a fixed size when x's other dims are
        if data_dims is None or [d for d in data_dims if isinstance(d, str)] != [target[sym[0]]]:
            return None
        known = math.prod(d for d in data_dims if isinstance(d, int))
        rest = math.prod(s for s in ints if s != -1)
        if rest == 0 or known % rest:
            return None
        out[out.index(-1)] = known // rest
    out[sym[0]] = -1
    return out


def _static_expand(data_dims: list | None, target: list) -> list | None:
    """Expand's target with each symbolic entry as 1 where the input already has that axis
    (broadcasting keeps it); None when an entry would have to grow the input."""
    if data_dims is None:
        return None
    out, off = list(target), len(target) - len(data_dims)
    for i, s in enumerate(target):
        if isinstance(s, str):
            if i < off or data_dims[i - off] != s:
                return None
            out[i] = 1
    return out


def static_batch_shapes(graph) -> dict[str, int]:
    """Make batch-computed Reshape and Expand targets constants, in place (an `onnx_ir.Graph`).

    The exporter writes `view(-1, C, H, W)`'s functionalised copies (an in-place ReLU on a view
    writes back to the base) and every reshape in the latent step's backward pass with the
    batch taken from the graph: Shape(x)[0] -> Squeeze -> Concat(N, 256, 4, 4) -> Reshape.
    ONNX Runtime runs that, but importers that fix shapes at load (OpenCV DNN: "dynamic 'zero'
    shapes are not supported" at the Shape) do not. Where the only non-constant entry of such
    a target is one batch dimension, a Reshape's becomes -1 (and a -1 beside it its fixed size)
    and an Expand's 1 where the input already has the axis: the same result for every batch,
    the batch axis stays dynamic. Returns {"reshape": n, "expand": n} rewritten.
    """
    import onnx_ir as ir
    memo, done = {}, {"reshape": 0, "expand": 0}
    for node in list(graph):
        if node.op_type not in ("Reshape", "Expand") or node.domain not in ("", "ai.onnx") or len(node.inputs) < 2:
            continue
        shape_in = node.inputs[1]
        if shape_in is None or shape_in.const_value is not None:
            continue
        target = _shape_entries(shape_in, memo)
        if target is None or target.ndim != 1:
            continue
        target = [s if isinstance(s, str) else int(s) for s in target]
        if node.op_type == "Reshape":
            new, key = _static_reshape(_dims(node.inputs[0]), target), "reshape"
        else:
            new, key = _static_expand(_dims(node.inputs[0]), target), "expand"
        if new is None:
            continue
        const = ir.Value(name=f"{node.outputs[0].name}_static_shape", shape=ir.Shape([len(new)]),
                         type=ir.TensorType(ir.DataType.INT64), const_value=ir.tensor(np.array(new, np.int64)))
        graph.register_initializer(const)
        node.replace_input_with(1, const)
        done[key] += 1
    return done


def expand_as_mul(graph) -> int:
    """Rewrite each float `Expand(x, shape)` whose shape is a constant (after `static_batch_shapes`)
    as `Mul(x, ones(shape))`, in place (an `onnx_ir.Graph`): the same broadcast, the same values
    (x * 1). OpenCV DNN 4 imports an Expand of a computed tensor along one axis as one Identity
    layer per output element and a Concat (the latent step's [N, 1] -> [N, 3 R R]: 12288 layers
    at 64 px), whose shapes it fixes at load from the batch it sees there; later layers then get
    wrong sizes at load (an AveragePool keeping its input's size). A Mul broadcasts in one layer.
    Returns the number rewritten."""
    import onnx_ir as ir
    n_done = 0
    for node in list(graph):
        if node.op_type != "Expand" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
            continue
        x, shape = node.inputs
        if shape is None or shape.const_value is None or x is None or x.type is None:
            continue
        if x.type.dtype != ir.DataType.FLOAT:
            continue
        target = [int(d) for d in shape.const_value.numpy().reshape(-1)]
        if any(d < 1 for d in target):
            continue
        ones = ir.Value(name=f"{node.outputs[0].name}_ones", shape=ir.Shape(target),
                        type=ir.TensorType(ir.DataType.FLOAT), const_value=ir.tensor(np.ones(target, np.float32)))
        graph.register_initializer(ones)
        mul = ir.node("Mul", inputs=[x, ones], name=f"{node.name}_as_mul")
        out = node.outputs[0]
        mul.outputs[0].shape, mul.outputs[0].type = out.shape, out.type
        graph.insert_before(node, mul)
        out.replace_all_uses_with(mul.outputs[0])
        if out in graph.outputs:  # keep the graph's output name on the new value
            graph.outputs[graph.outputs.index(out)] = mul.outputs[0]
        name = out.name
        graph.remove(node, safe=True)
        mul.outputs[0].name = name
        n_done += 1
    return n_done


def and_to_nested_where(graph) -> int:
    """Rewrite `Where(And(a, b), x, y)` as `Where(a, Where(b, x, y), y)`, in place (an
    `onnx_ir.Graph`): the same result for every a, b. OpenCV DNN 4 has no And layer ("Can't
    create layer ... of type And"), and the latent step's clamp backward (`c~` clamped to
    +-LOGIT_MAX) masks its gradient with one. An And used by anything but a Where's condition
    is left alone. Returns the number of Where nodes rewritten."""
    import onnx_ir as ir
    n_done = 0
    for node in list(graph):
        if node.op_type != "And" or node.domain not in ("", "ai.onnx"):
            continue
        uses = list(node.outputs[0].uses())
        if not uses or node.outputs[0] in graph.outputs or any(
                u.op_type != "Where" or u.domain not in ("", "ai.onnx") or i != 0 for u, i in uses):
            continue
        a, b = node.inputs
        for where, _ in uses:
            _, x, y = where.inputs
            inner = ir.node("Where", inputs=[b, x, y], name=f"{where.name}_inner")
            inner.outputs[0].type = where.outputs[0].type
            graph.insert_before(where, inner)
            where.replace_input_with(0, a)
            where.replace_input_with(1, inner.outputs[0])
            n_done += 1
        graph.remove(node, safe=True)
    return n_done


def consume_unused_inputs(graph) -> int:
    """Give each graph input that no node reads an Identity whose output nothing reads, in place
    (an `onnx_ir.Graph`; run it after the passes that remove unused nodes). The contract keeps
    `lr_c` and `edit_c` in the latent step of a bundle without c (c_dim 0), where nothing uses
    them; OpenCV DNN 4 cannot run a graph with such an input (forward fails with "!inp.empty()"
    when it is not set and "inputs.size() == requiredOutputs" when it is). ONNX Runtime drops
    the Identity. Returns the number of inputs given one."""
    import onnx_ir as ir
    n_done = 0
    for v in graph.inputs:
        if not list(v.uses()):
            node = ir.node("Identity", inputs=[v], name=f"{v.name}_unused")
            node.outputs[0].name = f"{v.name}_unused"
            node.outputs[0].shape, node.outputs[0].type = v.shape, v.type
            graph.append(node)
            n_done += 1
    return n_done


def broadcast_concat_operands(graph) -> int:
    """Multiply each computed operand of a Concat by a constant 1, in place (an `onnx_ir.Graph`);
    a Concat whose operands are all graph inputs or constants is left alone.

    For importers that fix shapes at load: OpenCV DNN 4 gives the dynamic batch the size 0 when it
    reads a graph, and its broadcasting ops (Add, Mul, Div, Where, ...) turn that 0 into 1
    (`findCommonShape` takes max(1, 0)) while others (Tanh, Gemm, Slice) keep it; a Concat of one
    of each, such as the latent step's cat(tanh(z), softmax(c)), then fails at load ("Inconsistent
    shape for ConcatLayer"). Broadcast through a Mul, every operand has the same size at load; the
    values are the same. Returns the number of operands rewritten."""
    import onnx_ir as ir
    inputs = set(graph.inputs)
    one, n_done = None, 0
    for node in list(graph):
        if node.op_type != "Concat" or node.domain not in ("", "ai.onnx"):
            continue
        computed = [i for i, v in enumerate(node.inputs) if v is not None and v.const_value is None and v not in inputs]
        if not computed or len(computed) + sum(v in inputs for v in node.inputs) < 2:
            continue
        for i in computed:
            v = node.inputs[i]
            if v.type is None or v.type.dtype != ir.DataType.FLOAT:
                continue
            if one is None:
                one = ir.Value(name="broadcast_one", shape=ir.Shape([]), type=ir.TensorType(ir.DataType.FLOAT),
                               const_value=ir.tensor(np.array(1.0, np.float32)))
                graph.register_initializer(one)
            mul = ir.node("Mul", inputs=[v, one], name=f"{node.name}_broadcast_{i}")
            mul.outputs[0].name = f"{v.name}_broadcast"
            mul.outputs[0].shape, mul.outputs[0].type = v.shape, v.type
            graph.insert_before(node, mul)
            node.replace_input_with(i, mul.outputs[0])
            n_done += 1
    return n_done


# ---- export ------------------------------------------------------------------------------------
def optimize_graph(model, align_concats: bool = False) -> None:
    """Constant folding and clean-up of an `onnx_ir.Model`, in place.

    Not the exporter's `optimize=True`: onnxscript's default rewrite rules include
    "x + 0 -> x" matched with an absolute tolerance of 1e-8, which deletes Adam's
    `sqrt(v) + eps` (eps = 1e-8) and turns a zero gradient into 0/0 = NaN. ONNX Runtime
    fuses what is left when it loads the graph. `static_batch_shapes` makes the reshape
    targets computed from the batch constants, so no Shape op is left for OpenCV DNN to refuse;
    `expand_as_mul`, `and_to_nested_where`, `consume_unused_inputs` and (with `align_concats`,
    the latent step's export: g2's feature-map concats load as they are and would only get
    slower) `broadcast_concat_operands` are what else OpenCV DNN 4 needs (docs/export.md).
    """
    from onnx_ir.passes import common as passes
    from onnxscript import optimizer
    passes.InlinePass()(model)
    optimizer.fold_constants(model)
    static_batch_shapes(model.graph)
    expand_as_mul(model.graph)
    and_to_nested_where(model.graph)
    if align_concats:
        broadcast_concat_operands(model.graph)
    for p in (passes.RemoveUnusedNodesPass(), passes.RemoveUnusedFunctionsPass(), passes.RemoveUnusedOpsetsPass(),
              passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
              passes.DeduplicateInitializersPass(), passes.CommonSubexpressionEliminationPass(),
              passes.RemoveUnusedNodesPass()):
        p(model)
    consume_unused_inputs(model.graph)


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
        optimize_graph(prog.model, align_concats=graph == "latent_step")
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
    """Export one graph of the contract ("g1", "g2", "latent_step", "encoder", "g1_detail") of `bundle` into its
    folder (or to `path`)."""
    contract = GRAPHS[graph]
    net = contract.net
    G = fold_batchnorm(load_graph_net(bundle, graph))
    z_dim, c_dim, r = bundle.z_dim, bundle.c_dim, bundle.resolution
    ex = example_inputs(graph, z_dim, c_dim, r, n=batch, detail=Detail.of(bundle.meta))
    args = tuple(torch.from_numpy(a) for a in ex.values())
    if graph == "g1":
        module = _G1(G)
    elif graph == "g1_detail":
        module = G if c_dim else _G1DetailNoC(G)
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
    graphs = [g for g, c in GRAPHS.items() if c.exported_for(b.info.networks)]  # every graph whose networks it has
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
