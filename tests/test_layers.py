"""The layers of the package (docs/layout.md), checked on every import statement in the source,
function-level ones included: a sub-package imports only from the layers below it, and the
torch-free side (what the server and a deployer run) imports no PyTorch, OpenCV or SciPy.

import-linter cannot see this project's whole package: stage1/, stage2/, export/ and server/
are mapped into `neuedit` by pyproject.toml's package-dir, outside the `neuedit/` folder it
walks. So the same two kinds of contract (layers, forbidden imports) are checked here over the
files the mapping names.
"""
import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# low to high; a module may import its own sub-package and anything in a lower layer
LAYERS = [
    ("neuedit.errors",),
    ("neuedit.runtime", "neuedit.config"),
    ("neuedit.data",),
    ("neuedit.synth",),
    ("neuedit.nn",),
    ("neuedit.training", "neuedit.evaluation"),
    ("neuedit.compare",),
    ("neuedit.stage1", "neuedit.stage2", "neuedit.encoder", "neuedit.export", "neuedit.server", "neuedit.cli"),
]
# what the torch-free side may not import, even lazily
HEAVY = ("torch", "cv2", "skimage", "scipy", "safetensors", "matplotlib", "tensorboard", "onnx")
TORCH_FREE = ("neuedit.errors", "neuedit.runtime", "neuedit.config", "neuedit.data.datasets", "neuedit.server",
              "neuedit.cli.main")
SERVER_MAY_IMPORT = ("neuedit.errors", "neuedit.runtime", "neuedit.config", "neuedit.data.datasets", "neuedit.server")


def _modules() -> dict[str, Path]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    out = {}
    for pkg, folder in cfg["package-dir"].items():
        base = ROOT / folder
        for f in base.rglob("*.py"):
            rel = f.relative_to(base).with_suffix("").parts
            if pkg == "neuedit" and rel and f"neuedit.{rel[0]}" in cfg["package-dir"]:
                continue
            name = ".".join([pkg, *rel])
            out[name.removesuffix(".__init__")] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module an import statement in `path` names (relative imports resolved)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return out


def _layer(module: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


def _unit(module: str) -> str:
    """The sub-package a module belongs to (its layer entry)."""
    return next(n for names in LAYERS for n in names if module == n or module.startswith(n + "."))


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "neuedit" and _layer(m) is None] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "neuedit"))
def test_imports_only_go_down(module):
    mine = _layer(module)
    bad = [m for m in _imports(module, MODULES[module])
           if m.startswith("neuedit.") and _layer(m) is not None and _unit(m) != _unit(module) and _layer(m) >= mine]
    assert bad == [], f"{module} imports from its own layer or above"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(TORCH_FREE)))
def test_the_torch_free_side_imports_nothing_heavy(module):
    bad = [m for m in _imports(module, MODULES[module]) if m.split(".")[0] in HEAVY]
    assert bad == [], f"{module} is on the torch-free side"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("neuedit.server")))
def test_the_server_imports_only_the_runtime(module):
    bad = [m for m in _imports(module, MODULES[module]) if m.startswith("neuedit.") and not m.startswith(SERVER_MAY_IMPORT)]
    assert bad == [], f"{module} reaches past the runtime"


def test_importing_the_torch_free_side_loads_nothing_heavy():
    """The same boundary at run time: import every torch-free module in a fresh interpreter."""
    names = sorted(m for m in MODULES if m.startswith(TORCH_FREE))
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {names!r}]; "
            f"bad = [m for m in {HEAVY!r} if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The scanner itself: a function-level import and a relative one both count."""
    f = tmp_path / "m.py"
    f.write_text("from . import sketch\ndef f():\n    import torch\n    from ..nn import nets\n")
    got = _imports("neuedit.runtime.m", f)
    assert {"torch", "neuedit.runtime", "neuedit.runtime.sketch", "neuedit.nn", "neuedit.nn.nets"} <= got
