import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not DATA.is_dir():  # a checkout elsewhere: ../shared next to the repository root
    DATA = Path(os.environ.get("NEUEDIT_DATA", "../shared/data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "anime-faces").is_dir():
        pytest.fail(f"real data not found at {DATA} (set NEUEDIT_DATA)")
    return DATA


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    # CI has 2 cores; tiny models run fastest single-threaded and tests stay deterministic.
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny two-stage bundle (anime_faces schema, c_dim 25, 16x16) with seeded random weights."""
    from neuedit.testing import make_random_bundle
    return make_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture(scope="session")
def tiny_bundle_empty(tmp_path_factory):
    """The same with the empty schema (c_dim 0), like shoes and handbags."""
    from neuedit.testing import make_random_bundle
    return make_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny_empty", schema="empty", name="tiny_empty")


@pytest.fixture(scope="session")
def tiny_exported(tiny_bundle, tmp_path_factory):
    """A copy of `tiny_bundle` exported to ONNX (g1, g2, latent_step), parity checked."""
    from neuedit.export.onnx_export import export_bundle
    return export_bundle(tiny_bundle.path, out=tmp_path_factory.mktemp("exported") / "tiny", log=lambda *a: None)


@pytest.fixture(scope="session")
def tiny_exported_empty(tiny_bundle_empty, tmp_path_factory):
    """A copy of `tiny_bundle_empty` (c_dim 0) exported to ONNX, parity checked."""
    from neuedit.export.onnx_export import export_bundle
    return export_bundle(tiny_bundle_empty.path, out=tmp_path_factory.mktemp("exported") / "tiny_empty",
                         log=lambda *a: None)
