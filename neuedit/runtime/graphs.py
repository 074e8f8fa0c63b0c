"""The graph contract: what each ONNX graph of a bundle takes and returns (docs/method.md §5).

One entry per graph in `GRAPHS`: its file, the network whose weights it holds, its inputs and
outputs (name, named axes, dtype) in graph order, and the parity tolerance of each output.
The export writes graphs to this contract, the parity check feeds them `example_inputs`, the
engine validates loaded graphs against it, and the editing core builds the latent step's feeds
from `StepFeeds` (whose fields *are* the step's inputs). Adding a graph is one entry here plus
its network.

Axes: "N" the batch (dynamic), "Z" z_dim, "C" c_dim, "W" = Z + C, "R" the resolution, "F" and
"S" the channels and side of the photo detail map (`Detail`: the encoder's `r`, added to G1's
S x S features); ints are fixed sizes; () is a scalar. Ports whose axes contain "C" (and `c_t_next`) are dropped
from graphs of a bundle with c_dim 0: zero-size tensors are a fragile corner of ONNX Runtime.
numpy only: the server and the browser's build read this module.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from neuedit.errors import UsageError

DTYPE = "float32"   # every input and output
ORT_TYPE = "tensor(float)"  # how ONNX Runtime names DTYPE in a session's inputs
ATOL = 1e-4         # parity tolerance, absolute, fp32, of an output that names none

# ONNX metadata every exported graph carries; the engine checks them at load
META_BUNDLE = "neuedit_bundle"     # bundle.json (without "onnx") as JSON
META_GRAPH = "neuedit_graph"       # the graph's key in GRAPHS
META_WEIGHTS = "neuedit_weights"   # sha256 of the safetensors file the weights came from
META_C_INPUT = "neuedit_c_input"   # "present", or "dropped" when c_dim is 0
META_EXPORT = "neuedit_export"     # JSON: opset, torch version, folded BatchNorms, names


@dataclass(frozen=True)
class Port:
    """One input or output: its name and named axes (see the module docstring)."""
    name: str
    axes: tuple = ()
    doc: str = ""

    @property
    def needs_c(self) -> bool:
        return "C" in self.axes or self.name == "c_t_next"

    @property
    def batched(self) -> bool:
        return bool(self.axes) and self.axes[0] == "N"

    def shape(self, z_dim: int, c_dim: int, resolution: int, detail: "Detail | None" = None) -> tuple:
        """Concrete shape, None for the batch axis."""
        f, s = (detail.channels, detail.size) if detail else (None, None)
        sizes = {"N": None, "Z": z_dim, "C": c_dim, "W": z_dim + c_dim, "R": resolution, "F": f, "S": s}
        return tuple(sizes[a] if isinstance(a, str) else a for a in self.axes)


@dataclass(frozen=True)
class Detail:
    """A photo's detail map r [N, channels, size, size]: what the encoder predicts beside (z, c) and
    `g1_detail` adds to G1's size x size features (docs/method.md, "Photos")."""
    channels: int
    size: int

    @classmethod
    def of(cls, meta: dict) -> "Detail | None":
        """The detail map of a bundle (its bundle.json as a dict), None without a photo encoder."""
        kw = (meta.get("e") or {}).get("kwargs", {})
        return cls(*kw["detail"]) if kw.get("detail") else None


def _port(*axes, doc: str = ""):
    """A `StepFeeds` field: its axes travel in the field's metadata."""
    return field(metadata={"axes": axes, "doc": doc})


@dataclass
class StepFeeds:
    """The inputs of one latent-editor step (`latent_step.onnx`, `neuedit.nn.backend.latent_step`),
    in graph order: the editing core fills one per step, a backend runs it."""
    z_t: np.ndarray = _port("N", "Z", doc="arctanh(z)")
    c_t: np.ndarray = _port("N", "C", doc="c's logits, a softmax per exclusive group")
    sketch: np.ndarray = _port("N", 3, "R", "R", doc="stroke colours in [-1, 1]")
    mask: np.ndarray = _port("N", 1, "R", "R", doc="stroke weights in [0, 1]")
    lr: np.ndarray = _port(doc="step size of z~")
    lr_c: np.ndarray = _port(doc="step size of c~")
    m: np.ndarray = _port("N", "W", doc="Adam's first moment")
    v: np.ndarray = _port("N", "W", doc="Adam's second moment")
    t: np.ndarray = _port(doc="Adam's step count")
    adam: np.ndarray = _port(doc="1: Adam, 0: plain gradient descent")
    z_anchor: np.ndarray = _port("N", "Z", doc="z~ the anchor pulls toward")
    anchor: np.ndarray = _port(doc="weight of the pull toward z_anchor")
    edit_c: np.ndarray = _port(doc="1: c moves, 0: c held")

    def as_dict(self, c_dim: int) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in LATENT_STEP.input_names(c_dim)}


