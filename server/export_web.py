"""`neuedit export-web OUT`: a static site that edits in the browser, with no neuedit server
(docs/serving.md, "In the browser"). Serve it with any static file host, e.g.
`python3 -m http.server -d OUT`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neuedit.config import flags as tcli

from neuedit.server.cli import resolve_bundles
from neuedit.server.site import export_site


@dataclass(frozen=True)
class ExportWebCommand:
    """Everything `neuedit export-web` takes."""
    out: Path                          # the site's folder (created; empty, or an earlier site to replace)
    bundles: tuple[str, ...] = ()      # exported bundle folders
    max_steps: int = 50                # the most latent steps one Submit may ask for


COMMAND = tcli.Command(ExportWebCommand, dict(aliases={"bundles": "bundle"}, repeat=("bundles",), positional=("out",),
                                              defaults={"bundles": "every bundle shipped with the package"}))
add_arguments = COMMAND.add_arguments


def build_config(args) -> ExportWebCommand:
    cmd = COMMAND.build_config(args)
    return ExportWebCommand(cmd.out, tuple(resolve_bundles(list(cmd.bundles) or None)), cmd.max_steps)


def run(args) -> int:
    cmd = build_config(args)
    site = export_site(cmd.out, list(cmd.bundles), cmd.max_steps)
    size = sum(f.stat().st_size for f in Path(cmd.out).rglob("*") if f.is_file())
    names = ", ".join(m["name"] for m in site["models"])
    print(f"static site with {names} -> {cmd.out} ({size / 1e6:.1f} MB); try it: python3 -m http.server -d {cmd.out}")
    return 0
