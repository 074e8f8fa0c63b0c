"""The `neuedit` command. Each subcommand lives in its own module with
`add_arguments(parser)` and `run(args) -> int`; modules are imported only when their
subcommand runs, so `neuedit serve` never imports torch."""
from __future__ import annotations

import argparse
import importlib
import sys

from neuedit.errors import NeueditError

SUBCOMMANDS = {
    "prepare": ("neuedit.data.prepare", "detect and crop faces into an image folder"),
    "train-stage1": ("neuedit.stage1.cli", "train the stage-one generator (DRAGAN + ACGAN)"),
    "train-stage2": ("neuedit.stage2.cli", "train the sketch-conditioned stage-two generator"),
    "train-encoder": ("neuedit.encoder.cli", "train the photo encoder of a bundle (projection into its latent space)"),
    "sample": ("neuedit.cli.sample", "write a sample grid from a bundle"),
    "edit": ("neuedit.cli.edit", "latent-optimisation (one-stage) or two-stage edit of a sketch"),
    "export": ("neuedit.export.cli", "export a bundle to ONNX and check parity"),
    "serve": ("neuedit.server.cli", "run the editing server and web client"),
    "export-web": ("neuedit.server.export_web", "write a static site that edits in the browser (no server)"),
    "compare": ("neuedit.cli.compare", "compare one-stage and two-stage editing"),
    "evaluate": ("neuedit.cli.evaluate", "sample quality of generators: KID, diversity, attribute control"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="neuedit", description="Sketch-based neural image editing.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"neuedit: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    p = argparse.ArgumentParser(prog=f"neuedit {argv[0]}", description=SUBCOMMANDS[argv[0]][1])
    module.add_arguments(p)
    args = p.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except NeueditError as e:
        # a message meant for the user (bad input, a broken file): one line, no traceback;
        # anything else is a bug and keeps its traceback
        print(f"neuedit {argv[0]}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
