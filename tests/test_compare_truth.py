"""The ground-truth comparison: task sets with known targets (neuedit.compare.truth), metrics against a
target (neuedit.evaluation.metrics) and `neuedit compare --truth` end to end on a tiny bundle."""
from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.evaluation import metrics as M
from neuedit.cli.main import main
from neuedit.compare import TruthConfig, TruthSet, make_truth
from neuedit.synth.pairs import changed_attribute, nearby_z
from neuedit.data.datasets import DataConfig, to_unit_range
from neuedit.synth.strokes import edge_map

CFG = TruthConfig(real=4, samples=2, heldout=8, pool=40, seed=1)


@pytest.fixture(scope="module")
def faces(data_dir):
    return DataConfig(str(data_dir / "anime-faces" / "images"), labels=str(data_dir / "anime-faces" / "labels.csv"))


@pytest.fixture(scope="module")
def loud_bundle(tiny_bundle, tmp_path_factory):
    """The tiny bundle with G1's weights doubled and a half: its random G1 is nearly flat grey, so
    another attribute would change its samples by less than a differ pair's threshold."""
    from safetensors.torch import save_file
    path = tmp_path_factory.mktemp("bundles") / "loud"
    shutil.copytree(tiny_bundle.path, path)
    b = bundle_mod.read(path)
    g1 = load_module(b, "g1")
    save_file({k: (v * 2.5 if v.ndim >= 2 else v).contiguous() for k, v in g1.state_dict().items()}, str(b.file("g1")))
    return bundle_mod.read(path)


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


# ---- the task set ----------------------------------------------------------------------------------------
def test_truth_set_regenerates_byte_identically_and_round_trips(loud_bundle, faces, tmp_path):
    a = make_truth(loud_bundle, faces, CFG).save(tmp_path / "a")
    b = make_truth(loud_bundle, faces, CFG).save(tmp_path / "b")
    assert _files(a) == _files(b)
    TruthSet.load(a).save(tmp_path / "c")  # load -> save is the identity on disk
    assert _files(tmp_path / "c") == _files(a)
    other = make_truth(loud_bundle, faces, TruthConfig(real=4, samples=2, heldout=8, pool=40, seed=2))
    assert other.save(tmp_path / "d").joinpath("truth.json").read_bytes() != (a / "truth.json").read_bytes()
    (tmp_path / "a" / "r000_target.png").write_bytes(b"")  # a new save into the folder replaces everything
    make_truth(loud_bundle, faces, CFG).save(tmp_path / "a")
    assert _files(tmp_path / "a") == _files(b)


def _render(G1, state):
    with torch.no_grad():
        return M.to_uint8(G1(torch.from_numpy(state.z), torch.from_numpy(state.c))[0].numpy())


