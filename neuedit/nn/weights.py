"""A bundle's networks as PyTorch modules: save a module's weights into a bundle folder, and
rebuild a network from its bundle.json spec with its weights (docs/method.md §5). The metadata
itself (`neuedit.runtime.bundle`) stays torch-free."""
from __future__ import annotations

import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from neuedit.nn.nets import DetailG1, build
from neuedit.runtime.bundle import Bundle, BundleError, NetSpec
from neuedit.runtime.graphs import GRAPHS, Detail


def save_module(bundle_dir: str | Path, key: str, module, spec: dict) -> NetSpec:
    """Save `module`'s state dict as <key>.safetensors; returns the bundle.json entry for it."""
    p = Path(bundle_dir)
    p.mkdir(parents=True, exist_ok=True)
    fname = f"{key}.safetensors"
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = p / f".{fname}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, p / fname)
    return NetSpec(spec["name"], spec.get("kwargs", {}), fname)


def load_module(bundle: Bundle, key: str, device="cpu"):
    """Rebuild network `key` ("g1", "g2", "d") from its spec and load its weights, in eval mode."""
    net = bundle.info.networks.get(key)
    if net is None:
        raise BundleError(f"bundle {bundle.path} has no {key!r} network")
    m = build(net.spec)
    path = bundle.file(key)
    try:
        m.load_state_dict(load_file(str(path), device=str(device)))
    except RuntimeError as e:
        raise BundleError(f"{path}: weights do not fit {net.name} {net.kwargs}: {e}") from None
    return m.to(device).eval().requires_grad_(False)


def load_graph_net(bundle: Bundle, graph: str, device="cpu"):
    """The PyTorch module behind one graph of the contract (`neuedit.runtime.graphs.GRAPHS`): its
    network, and for g1_detail G1 wrapped as `DetailG1` at the bundle's detail map size."""
    net = load_module(bundle, GRAPHS[graph].net, device)
    if graph == "g1_detail":
        detail = Detail.of(bundle.meta)
        if detail is None:
            raise BundleError(f"bundle {bundle.path} has no photo encoder, so no detail map for g1_detail")
        net = DetailG1(net, detail.size).eval()
    return net
