"""Every command's flags come from its config dataclass (neuedit.config.flags): one flag per leaf
field and nothing else but the declared run control, each with its field's comment as help, and
a typed flag reaches the field it names."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import typing
from pathlib import Path

import pytest

from neuedit.cli.main import SUBCOMMANDS
from neuedit.config import flags as tcli


def _configs() -> dict:
    """command -> (its config dataclass, the paths it leaves to recipes)"""
    from neuedit.cli import compare
    from neuedit.cli.edit import EditCommand
    from neuedit.cli.evaluate import EvaluateCommand
    from neuedit.cli.sample import SampleCommand
    from neuedit.data.prepare import PrepareCommand
    from neuedit.export.cli import ExportCommand
    from neuedit.server.cli import ServeCommand
    from neuedit.server.export_web import ExportWebCommand
    from neuedit.stage1 import cli as s1
    from neuedit.stage1.train import Stage1Config
    from neuedit.stage2 import cli as s2
    from neuedit.stage2.train import Stage2Config
    from neuedit.encoder import cli as enc
    from neuedit.encoder.train import EncoderConfig
    return {"train-encoder": (EncoderConfig, enc.SKIP), "prepare": (PrepareCommand, ()), "train-stage1": (Stage1Config, s1.SKIP),
            "train-stage2": (Stage2Config, s2.SKIP), "sample": (SampleCommand, ()), "edit": (EditCommand, ()),
            "export": (ExportCommand, ()), "serve": (ServeCommand, ()), "evaluate": (EvaluateCommand, ()),
            "compare": (compare.CompareCommand, compare.SKIP), "export-web": (ExportWebCommand, ())}


RUN_CONTROL = {t: {"config", "resume", "stop_at"} for t in ("train-stage1", "train-stage2", "train-encoder")}


def _parser(command: str) -> tuple[object, argparse.ArgumentParser]:
    module = importlib.import_module(SUBCOMMANDS[command][0])
    p = argparse.ArgumentParser(prog=f"neuedit {command}")
    module.add_arguments(p)
    return module, p


def _leaf_paths(cls, prefix: str = "") -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        out |= _leaf_paths(t, prefix + f.name + ".") if dataclasses.is_dataclass(t) else {prefix + f.name}
    return out


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions if a.dest != "help" for s in (a.option_strings or [a.dest])}


def test_every_command_is_covered():
    assert set(SUBCOMMANDS) == set(_configs())


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_the_flags_are_exactly_the_config_fields(command):
    cls, skip = _configs()[command]
    _, p = _parser(command)
    dests = {a.dest for a in p._actions if a.dest != "help"}
    fields = {f for f in _leaf_paths(cls) if not any(f == s or f.startswith(s + ".") for s in skip)}
    assert dests == fields | RUN_CONTROL.get(command, set())
    for a in p._actions:  # each field's comment is its help
        assert a.help, f"{command}: {a.option_strings or a.dest} has no help (a field without a comment)"
    p.format_help()  # --help renders


# the option names users type: they stayed what the hand-written parsers had (plus new fields)
OPTIONS = {
    "sample": {"--bundle", "--out", "--n", "--nrow", "--seed", "--scale", "--onnx"},
    "edit": {"--bundle", "--sketch", "--out", "--state", "--image", "--method", "--seed", "--frames", "--optimizer",
             "--lr", "--lr-c", "--steps", "--no-edit-c", "--anchor", "--paste", "--no-choose-c", "--restarts",
             "--project-c"},
    "evaluate": {"bundles", "--data", "--out", "--label", "--layout", "--pair-image", "--labels", "--skip", "--limit",
                 "--train-data", "--train-limit", "--schema", "--samples", "--attr-samples", "--floor-images",
                 "--classifier-steps", "--classifier", "--seed"},
    "prepare": {"inputs", "--out", "--cascade", "--size", "--margin", "--min-face", "--scale-factor",
                "--min-neighbors", "--all-faces"},
    "export": {"bundle", "--out", "--opset", "--check", "--serve-only", "--tol"},
    "serve": {"--bundle", "--host", "--port", "--workers", "--shutdown-timeout", "--log-level", "--threads",
              "--inference-threads", "--providers", "--batching", "--batch-window-ms", "--max-batch", "--queue-size",
              "--max-steps", "--max-project-steps", "--max-body-mb", "--max-sketch-pixels", "--max-photo-pixels",
              "--retry-after-s", "--decode-threads", "--static-dir", "--max-lr"},
    "compare": {"--bundle", "--tasks", "--out", "--make-tasks", "--data", "--layout", "--pair-image", "--labels",
                "--skip", "--n", "--seed", "--kinds", "--sources", "--user-sketches", "--chains", "--rounds",
                "--heldout", "--pool", "--edges", "--truth", "--truth-real", "--truth-samples", "--truth-strokes",
                "--truth-kinds", "--truth-fills", "--latent-steps", "--optimizer", "--lr", "--anchor",
                "--no-two-stage", "--project-steps", "--dilate", "--edge-tol", "--grid-tasks", "--threads",
                "--quiet"},
}


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_option_names(command):
    assert _options(_parser(command)[1]) == OPTIONS[command]


def _build(command: str, argv: list[str]):
    module, p = _parser(command)
    return module.build_config(p.parse_args(argv))


def test_sample_flags_reach_the_config():
    cmd = _build("sample", ["--bundle", "b", "--out", "o.png", "--nrow", "3", "--onnx"])
    assert (cmd.bundle, cmd.out, cmd.nrow, cmd.n, cmd.onnx) == ("b", Path("o.png"), 3, 16, True)


def test_edit_flags_reach_the_command_and_its_edit_config():
    from neuedit.runtime.state import EditConfig
    base = ["--bundle", "b", "--sketch", "s.png", "--out", "o.png"]
    cmd = _build("edit", base)
    assert cmd.latent == EditConfig() and cmd.method == "latent" and cmd.state is None
    cmd = _build("edit", base + ["--lr-c", "0.3", "--no-choose-c", "--project-c", "--method", "two-stage",
                                 "--state", "st.json", "--steps", "4"])
    assert cmd.latent == EditConfig(lr_c=0.3, choose_c=False, project_c=True, steps=4)
    assert cmd.method == "two-stage" and cmd.state == Path("st.json") and cmd.sketch == Path("s.png")
    with pytest.raises(SystemExit):  # a Literal's choices
        _build("edit", base + ["--method", "both"])
    with pytest.raises(SystemExit):  # a field without a default is a required flag
        _build("edit", base[:4])


def test_evaluate_positional_and_repeated_flags():
    cmd = _build("evaluate", ["b1", "b2", "--data", "d", "--out", "o", "--label", "one", "--label", "two",
                              "--pair-image", "right", "--train-limit", "5"])
    assert cmd.bundles == ("b1", "b2") and cmd.label == ("one", "two")
    assert (cmd.pair_image, cmd.train_limit, cmd.limit, cmd.layout) == ("right", 5, None, "single")
    # one value per --label: a bundle after it stays a bundle
    assert _build("evaluate", ["--label", "x", "b1", "--data", "d", "--out", "o"]).bundles == ("b1",)


def test_prepare_flags_reach_the_crop_config():
    cmd = _build("prepare", ["a.png", "faces/", "--out", "o", "--cascade", "c.xml", "--min-neighbors", "7",
                             "--margin", "0.5", "--all-faces"])
    assert cmd.inputs == (Path("a.png"), Path("faces/")) and cmd.out == Path("o") and cmd.all_faces
    assert (cmd.crop.cascade, cmd.crop.min_neighbors, cmd.crop.margin, cmd.crop.size) == ("c.xml", 7, 0.5, 96)


def test_export_flags():
    cmd = _build("export", ["B", "--opset", "17", "--serve-only", "--out", "O"])
    assert (cmd.bundle, cmd.opset, cmd.serve_only, cmd.check, cmd.out, cmd.tol) == ("B", 17, True, False, "O", None)


@pytest.fixture
def serve_checks_nothing(monkeypatch):
    from neuedit.server import cli
    monkeypatch.setattr(cli, "resolve_bundles", lambda given: list(given or ["shipped"]))


def test_serve_defaults_are_the_server_configs(serve_checks_nothing):
    from neuedit.server.config import ServerConfig
    cmd = _build("serve", [])
    cores = os.cpu_count() or 1
    assert cmd.server == ServerConfig(bundles=("shipped",), inference_threads=cores)
    assert (cmd.host, cmd.port, cmd.workers, cmd.log_level) == ("127.0.0.1", 8080, 1, "info")


def test_every_server_config_field_is_set_from_its_flag(serve_checks_nothing):
    cmd = _build("serve", ["--bundle", "a", "--bundle", "b", "--max-body-mb", "0.5", "--batching", "off",
                           "--threads", "0", "--max-lr", "3", "--static-dir", "web", "--workers", "2", "--port", "9000",
                           "--retry-after-s", "4", "--decode-threads", "3", "--max-sketch-pixels", "100",
                           "--max-photo-pixels", "200", "--queue-size", "5", "--max-steps", "6",
                           "--max-project-steps", "7", "--batch-window-ms", "1.5", "--max-batch", "8",
                           "--inference-threads", "9", "--providers", "cpu", "--log-level", "debug",
                           "--shutdown-timeout", "2", "--host", "0.0.0.0"])
    s = cmd.server
    assert s.bundles == ("a", "b") and s.max_body_bytes == 2**19 and s.batching is False and s.threads is None
    assert (s.max_lr, s.static_dir, s.retry_after_s, s.decode_threads) == (3.0, "web", 4, 3)
    assert (s.max_sketch_pixels, s.max_photo_pixels, s.queue_size, s.max_steps) == (100, 200, 5, 6)
    assert (s.max_project_steps, s.batch_window_ms, s.max_batch, s.inference_threads) == (7, 1.5, 8, 9)
    assert s.providers == "cpu"
    assert (cmd.workers, cmd.port, cmd.log_level, cmd.shutdown_timeout, cmd.host) == (2, 9000, "debug", 2.0, "0.0.0.0")
    assert _build("serve", ["--workers", "2"]).server.inference_threads == max(1, (os.cpu_count() or 1) // 2)
    assert _build("serve", ["--threads", "3", "--batching", "on"]).server.threads == 3


def test_serve_refuses_bad_process_settings(serve_checks_nothing):
    with pytest.raises(tcli.UsageError, match="--workers must be at least 1"):
        _build("serve", ["--workers", "0"])
    with pytest.raises(tcli.UsageError, match="fixed --port"):
        _build("serve", ["--workers", "2", "--port", "0"])


def test_compare_flags_reach_the_task_truth_and_compare_configs():
    from neuedit.compare.config import CompareConfig
    from neuedit.compare.tasks import TaskConfig
    from neuedit.compare.truth_draw import TruthConfig
    cmd = _build("compare", ["--bundle", "b"])
    assert (cmd.task_set, cmd.truth_set, cmd.compare) == (TaskConfig(), TruthConfig(), CompareConfig())
    assert (cmd.tasks, cmd.out, cmd.data, cmd.layout, cmd.make_tasks, cmd.truth) == (None, None, (), "auto", False, False)
    cmd = _build("compare", ["--bundle", "b", "--tasks", "t", "--out", "o", "--data", "d1", "d2", "--make-tasks",
                             "--n", "4", "--kinds", "edge", "--seed", "3", "--heldout", "9", "--pool", "50",
                             "--edges", "canny", "--truth-real", "2", "--truth-strokes", "1", "5",
                             "--truth-fills", "blur", "--latent-steps", "1", "3", "--optimizer", "gd", "--lr", "0.5",
                             "--no-two-stage", "--grid-tasks", "0", "--user-sketches", "u", "--threads", "2"])
    assert (cmd.tasks, cmd.out, cmd.data, cmd.user_sketches, cmd.threads) == (Path("t"), Path("o"), ("d1", "d2"),
                                                                               Path("u"), 2)
    assert cmd.task_set == TaskConfig(n=4, kinds=("edge",), seed=3, heldout=9, pool=50, edges="canny")
    # --seed, --heldout, --pool and --edges draw the ground-truth set too
    assert cmd.truth_set == TruthConfig(real=2, strokes=(1, 5), fills=("blur",), seed=3, heldout=9, pool=50,
                                        edges="canny")
    assert cmd.compare == CompareConfig(latent_steps=(1, 3), optimizer="gd", lr=0.5, two_stage=False, grid_tasks=0)
    # --latent-steps without a count: the two-stage editor alone
    assert _build("compare", ["--bundle", "b", "--latent-steps"]).compare.latent_steps == ()
    for bad in (["--kinds", "dots"], ["--optimizer", "sgd"], ["--truth-fills", "given"]):  # the choices stay
        with pytest.raises(SystemExit):
            _build("compare", ["--bundle", "b", *bad])
    with pytest.raises(SystemExit):  # --bundle is required
        _build("compare", ["--out", "o"])


def test_trainer_aliases_reach_their_paths():
    cfg = _build("train-stage1", ["--data", "d", "--out", "o", "--loss", "hinge", "--lr", "0.002", "--no-flip"])
    assert (cfg.data.root, cfg.run.out, cfg.loss.adv, cfg.optim.lr, cfg.data.flip) == ("d", "o", "hinge", 0.002, False)


# ---- the builder's declared forms ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Cmd:
    files: tuple[str, ...]                  # input files
    size: int = 8 * 2**20                   # a byte count
    mode: typing.Literal["a", "b"] = "a"    # one of two
    fast: bool = True                       # go fast
    tag: tuple[str, ...] = ()               # tags


def test_units_on_off_positional_and_repeat():
    declared = dict(positional=("files",), units={"size": ("MiB", 2**20)}, aliases={"size": "size-mb"},
                    on_off=("fast",), repeat=("tag",))
    p = argparse.ArgumentParser()
    flags = tcli.add_command_arguments(p, _Cmd, **declared)
    text = " ".join(p.format_help().split())
    assert "a byte count, in MiB (default: 8)" in text and "{on,off}" in text and "{a,b}" in text
    cmd = tcli.build(_Cmd, p.parse_args(["x", "y", "--size-mb", "1.5", "--fast", "off", "--tag", "t", "--tag", "u"]),
                     flags)
    assert cmd == _Cmd(files=("x", "y"), size=3 * 2**19, fast=False, tag=("t", "u"))
    assert tcli.build(_Cmd, p.parse_args(["x"]), flags) == _Cmd(files=("x",))
    with pytest.raises(SystemExit):
        p.parse_args(["x", "--mode", "c"])
