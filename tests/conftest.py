import os
from pathlib import Path

import pytest


def _find_data() -> Path:
    """$NEUEDIT_DATA, else the first shared/data above the checkout (../shared/data on the dev
    machines and CI), else /work/shared/data."""
    repo = Path(__file__).resolve().parents[1]
    candidates = [Path(os.environ["NEUEDIT_DATA"])] if os.environ.get("NEUEDIT_DATA") else []
    candidates += [p / "shared" / "data" for p in repo.parents] + [Path("/work/shared/data")]
    return next((c for c in candidates if (c / "anime-faces").is_dir()), candidates[0] if candidates else repo)


DATA = _find_data()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "anime-faces").is_dir():
        msg = f"real data not found at {DATA} (set NEUEDIT_DATA to the folder holding anime-faces/, shoes/, handbags/)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI must never skip silently
        pytest.skip(msg)
    return DATA


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    # CI has 2 cores; tiny models run fastest single-threaded and tests stay deterministic.
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny two-stage bundle (anime_faces schema, c_dim 25, 16x16) with seeded random weights."""
    from neuedit.nn.testing import make_random_bundle
    return make_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture(scope="session")
def tiny_bundle_empty(tmp_path_factory):
    """The same with the empty schema (c_dim 0), like shoes and handbags."""
    from neuedit.nn.testing import make_random_bundle
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


@pytest.fixture(scope="session")
def trained_tiny_bundle(tmp_path_factory, data_dir):
    """A tiny stage-one bundle trained briefly on real faces (for edits that need a real G)."""
    from neuedit.data.datasets import DataConfig
    from neuedit.training import RunConfig
    from neuedit.stage1.train import Stage1Config, train
    out = tmp_path_factory.mktemp("trained") / "run"
    cfg = Stage1Config(
        data=DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=512,
                        labels=str(data_dir / "anime-faces" / "labels.csv")),
        run=RunConfig(out=str(out), iterations=400, batch=16, seed=0, log_every=50, sample_every=1000,
                      ckpt_every=1000, progress=False, tensorboard=False),
        preset="tiny", z_dim=16, name="trained_tiny")
    return train(cfg)


@pytest.fixture
def resume_is_exact():
    """check(train, whole, split, data, module) -> whether a run stopped halfway (as a kill would)
    and resumed ends with the same `module` weights as `whole`, the same run straight through."""
    import torch

    def check(train, whole, split, data, module: str) -> bool:
        train(whole, data)
        train(split, data, stop_at=split.run.iterations // 2)
        train(split, data)
        w = [torch.load(Path(c.run.out) / "checkpoint.pt", weights_only=True)["modules"][module] for c in (whole, split)]
        return w[0].keys() == w[1].keys() and all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    return check


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright, one per test module: sync Playwright runs an event loop
    while it is open, which the asyncio tests of other modules must not find running."""
    from playwright.sync_api import sync_playwright

    from neuedit.server.testing import CHROMIUM, CHROMIUM_ARGS
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
