"""Edit task sets (neuedit.compare.tasks) and the one-stage vs two-stage comparison (neuedit.compare)."""
from __future__ import annotations

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.cli.main import main
from neuedit.compare import CompareConfig, compare, cumulative, paired, project
from neuedit.nn.backend import TorchBackend
from neuedit.data.datasets import DataConfig
from neuedit.runtime.state import sample_state
from neuedit.compare.tasks import TaskConfig, TaskSet, is_line_sketch, make_tasks


@pytest.fixture(scope="module")
def faces(data_dir):
    return DataConfig(str(data_dir / "anime-faces" / "images"), labels=str(data_dir / "anime-faces" / "labels.csv"))


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """Two user sketches at 64x64: a thin black line and a thick orange blob."""
    d = tmp_path_factory.mktemp("user")
    line = np.zeros((64, 64, 4), np.uint8)
    line[10:54, 30, 3] = 255
    blob = np.zeros((64, 64, 4), np.uint8)
    blob[20:40, 10:40] = (255, 128, 0, 255)
    Image.fromarray(line).save(d / "a_line.png")
    Image.fromarray(blob).save(d / "b_blob.png")
    return d


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_task_set_regenerates_byte_identically_from_its_seed(tiny_bundle, faces, user_dir, tmp_path):
    cfg = TaskConfig(n=6, seed=3, chains=2, rounds=2, heldout=16, pool=80)
    a = make_tasks(tiny_bundle, faces, cfg, user_dir).save(tmp_path / "a")
    b = make_tasks(tiny_bundle, faces, cfg, user_dir).save(tmp_path / "b")
    assert _files(a) == _files(b)
    TaskSet.load(a).save(tmp_path / "c")  # load -> save is the identity on disk too
    assert _files(tmp_path / "c") == _files(a)
    other = make_tasks(tiny_bundle, faces, TaskConfig(n=6, seed=4, chains=2, rounds=2, heldout=16, pool=80), user_dir)
    assert other.save(tmp_path / "d").joinpath("tasks.json").read_bytes() != (a / "tasks.json").read_bytes()

    ts = TaskSet.load(a)
    assert len(ts.tasks) == 6 + 2 * 2 and len(ts.chains) == 2 and all(len(c.rounds) == 2 for c in ts.chains)
    combos = [(t.source.kind, t.stroke.kind) for t in ts.tasks[:4]]
    assert combos == [("sample", "colour"), ("real", "colour"), ("sample", "edge"), ("real", "edge")]
    users = [t for t in ts.tasks if t.stroke.origin.startswith("user:")]
    assert {(t.stroke.origin, t.stroke.kind) for t in users} == {("user:a_line.png", "edge"),
                                                                 ("user:b_blob.png", "colour")}
    for t in ts.tasks:
        assert t.stroke.rgba.shape == (16, 16, 4) and t.stroke.rgba[..., 3].any()
        if t.source.kind == "real":
            assert t.source.image.shape == (16, 16, 3) and t.source.c is not None and t.source.c.shape == (25,)
        else:
            assert t.source.state.z.shape == (1, 16)
    # sources, donors and held-out images are disjoint: the strokes come from *other* images
    held = set(ts.meta["heldout"]["files"])
    srcs = {t.source.file for t in ts.tasks + ts.chains if t.source.kind == "real"}
    donors = {s.origin[len("donor:"):] for t in ts.tasks for s in [t.stroke] if s.origin.startswith("donor:")}
    assert len(ts.heldout) == len(held) == 16 and not (held & srcs) and not (held & donors) and not (srcs & donors)


def test_edge_strokes_of_paired_data_come_from_its_drawings(data_dir):
    # a 64 px stand-in for a shoes bundle (make_tasks reads only its dimensions): at 16 px the
    # datasets' 1-px drawings fade below edges_from_pair_half's threshold
    from neuedit.runtime.schema import empty
    b = SimpleNamespace(name="shoes", resolution=64, z_dim=8, c_dim=0, schema=empty())
    shoes = DataConfig(str(data_dir / "shoes" / "val"), layout="pair", pair_image="left")
    ts = make_tasks(b, shoes, TaskConfig(n=4, kinds=("edge",), chains=0, heldout=8, pool=40))
    assert ts.meta["edges"] == "pairs" and ts.heldout.shape == (8, 64, 64, 3)
    for t in ts.tasks:
        a = t.stroke.rgba
        assert t.stroke.kind == "edge" and a[..., 3].any() and (a[a[..., 3] > 0, :3] == 0).all()  # black lines
        assert is_line_sketch(a[..., 3] > 0)


def test_a_task_set_refuses_a_bundle_of_other_dimensions(tiny_bundle, tiny_bundle_empty, faces):
    ts = make_tasks(tiny_bundle, faces, TaskConfig(n=2, sources=("sample",), chains=0, heldout=4, pool=20))
    assert ts.check(tiny_bundle) is ts
    with pytest.raises(ValueError, match="c_dim"):
        ts.check(tiny_bundle_empty)
    with pytest.raises(ValueError, match="real images"):
        make_tasks(tiny_bundle, None, TaskConfig(n=2))


