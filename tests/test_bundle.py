"""bundle.json as typed metadata (docs/method.md §5): round trips, checks, files present."""
import json
import shutil
from dataclasses import replace
from types import SimpleNamespace

import pytest

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.runtime.bundle import BundleError, BundleMeta, NetSpec, Provenance

SHIPPED = bundle_mod.shipped()


def _copy(b, dest):
    return shutil.copytree(b.path, dest)


def _write_json(folder, meta: dict):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundle.json").write_text(json.dumps(meta))
    return folder


def _small_meta(**over) -> BundleMeta:
    from neuedit.runtime.schema import BUILTIN
    nets = {"g1": NetSpec("up_g", {"z_dim": 8, "c_dim": 0, "resolution": 16, "chans": (32, 16)}, "g1.safetensors")}
    m = BundleMeta(kind="stage1", name="m", domain="m", z_dim=8, c_dim=0, resolution=16,
                   schema=BUILTIN["empty"]().to_dict(), training=Provenance(stage1_step=5, threads=2), networks=nets)
    return replace(m, **over)


# ---- round trips --------------------------------------------------------------------------------
def test_round_trip_of_a_meta_built_in_memory():
    m = _small_meta(preset="tiny", onnx={"g1": "g1.onnx"}, extra={"future": [1, 2]})
    d = m.to_dict()
    assert BundleMeta.from_dict(d) == m
    assert BundleMeta.from_dict(json.loads(json.dumps(d))) == m  # tuples became lists and still compare equal
    assert d["g1"]["kwargs"]["chans"] == [32, 16] and d["future"] == [1, 2]
    assert d["value_range"] == [-1, 1] and d["z_prior"] == "normal" and "files" not in d
    assert d["training"] == {"stage1_step": 5, "threads": 2}  # unset provenance is left out, not written as null


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_bundle_json_is_rewritten_byte_for_byte(path):
    """to_dict keeps today's layout: the shipped files come back unchanged, key order included."""
    info = bundle_mod.read(path).info
    assert BundleMeta.from_dict(info.to_dict()) == info
    assert json.dumps(info.to_dict(), indent=2) + "\n" == (path / "bundle.json").read_text()


# ---- the shipped bundles ------------------------------------------------------------------------
def test_shipped_bundles_parse_and_name_only_files_they_hold():
    assert SHIPPED, "no shipped bundles found"
    for path in SHIPPED:
        b = bundle_mod.read(path)
        assert b.info.kind == "two-stage" and set(b.info.networks) == {"g1", "d", "g2", "e"}  # e: the photo encoder
        assert set(b.info.onnx) == {"g1", "g2", "latent_step", "encoder", "g1_detail"}
        named = [f for _, f in b.info.named_files()]
        assert {"g1.safetensors", "g2.safetensors", "d.safetensors", "g1.onnx"} <= set(named)
        for f in named:
            assert (path / f).is_file(), f"{path.name} names {f}, which is missing"
        t = b.info.training
        assert b.training_steps == {"stage1": t.stage1_step, "stage2": t.stage2_step, "encoder": t.encoder_step}
        assert t.stage1_step > 0 and t.encoder_step > 0
        assert t.config_digest and t.stage2_config_digest and t.stage1_bundle and t.data and t.threads
        assert isinstance(t.stage1_config, dict) and t.stage1_config["preset"] == b.info.preset


# ---- what read and write refuse -------------------------------------------------------------------
@pytest.mark.parametrize("key", ["kind", "name", "z_dim", "c_dim", "resolution", "value_range", "z_prior",
                                 "schema", "training", "g1", "version"])
def test_a_missing_field_is_named(tiny_bundle, tmp_path, key):
    meta = tiny_bundle.meta
    del meta[key]
    with pytest.raises(BundleError, match=f"lacks '{key}'"):
        bundle_mod.read(_write_json(tmp_path / "b", meta))


@pytest.mark.parametrize("where, value, message", [
    (("z_dim",), "16", "'z_dim' must be an integer"),
    (("resolution",), True, "'resolution' must be an integer"),
    (("c_dim",), 3, "schema has 25 attributes but c_dim is 3"),
    (("z_dim",), 0, "'z_dim' must be positive"),
    (("kind",), "three-stage", "'kind' must be one of"),
    (("value_range",), [1, -1], "'value_range' must be"),
    (("training", "stage1_step"), None, "'training' lacks 'stage1_step'"),
    (("training", "stage2_step"), "0", "'stage2_step' must be an integer"),
    (("training", "threads"), 1.5, "'threads' must be an integer"),
    (("g2", "name"), None, "'g2' lacks 'name'"),
    (("g1", "weights"), "../g1.safetensors", "'weights' must be a file name inside the bundle"),
    (("d",), "resnet_d", "'d' must be an object"),
    (("onnx",), {"g1": 3}, "'onnx.g1' must be a string"),
    (("files",), "bundle.json", "'files' must be a list"),
])
def test_an_ill_typed_field_is_named(tiny_bundle, tmp_path, where, value, message):
    meta = tiny_bundle.meta
    parent = meta
    for k in where[:-1]:
        parent = parent[k]
    if value is None:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    with pytest.raises(BundleError, match=message):
        bundle_mod.read(_write_json(tmp_path / "b", meta))


