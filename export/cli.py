"""`neuedit export BUNDLE [--out DIR] [--opset N] [--check]`.

Without --check: export G1, G2 (when the bundle has one) and the latent editor's step to
ONNX in the bundle (or in a copy at --out), record them in bundle.json, then check parity.
With --check: only check the graphs already exported (parity against PyTorch, onnx.checker,
and that the ONNX Runtime engine accepts them).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from neuedit.config import flags as tcli


@dataclass(frozen=True)
class ExportCommand:
    """Everything `neuedit export` takes."""
    bundle: str               # bundle folder (bundle.json + safetensors)
    out: str | None = None    # write a copy of the bundle with its ONNX graphs here instead of exporting
                              # into BUNDLE
    opset: int | None = None  # ONNX opset (default: 18)
    check: bool = False       # do not export: check parity of the graphs the bundle already has
    serve_only: bool = False  # with --out: keep only bundle.json and the ONNX graphs (what the server
                              # needs; how the demo bundles ship)
    tol: float | None = None  # absolute parity tolerance for every output (default: 1e-4; Adam moments
                              # tighter)


DECLARED = dict(positional=("bundle",))  # `neuedit export BUNDLE`


COMMAND = tcli.Command(ExportCommand, DECLARED)
add_arguments, build_config = COMMAND.add_arguments, COMMAND.build_config


def run(args) -> int:
    cmd = build_config(args)
    from neuedit.export.onnx_export import OPSET, export_bundle, serve_only
    from neuedit.export.parity import ParityError, check_bundle
    from neuedit.runtime.editor import Editor
    from neuedit.runtime.engine import EngineError
    try:
        if cmd.check:
            if cmd.out or cmd.opset:
                print("neuedit export: --check takes no --out or --opset (it exports nothing)", file=sys.stderr)
                return 2
            for rep in check_bundle(cmd.bundle, tol=cmd.tol):
                print(rep.summary())
            b_path = cmd.bundle
        else:
            if cmd.serve_only and not cmd.out:
                print("neuedit export: --serve-only needs --out (it deletes the PyTorch weights)", file=sys.stderr)
                return 2
            b = export_bundle(cmd.bundle, out=cmd.out, opset=cmd.opset or OPSET, check=True, tol=cmd.tol)
            if cmd.serve_only:
                b = serve_only(b)
            b_path = b.path
        ed = Editor.load(b_path, providers="cpu")  # the exported bundle loads as the server loads it
        print(f"engine: {ed.name} {ed.resolution}px, methods {', '.join(ed.methods) or 'generate only'}")
    except (ParityError, EngineError) as e:
        print(f"neuedit export: error: {e}", file=sys.stderr)
        return 1
    return 0