def test_projection_reconstructs_a_generator_sample(tiny_bundle):
    G = load_module(tiny_bundle, "g1")
    target = sample_state(3, tiny_bundle.z_dim, tiny_bundle.schema, np.random.default_rng(5))
    with torch.no_grad():
        x = G(torch.from_numpy(target.z), torch.from_numpy(target.c)).numpy()
    be = TorchBackend(G, None, tiny_bundle.schema)
    err0 = project(be, x, 0, rng=np.random.default_rng(0)).dist
    r = project(be, x, 40, rng=np.random.default_rng(0))
    assert r.image.shape == x.shape and (r.dist < 0.8 * err0).all()
    r.state.validate(tiny_bundle.z_dim, tiny_bundle.c_dim)
    # images are projected independently: alone gives the same as in the batch
    err1 = project(be, x[1:2], 40, rng=np.random.default_rng(0)).dist
    # (to float32 noise: Adam's normalised steps on c~ entries with near-zero gradients amplify the
    # last bits that batched and single convolutions differ in; a coupling of rows would be far larger)
    assert err1[0] == pytest.approx(float(r.dist[1]), rel=3e-3, abs=1e-7)


def test_cumulative_sketches_paint_later_strokes_over_earlier_ones():
    a = np.zeros((4, 4, 4), np.uint8)
    a[0, :2] = (255, 0, 0, 255)
    b = np.zeros((4, 4, 4), np.uint8)
    b[0, 1:3] = (0, 0, 255, 255)
    s1, s2 = cumulative([a, b])
    assert np.array_equal(s1, a)
    assert s2[0, 0, 0] == 255 and s2[0, 1, 2] == 255 and s2[0, 2, 2] == 255 and s2[0, 3, 3] == 0


def test_paired_differences():
    rows = [{"task": t, "method": m, "dist": v} for t, m, v in
            [("a", "latent-1", 3.0), ("a", "two-stage", 1.0), ("b", "latent-1", 4.0), ("b", "two-stage", 2.0)]]
    d = paired(rows, ["latent-1", "two-stage"], ["dist"], CompareConfig(boot=100))
    assert d["latent-1"]["dist"] == (2.0, 2.0, 2.0, 2)


# ---- the whole comparison on a tiny bundle ------------------------------------------------------------
@pytest.fixture(scope="module")
def compared(tiny_bundle, data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    rc = main(["compare", "--make-tasks", "--bundle", str(tiny_bundle.path),
               "--data", str(data_dir / "anime-faces" / "images"), "--tasks", str(d / "tasks"), "--out", str(d / "out"),
               "--n", "4", "--chains", "1", "--rounds", "2", "--heldout", "16", "--pool", "60",
               "--latent-steps", "1", "3", "--project-steps", "5", "--quiet"])
    assert rc == 0
    return d


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_compare_writes_the_csv_table_and_grids(compared):
    out = compared / "out"
    rows = _csv(out / "results.csv")
    methods = ["source", "latent-1", "latent-3", "two-stage"]
    assert [r["method"] for r in rows] == methods * 4
    for r in rows:
        assert math.isfinite(float(r["dist"])) and math.isfinite(float(r["l1_out"])) and r["d_score"] != ""
        assert (r["de00"] != "") == (r["stroke"] == "colour") and (r["edge_f1"] != "") == (r["stroke"] == "edge")
        assert r["attr_agree"] == "" or 0 <= float(r["attr_agree"]) <= 1
        if r["method"] == "source":
            assert r["psnr_out"] == "inf" and float(r["l1_out"]) == 0
    assert all(float(r["ms"]) > 0 for r in rows if r["method"] != "source")
    assert any(float(r["start_l1"]) > 0 for r in rows if r["source"] == "real" and r["method"].startswith("latent"))
    stab = _csv(out / "stability.csv")
    assert [(r["method"], r["round"]) for r in stab] == [(m, k) for m in methods[1:] for k in ("1", "2")]
    assert all(r["dist_earlier"] == "" for r in stab if r["round"] == "1")

    md = (out / "summary.md").read_text()
    for heading in ("Following the strokes", "Keeping the rest", "Realism", "Cost", "Paired differences",
                    "Stability over successive edits", "## Metrics"):
        assert heading in md
    for m in methods + ["real (held-out)"]:
        assert f"| {m} |" in md
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == set(methods) | {"real (held-out)"}
    assert summary["methods"]["two-stage"]["dist"][3] == 4
    grid = Image.open(out / "grid.png")
    assert grid.height > 4 * 16 * 8 and grid.width > 6 * 16 * 8  # 4 rows; original, strokes, start, 3 methods at x8
    assert Image.open(out / "stability_grid.png").height > 4 * 16 * 8  # strokes row + 3 methods
    assert (out / "stability.png").is_file() and (out / "projections.json").is_file()


def test_compare_is_deterministic_but_for_timings(compared, tiny_bundle):
    ts = TaskSet.load(compared / "tasks")
    cfg = CompareConfig(latent_steps=(1, 3), project_steps=5, grid_tasks=0, boot=100)
    compare(tiny_bundle, ts, cfg, compared / "again", progress=False, log=lambda *a: None)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "ms"} for r in rows]  # noqa: E731
    assert strip(_csv(compared / "again" / "results.csv")) == strip(_csv(compared / "out" / "results.csv"))


def test_compare_without_g2_and_d_runs_the_latent_editor_alone(tmp_path, faces):
    from neuedit.nn.testing import make_random_bundle
    b = make_random_bundle(tmp_path / "s1", with_g2=False, with_d=False)
    ts = make_tasks(b, faces, TaskConfig(n=2, chains=0, heldout=4, pool=20))
    said = []
    s = compare(b, ts, CompareConfig(latent_steps=(2,), project_steps=2, boot=50), tmp_path / "out",
                progress=False, log=said.append)
    assert set(s["methods"]) == {"source", "latent-2", "real (held-out)"} and s["paired_vs_two_stage"] == {}
    assert any("no stage-two" in m for m in said)
    assert s["methods"]["latent-2"]["d_score"][3] == 0  # no D: no score