@dataclass
class StepOutputs:
    """The outputs of one latent-editor step, in graph order (`c_t_next` is None without c)."""
    z_t_next: np.ndarray = _port("N", "Z")
    c_t_next: np.ndarray | None = _port("N", "C")
    image: np.ndarray = _port("N", 3, "R", "R", doc="G1 at the input state")
    dist: np.ndarray = _port("N", doc="Dist at the input state")
    m_next: np.ndarray = _port("N", "W")
    v_next: np.ndarray = _port("N", "W")
    t_next: np.ndarray = _port()

    @classmethod
    def from_dict(cls, outs: dict) -> "StepOutputs":
        return cls(**{f.name: outs.get(f.name) for f in dataclasses.fields(cls)})


def _ports(cls) -> tuple:
    return tuple(Port(f.name, f.metadata["axes"], f.metadata["doc"]) for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class Graph:
    name: str                     # key in GRAPHS and the META_GRAPH value
    file: str                     # file name inside the bundle
    net: str                      # the bundle network whose weights the graph holds
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    tol: dict = field(default_factory=dict)  # output -> parity tolerance (ATOL otherwise)
    needs: tuple = ()             # the bundle networks the graph is exported for (default: `net`)

    def __post_init__(self):
        if not self.needs:
            object.__setattr__(self, "needs", (self.net,))

    def input_ports(self, c_dim: int) -> tuple[Port, ...]:
        return tuple(p for p in self.inputs if c_dim or not p.needs_c)

    def output_ports(self, c_dim: int) -> tuple[Port, ...]:
        return tuple(p for p in self.outputs if c_dim or not p.needs_c)

    def input_names(self, c_dim: int) -> tuple[str, ...]:
        return tuple(p.name for p in self.input_ports(c_dim))

    def output_names(self, c_dim: int) -> tuple[str, ...]:
        return tuple(p.name for p in self.output_ports(c_dim))

    def input_shapes(self, z_dim: int, c_dim: int, resolution: int, detail: Detail | None = None) -> dict[str, tuple]:
        """name -> shape (None for the batch axis) of each input of this graph for a bundle."""
        return {p.name: p.shape(z_dim, c_dim, resolution, detail) for p in self.input_ports(c_dim)}

    def exported_for(self, networks) -> bool:
        """Whether a bundle with these networks has this graph."""
        return all(n in networks for n in self.needs)


_IMAGE = ("N", 3, "R", "R")
G1 = Graph("g1", "g1.onnx", "g1",
           inputs=(Port("z", ("N", "Z")), Port("c", ("N", "C"))),
           outputs=(Port("image", _IMAGE, "in [-1, 1]"),))
G2 = Graph("g2", "g2.onnx", "g2",
           inputs=(Port("image", _IMAGE), Port("sketch", _IMAGE), Port("mask", ("N", 1, "R", "R"))),
           outputs=(Port("edited", _IMAGE),))  # ONNX names are unique: "image" is the input
LATENT_STEP = Graph(
    "latent_step", "latent_step.onnx", "g1",
    inputs=_ports(StepFeeds), outputs=_ports(StepOutputs),
    # Adam's moments are small numbers (m ~ g ~ 1e-3..1e-2, v ~ g^2 ~ 1e-6..1e-4), so 1e-4 would
    # accept anything: theirs are scaled to their size, about 3e-4 of the largest (fp32 sums in
    # another order differ by that much; z_t_next, which they move, keeps 1e-4)
    tol={"m_next": 3e-6, "v_next": 1e-8})
_DETAIL = ("N", "F", "S", "S")
ENCODER = Graph("encoder", "encoder.onnx", "e",
                inputs=(Port("image", _IMAGE, "a photo in [-1, 1]"),),
                outputs=(Port("z_t", ("N", "Z"), "arctanh(z) to start from"), Port("c_t", ("N", "C"), "c's logits"),
                         Port("r", _DETAIL, "the photo's detail: what (z, c) cannot draw")))
G1_DETAIL = Graph("g1_detail", "g1_detail.onnx", "g1", needs=("g1", "e"),
                  inputs=(Port("z", ("N", "Z")), Port("c", ("N", "C")), Port("r", _DETAIL, "a photo's detail (0: G1 itself)")),
                  outputs=(Port("image", _IMAGE, "in [-1, 1]"),))
GRAPHS: dict[str, Graph] = {g.name: g for g in (G1, G2, LATENT_STEP, ENCODER, G1_DETAIL)}


def tolerance(graph_name: str, output: str, tol: float | dict | None = None) -> float:
    """Parity tolerance of `output` of a graph: `tol` if one number, else {output: tol} over the
    contract's, else ATOL."""
    if tol is None or isinstance(tol, dict):
        own = GRAPHS[graph_name].tol if graph_name in GRAPHS else {}
        return float((tol or {}).get(output, own.get(output, ATOL)))
    return float(tol)


def graph(name: str) -> Graph:
    if name not in GRAPHS:
        raise UsageError(f"unknown graph {name!r}; the contract has {', '.join(GRAPHS)}")
    return GRAPHS[name]


# ---- example inputs: what the parity check feeds each graph ---------------------------------------
STEP_VARIANTS = ("adam", "gd", "adam_first")


def example_inputs(name: str, z_dim: int, c_dim: int, resolution: int, n: int = 2, seed: int = 0,
                   variant: str = "adam", detail: Detail | None = None) -> dict[str, np.ndarray]:
    """Random inputs of graph `name` in the ranges the editors produce, keyed by input name.

    `variant` (latent_step only): "adam" (moments under way, anchor on), "gd", or "adam_first"
    (the first Adam step: zero moments, t 0, c frozen, so some gradients are exactly zero and
    Adam's eps is all that keeps 0 / 0 away). `detail`: the bundle's (`Detail.of`), for g1_detail.
    """
    if variant not in STEP_VARIANTS:
        raise UsageError(f"variant must be one of {STEP_VARIANTS}")
    adam, first = variant != "gd", variant == "adam_first"
    rng = np.random.default_rng(seed)
    r, w = resolution, z_dim + c_dim
    z = np.clip(rng.standard_normal((n, z_dim)), -0.99, 0.99)
    c = (rng.random((n, c_dim)) < 0.3).astype(np.float32)
    c01 = np.clip(c, 1e-2, 1 - 1e-2)
    sketch = rng.uniform(-1, 1, (n, 3, r, r))
    mask = (rng.random((n, 1, r, r)) < 0.3).astype(np.float32)
    table = {
        "z": z, "c": c, "image": rng.uniform(-0.98, 0.98, (n, 3, r, r)), "sketch": sketch, "mask": mask,
        "z_t": np.arctanh(z), "c_t": np.log(c01 / (1 - c01)),
        "lr": 0.05 if adam else 2.0, "lr_c": 0.5 if adam else 2.0,
        "m": rng.normal(0, 1e-3, (n, w)), "v": rng.uniform(1e-7, 1e-5, (n, w)), "t": 3.0, "adam": float(adam),
        "z_anchor": np.arctanh(np.clip(z + rng.normal(0, 0.1, z.shape), -0.99, 0.99)), "anchor": 0.1, "edit_c": 1.0,
    }
    if name == G1_DETAIL.name:
        if detail is None:
            raise UsageError("g1_detail's example inputs need the bundle's detail map (Detail.of)")
        table["r"] = rng.normal(0, 0.5, (n, detail.channels, detail.size, detail.size))
    if first:
        # Adam's first step moves each coordinate by lr * g / (|g| + eps): where |g| is near eps
        # (random-weight 128 px nets have such gradients) fp32 noise in g is amplified ~1e7 times,
        # in PyTorch as much as in ONNX. A small lr keeps that within the tolerance; the eps path
        # itself (c's exact zero gradient) is checked all the same.
        table.update(m=np.zeros((n, w)), v=np.zeros((n, w)), t=0.0, anchor=0.0, edit_c=0.0, z_anchor=table["z_t"],
                     lr=1e-3, lr_c=1e-3)
    return {k: np.asarray(table[k], np.float32) for k in graph(name).input_names(c_dim)}
