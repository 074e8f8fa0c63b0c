"""`neuedit export BUNDLE [--out DIR] [--opset N] [--check]`.

Without --check: export G1, G2 (when the bundle has one) and the latent editor's step to
ONNX in the bundle (or in a copy at --out), record them in bundle.json, then check parity.
With --check: only check the graphs already exported (parity against PyTorch, onnx.checker,
and that the ONNX Runtime engine accepts them).
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder (bundle.json + safetensors)")
    p.add_argument("--out", default=None, help="write a copy of the bundle with its ONNX graphs here "
                                               "instead of exporting into BUNDLE")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 18)")
    p.add_argument("--check", action="store_true", help="do not export: check parity of the graphs "
                                                         "the bundle already has")
    p.add_argument("--serve-only", action="store_true",
                   help="with --out: keep only bundle.json and the ONNX graphs (what the server needs; "
                        "how the demo bundles ship)")
    p.add_argument("--tol", type=float, default=None,
                   help="absolute parity tolerance for every output (default: 1e-4; Adam moments tighter)")


def run(args) -> int:
    from neuedit.export.onnx_export import OPSET, export_bundle, serve_only
    from neuedit.export.parity import ParityError, check_bundle
    from neuedit.runtime.engine import Engine, EngineError
    try:
        if args.check:
            if args.out or args.opset:
                print("neuedit export: --check takes no --out or --opset (it exports nothing)", file=sys.stderr)
                return 2
            for rep in check_bundle(args.bundle, tol=args.tol):
                print(rep.summary())
            b_path = args.bundle
        else:
            if args.serve_only and not args.out:
                print("neuedit export: --serve-only needs --out (it deletes the PyTorch weights)", file=sys.stderr)
                return 2
            b = export_bundle(args.bundle, out=args.out, opset=args.opset or OPSET, check=True, tol=args.tol)
            if args.serve_only:
                b = serve_only(b)
            b_path = b.path
        eng = Engine(b_path, providers="cpu")
        print(f"engine: {eng.name} {eng.resolution}px, methods {', '.join(eng.methods) or 'generate only'}")
    except (ParityError, EngineError) as e:
        print(f"neuedit export: error: {e}", file=sys.stderr)
        return 1
    return 0