def test_kind_agrees_with_networks_and_steps(tiny_bundle, tmp_path):
    meta = tiny_bundle.meta
    del meta["g2"]
    with pytest.raises(BundleError, match="two-stage bundle needs a 'g2' network"):
        BundleMeta.from_dict(meta)
    meta = tiny_bundle.meta
    del meta["training"]["stage2_step"]
    with pytest.raises(BundleError, match="needs 'training.stage2_step'"):
        BundleMeta.from_dict(meta)
    meta = tiny_bundle.meta
    meta["kind"] = "stage1"
    with pytest.raises(BundleError, match="stage1 bundle must not have a 'g2' network"):
        BundleMeta.from_dict(meta)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no bundle.json"):
        bundle_mod.read(tmp_path)
    (tmp_path / "bundle.json").write_text("{")
    with pytest.raises(BundleError, match="not valid JSON"):
        bundle_mod.read(tmp_path)
    _write_json(tmp_path, {"format": "something-else"})
    with pytest.raises(BundleError, match="not a neuedit bundle"):
        bundle_mod.read(tmp_path)
    _write_json(tmp_path, {**_small_meta().to_dict(), "version": bundle_mod.VERSION + 1})
    with pytest.raises(BundleError, match="newer than this neuedit"):
        bundle_mod.read(tmp_path)


@pytest.mark.parametrize("missing", ["d.safetensors", "g2.safetensors"])
def test_a_missing_weights_file_is_named(tiny_bundle, tmp_path, missing):
    p = _copy(tiny_bundle, tmp_path / "b")
    (p / missing).unlink()
    with pytest.raises(BundleError, match=f"names {missing} for '{missing.split('.')[0]}' but the file is missing"):
        bundle_mod.read(p)


def test_a_missing_graph_or_listed_file_is_named(tiny_bundle, tmp_path):
    p = _copy(tiny_bundle, tmp_path / "b")
    info = bundle_mod.read(p).info
    # write_meta refuses to name what is not there ...
    with pytest.raises(BundleError, match="names g2.onnx for 'onnx:g2'"):
        bundle_mod.write_meta(p, replace(info, onnx={"g2": "g2.onnx"}))
    # ... and read refuses a bundle.json that does, written by hand
    _write_json(p, replace(info, onnx={"g2": "g2.onnx"}).to_dict())
    with pytest.raises(BundleError, match="names g2.onnx for 'onnx:g2'"):
        bundle_mod.read(p)
    _write_json(p, replace(info, files=("bundle.json", "notes.txt")).to_dict())
    with pytest.raises(BundleError, match="names notes.txt for 'files'"):
        bundle_mod.read(p)


# ---- the fixture bundles and the writers --------------------------------------------------------
def test_tiny_fixture_bundle_parses(tiny_bundle):
    b = bundle_mod.read(tiny_bundle.path)
    assert b.info == tiny_bundle.info and b.info.kind == "two-stage" and b.has_g2
    assert b.training_steps == {"stage1": 0, "stage2": 0}
    assert b.info.training.note == "random weights for tests"
    assert {k: n.weights for k, n in b.info.networks.items()} == {k: f"{k}.safetensors" for k in ("g1", "d", "g2", "e")}
    assert b.info.preset == "tiny" and b.info.onnx == {} and b.info.files is None


def test_stage_one_bundle_parses(tmp_path):
    from neuedit.nn.testing import make_random_bundle
    b = bundle_mod.read(make_random_bundle(tmp_path / "s1", with_g2=False, with_d=False, with_e=False).path)
    assert b.info.kind == "stage1" and not b.has_g2 and set(b.info.networks) == {"g1"}
    assert b.training_steps == {"stage1": 0} and bundle_mod.training_steps(b.meta) == {"stage1": 0}
    assert "stage2_step" not in b.meta["training"] and "g2" not in b.meta and "d" not in b.meta
    with pytest.raises(BundleError, match="has no 'd'"):
        b.file("d")


