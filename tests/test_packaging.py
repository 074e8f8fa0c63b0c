"""Packaging: every folder the wheel must carry is a listed package, so building it gives no
setuptools "Package would be ignored" warning and ships the models and the page."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_folder_with_files_is_a_listed_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(cfg["packages"]), cfg["package-dir"]
    found = set()
    for pkg, folder in dirs.items():
        base = ROOT / folder
        for d in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            if d.name == "__pycache__" or d.name.endswith(".egg-info") or not any(f.is_file() for f in d.iterdir()):
                continue
            found.add(".".join([pkg, *d.relative_to(base).parts]))
    assert found - listed == set(), "folders the wheel would ignore"
    assert listed - found == set(), "listed packages that do not exist"
    data = cfg["package-data"]
    for model in (ROOT / "neuedit" / "models").iterdir():
        assert f"neuedit.models.{model.name}" in data  # the shipped bundles travel as package data