def test_truth_set_pairs_each_source_and_target_over_stroke_counts(loud_bundle, faces):
    ts = make_truth(loud_bundle, faces, CFG)
    assert ts.tasks.meta["skipped_groups"] == [] and ts.strokes == [1, 3, 10]
    groups: dict[str, list] = {}
    for t, a in zip(ts.tasks.tasks, ts.answers):
        groups.setdefault(a.group, []).append((t, a))
    assert list(groups) == ["r000", "r001", "r002", "r003", "s000", "s001"]
    kinds = [(g[0][1].kind, g[0][1].fill) for g in groups.values()]
    assert kinds == [("recolour", ""), ("reshape", "donor"), ("recolour", ""), ("reshape", "blur"),
                     ("differ", ""), ("differ", "")]
    G1 = load_module(loud_bundle, "g1")
    for g, members in groups.items():
        (t0, a0) = members[0]
        assert [a.strokes for _, a in members] == [1, 3, 10] and [t.id for t, _ in members] == [f"{g}n{n}" for n in
                                                                                              (1, 3, 10)]
        prev = np.zeros(a0.region.shape, bool)
        for t, a in members:
            # the same source, target and region at every count; the strokes nested
            assert a.target is a0.target and np.array_equal(a.region, a0.region) and a.region.any()
            if t.source.kind == "real":
                assert np.array_equal(t.source.image, t0.source.image)
            else:
                assert t.source.state is t0.source.state
            mask = t.stroke.rgba[..., 3] > 0
            assert mask.any() and (prev <= mask).all()
            prev = mask
            assert (a.lines <= mask).all() and a.lines.any() == (a.kind == "reshape") == (t.stroke.kind == "edge")
            if a.kind == "reshape":  # the target's own edge lines (Canny at this resolution)
                assert (a.lines <= edge_map(a.target, "canny")).all()
        if t0.source.kind == "real":
            # the photo is the target; the source differs from it only in the region
            gap = np.abs(t0.source.image.astype(int) - a0.target)
            assert gap[a0.region].max() > 10 and gap[~a0.region].max() <= 2
            assert t0.source.c is None and a0.target_c is not None and a0.target_c.shape == (25,)
        else:
            # the source state is kept (G1 renders the drawn source from it); c' changes one exclusive group
            src, tgt = (_render(G1, s) for s in (t0.source.state, a0.target_state))
            assert np.abs(src.astype(int) - a0.sample).max() <= 1 and np.abs(tgt.astype(int) - a0.target).max() <= 1
            assert np.array_equal(a0.target_state.z, t0.source.state.z)
            changed = [grp.name for grp, s in loud_bundle.schema.slices()
                       if not np.array_equal(a0.target_state.c[0, s], t0.source.state.c[0, s])]
            assert len(changed) == 1 and a0.change.startswith(changed[0] + ":")
    # targets, held-out photos and donors are disjoint; the held-out ones go with the set
    held = set(ts.tasks.meta["heldout"]["files"])
    targets = {t.source.file for t in ts.tasks.tasks if t.source.kind == "real"}
    assert len(held) == len(ts.tasks.heldout) == 8 and len(targets) == 4 and not held & targets


def test_reshape_lines_of_paired_data_come_from_its_drawings(data_dir):
    # a 64 px stand-in for a shoes bundle (photo tasks read only its dimensions): at 16 px the
    # datasets' 1-px drawings fade below edges_from_pair_half's threshold
    from types import SimpleNamespace
    from neuedit.runtime.schema import empty
    from neuedit.synth.strokes import edges_from_pair_half
    from neuedit.compare.tasks import load_pool
    b = SimpleNamespace(name="shoes", resolution=64, z_dim=8, c_dim=0, schema=empty())
    shoes = DataConfig(str(data_dir / "shoes" / "val"), resolution=64, layout="pair", pair_image="left")
    ts = make_truth(b, shoes, TruthConfig(real=2, samples=0, strokes=(1, 3), kinds=("reshape",), heldout=0, pool=20))
    pool = load_pool([shoes], empty(), 20)
    assert ts.tasks.meta["edges"] == "pairs" and len(ts.answers) == 4
    for t, a in zip(ts.tasks.tasks, ts.answers):
        drawing = edges_from_pair_half(pool.edge_halves[pool.files.index(t.source.file)], 64)
        assert a.lines.any() and (a.lines <= drawing).all() and (t.stroke.rgba[a.lines, :3] == 0).all()


def test_truth_set_refuses_another_bundle(loud_bundle, tiny_bundle, tiny_bundle_empty, faces):
    from neuedit.compare.sources import prepare_sources
    from neuedit.nn.backend import TorchBackend
    from neuedit.compare import CompareConfig
    ts = make_truth(loud_bundle, faces, TruthConfig(real=1, samples=1, strokes=(1,), heldout=0, pool=20))
    assert ts.check(tiny_bundle) is ts  # same dimensions
    with pytest.raises(ValueError, match="c_dim"):
        ts.check(tiny_bundle_empty)
    cfg = CompareConfig(project_steps=0, project_candidates=1)
    for b, ok in ((loud_bundle, True), (tiny_bundle, False)):  # the samples' targets are this G1's
        prep = prepare_sources(TorchBackend.from_bundle(b, g2=False), [t.source for t in ts.tasks.tasks], cfg)
        if ok:
            ts.check_samples(prep.before)
        else:
            with pytest.raises(ValueError, match="G1"):
                ts.check_samples(prep.before)