def test_stage1_write_bundle_writes_todays_layout(tmp_path):
    """The trainer's bundle.json has the keys and values it had when it was assembled by hand."""
    import torch
    from neuedit.nn import presets
    from neuedit.data.datasets import DataConfig
    from neuedit.nn.nets import build
    from neuedit.runtime.schema import BUILTIN
    from neuedit.training import RunConfig
    from neuedit.stage1.train import Stage1Config, write_bundle
    cfg = Stage1Config(data=DataConfig("faces/", resolution=16), run=RunConfig(out=str(tmp_path)), preset="tiny",
                       z_dim=16, name="faces")
    schema, p = BUILTIN["anime_faces"](), presets.get("tiny")
    g_spec, d_spec = presets.g_spec(p, 16, schema.c_dim), presets.d_spec(p, schema.c_dim)
    run = SimpleNamespace(is_main=True, out=tmp_path, digest="0123456789abcdef")
    b = write_bundle(run, cfg, schema, build(g_spec), build(d_spec), g_spec, d_spec, 7)
    expected = {"format": "neuedit-bundle", "version": 1, "name": "faces", "kind": "stage1", "domain": "faces",
                "z_dim": 16, "c_dim": 25, "resolution": 16, "value_range": [-1, 1], "z_prior": "normal",
                "schema": schema.to_dict(), "preset": "tiny",
                "training": {"stage1_step": 7, "config_digest": "0123456789abcdef", "data": "faces/",
                             "stage1_config": cfg.to_dict(), "threads": torch.get_num_threads()},
                "g1": {**g_spec, "weights": "g1.safetensors"}, "d": {**d_spec, "weights": "d.safetensors"}}
    on_disk = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert on_disk == json.loads(json.dumps(expected)) and list(on_disk) == list(expected)
    assert bundle_mod.read(b.path).info == b.info


@pytest.mark.parametrize("joint", [False, True])
def test_stage2_write_bundle_writes_todays_layout(tiny_bundle, tmp_path, joint):
    from neuedit.nn import presets
    from neuedit.nn.nets import build
    from neuedit.stage2.train import write_bundle
    s1 = tiny_bundle
    g2_spec = presets.g2_spec(presets.get("tiny"))
    run = SimpleNamespace(is_main=True, out=tmp_path, digest="fedcba9876543210")
    cfg = SimpleNamespace(name="edited", joint=joint)
    b = write_bundle(run, cfg, s1, load_module(s1, "g1"), build(g2_spec), g2_spec, 11)
    expected = {k: v for k, v in s1.meta.items() if k not in ("onnx",)}
    expected.update(kind="two-stage", name="edited", g2={**g2_spec, "weights": "g2.safetensors"})
    if joint:  # a fine-tuned G1 retires the encoder that inverted the old one
        expected.pop("e")
    expected["training"] = {**s1.meta["training"], "stage2_step": 11, "stage2_config_digest": "fedcba9876543210",
                            "stage1_bundle": str(s1.path)}
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text()) == json.loads(json.dumps(expected))
    assert b.training_steps == {"stage1": 0, "stage2": 11}
    for f in ("g1.safetensors", "d.safetensors", "g2.safetensors"):
        assert (b.path / f).is_file()


# ---- export: what it leaves in the folder is what bundle.json names --------------------------------
def test_copy_for_export_drops_graphs_and_file_list(tiny_bundle, tmp_path):
    from neuedit.export.onnx_export import copy_bundle
    src = _copy(tiny_bundle, tmp_path / "src")
    (src / "g1.onnx").write_bytes(b"stale")
    bundle_mod.write_meta(src, replace(tiny_bundle.info, onnx={"g1": "g1.onnx"}))
    out = copy_bundle(bundle_mod.read(src), tmp_path / "out")
    assert out.info == tiny_bundle.info and bundle_mod.read(out.path).info == tiny_bundle.info
    assert sorted(f.name for f in out.path.iterdir()) == ["bundle.json", "d.safetensors", "e.safetensors",
                                                          "g1.safetensors", "g2.safetensors"]


def test_serve_only_names_no_removed_weights(tiny_exported, tmp_path):
    from neuedit.runtime.editor import Editor
    from neuedit.export.onnx_export import serve_only
    p = _copy(tiny_exported, tmp_path / "served")
    b = serve_only(bundle_mod.read(p))
    assert not list(p.glob("*.safetensors"))
    assert all(n.weights is None for n in b.info.networks.values())
    assert all("weights" not in b.meta[k] for k in ("g1", "d", "g2", "e"))
    assert {k: n.spec for k, n in b.info.networks.items()} == {k: n.spec for k, n in tiny_exported.info.networks.items()}
    assert b.info.files == ("bundle.json", "encoder.onnx", "g1.onnx", "g1_detail.onnx", "g2.onnx", "latent_step.onnx")
    assert bundle_mod.read(p).info == b.info  # the folder holds every file it names
    with pytest.raises(BundleError, match="no weights for 'g1'.*serve-only"):
        b.file("g1")
    assert Editor.load(p, providers="cpu").methods == ["two-stage", "latent"]  # and it still serves