def test_stage_one_targets_change_one_group_or_move_z_a_little(tiny_bundle):
    schema = tiny_bundle.schema
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = schema.sample(1, rng)[0]
        c2, what = changed_attribute(schema, c, rng)
        diff = [g.name for g, s in schema.slices() if not np.array_equal(c[s], c2[s])]
        assert len(diff) == 1 and what.startswith(diff[0]) and (schema.project(c2) == c2).all()
        for g, s in schema.slices():
            assert c2[s].sum() <= 1  # still at most one attribute per exclusive group
    z = np.random.default_rng(1).uniform(-0.99, 0.99, (1, 4000)).astype(np.float32)
    z2 = nearby_z(z, np.random.default_rng(2), 0.5)
    assert (np.abs(z2) < 0.999).all() and 0.5 < np.corrcoef(z[0], z2[0])[0, 1] < 0.99


# ---- metrics against a target, by hand ---------------------------------------------------------------------
def _img(h=8, w=8, v=0.0):
    return np.full((3, h, w), v, np.float32)


def test_target_metrics_split_the_region_from_the_rest():
    t = _img(v=0.2)
    same = M.target_metrics(t, t, np.ones((8, 8), bool))
    assert same["psnr"] == same["psnr_in"] == math.inf and same["ssim"] == 1 and same["l1"] == 0
    assert math.isnan(same["psnr_rest"]) and math.isnan(same["l1_rest"])  # nothing outside the region
    assert M.mean_ci([same["psnr"]])[0] == M.PSNR_CAP  # inf counts as the cap in means
    region = np.zeros((8, 8), bool)
    region[:, :2] = True  # a quarter of the image
    out = t.copy()
    out[:, region] += 0.4  # 0.2 on [0, 1] RGB: MSE 0.04, PSNR 13.98 dB inside
    s = M.target_metrics(out, t, region)
    assert s["l1_in"] == pytest.approx(0.4) and s["l1_rest"] == 0 and s["psnr_rest"] == math.inf
    assert s["psnr_in"] == pytest.approx(-10 * math.log10(0.04))
    assert s["l1"] == pytest.approx(0.1) and s["psnr"] == pytest.approx(-10 * math.log10(0.01))
    assert s["ssim_in"] < s["ssim_rest"] <= 1
    swapped = M.target_metrics(out, t, ~region)  # the same change seen from the other side
    assert swapped["l1_rest"] == pytest.approx(0.4) and swapped["psnr_in"] == math.inf
    assert math.isnan(M.target_metrics(out, t, np.zeros((8, 8), bool))["psnr_in"])


def test_region_delta_e_covers_the_region_only():
    t = _img(v=0.0)
    region = np.zeros((8, 8), bool)
    region[2:6, 2:6] = True
    assert M.region_delta_e(t, t, region) == 0
    out = t.copy()
    out[0, ~region] = 1.0  # red outside the region: not counted
    assert M.region_delta_e(out, t, region) == pytest.approx(0, abs=1e-9)
    out[1, region] = 0.5  # greener inside the region: counted, on every region pixel
    de = M.region_delta_e(out, t, region)
    one = np.zeros((3, 1, 1), np.float32)
    one[1] = 0.5
    assert de > 5 and de == pytest.approx(M.region_delta_e(one, np.zeros((3, 1, 1), np.float32), np.ones((1, 1), bool)))
    assert math.isnan(M.region_delta_e(out, t, np.zeros((8, 8), bool)))


def test_chamfer_is_zero_on_coinciding_edges_and_grows_with_a_shift():
    lines = np.zeros((16, 16), bool)
    lines[5, 2:14] = True
    assert M.chamfer(lines, lines) == 0
    shifted = np.roll(lines, 2, axis=0)
    assert M.chamfer(lines, shifted) == pytest.approx(2.0)
    assert M.chamfer(lines, np.roll(lines, 3, axis=0)) == pytest.approx(3.0)
    extra = lines | np.roll(lines, 6, axis=0)  # more edges elsewhere cost nothing (one-sided)
    assert M.chamfer(lines, extra) == 0
    assert M.chamfer(lines, np.zeros_like(lines)) == pytest.approx(math.hypot(16, 16))
    assert math.isnan(M.chamfer(np.zeros_like(lines), lines))


# ---- end to end: neuedit compare --truth ------------------------------------------------------------------
def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def truth_run(loud_bundle, data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("truth")
    rc = main(["compare", "--truth", "--bundle", str(loud_bundle.path),
               "--data", str(data_dir / "anime-faces" / "images"), "--out", str(d / "out"),
               "--truth-real", "2", "--truth-samples", "1", "--heldout", "8", "--pool", "30",
               "--latent-steps", "1", "--project-steps", "3", "--grid-tasks", "6", "--quiet"])
    assert rc == 0
    return d


def test_compare_truth_writes_the_report(truth_run):
    out = truth_run / "out" / "truth"
    assert not (truth_run / "out" / "results.csv").exists()  # the task comparison's files are not written
    assert (out / "set" / "truth.json").is_file()
    rows = _csv(out / "results.csv")
    methods = ["source", "target", "latent-1", "two-stage"]
    tasks = [f"{g}n{n}" for g in ("r000", "r001", "s000") for n in (1, 3, 10)]
    assert [(r["task"], r["method"]) for r in rows] == [(t, m) for t in tasks for m in methods]
    assert list(rows[0])[:8] == ["method", "task", "group", "kind", "fill", "source", "strokes", "stroke_px"]
    assert {(r["group"], r["kind"], r["fill"], r["source"]) for r in rows} == {
        ("r000", "recolour", "", "real"), ("r001", "reshape", "donor", "real"), ("s000", "differ", "", "sample")}
    for r in rows:
        lines = r["kind"] == "reshape"
        assert (r["chamfer"] != "") == lines and (r["edge_f1"] != "") == lines
        if r["method"] == "target":  # the answer scored as a result: perfect against itself
            assert r["psnr"] == r["psnr_in"] == r["psnr_rest"] == "inf"
            assert float(r["ssim"]) == float(r["ssim_in"]) == 1 and float(r["l1"]) == float(r["l1_in"]) == 0
            assert float(r["de00_region"]) == 0
            assert not lines or float(r["chamfer"]) == 0  # Canny lines of the target lie on its edges
        else:
            assert math.isfinite(float(r["psnr_in"])) and float(r["de00_region"]) > 0
        if r["method"] == "source":
            assert float(r["l1_out"]) == 0 and float(r["ms"]) == 0
        elif r["method"] != "target":
            assert float(r["ms"]) > 0 and r["d_score"] != ""
    md = (out / "summary.md").read_text()
    for heading in ("Against the target", "By number of strokes", "Following the strokes", "By task kind",
                    "Realism and cost", "Paired differences against two-stage", "## Metrics"):
        assert heading in md
    for m in methods + ["real (held-out)"]:
        assert f"| {m} |" in md
    for n in ("1", "3", "10"):
        assert f"| {n} | two-stage | 3 |" in md  # every source at every stroke count
    with Image.open(out / "psnr_vs_strokes.png") as im:
        assert im.width > 400 and im.height > 200
    with Image.open(out / "grid.png") as im:  # every kind: 3 sources x 3 counts; source, strokes, target, 2 editors
        assert im.height > 9 * 16 * 8 and im.width > 5 * 16 * 8  # 16 px tiles shown at x8


def test_compare_truth_reruns_a_saved_set_identically_but_for_timings(truth_run, loud_bundle):
    rc = main(["compare", "--truth", "--bundle", str(loud_bundle.path),
               "--tasks", str(truth_run / "out" / "truth" / "set"), "--out", str(truth_run / "again"),
               "--latent-steps", "1", "--project-steps", "3", "--grid-tasks", "0", "--quiet"])
    assert rc == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "ms"} for r in rows]  # noqa: E731
    again, first = (_csv(truth_run / d / "truth" / "results.csv") for d in ("again", "out"))
    assert strip(again) == strip(first)


def test_target_reference_matches_the_stored_target(truth_run):
    ts = TruthSet.load(truth_run / "out" / "truth" / "set")
    for a in ts.answers:  # the PNG round trip of a target is exact, so its scores can be perfect
        assert np.array_equal(M.to_uint8(to_unit_range(a.target)), a.target)
