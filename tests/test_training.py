"""The shared training machinery: the loop over a stage's phases, flags derived from the
config dataclasses, recipe files of both stages, and the stages' independence."""
from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from neuedit.training import OptimConfig, Phase, Run, RunConfig, Stage, train_loop
from neuedit.config import flags as tcli

ROOT = Path(__file__).resolve().parents[1]


# ---- the loop ------------------------------------------------------------------------------------
class TwoPhases(Stage):
    """Phase "A" trains `a` on a loss that also runs through `b`; phase "B" trains `b`."""

    def __init__(self):
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
        self.optim = OptimConfig(lr=0.1, lr_end=0.01, decay_start=0.5)
        self.modules = {"a": self.a, "b": self.b}
        self.phases = [Phase("A", self.a, torch.optim.SGD(self.a.parameters(), lr=0.1), self.loss_a, "L_a"),
                       Phase("B", self.b, torch.optim.SGD(self.b.parameters(), lr=0.1), self.loss_b, "L_b")]
        self.calls, self.exports, self.trainable = [], [], []

    def batch(self, step):
        return {"x": torch.ones(4, 3) * (step + 1)}

    def loss_a(self, batch, step):
        self.calls.append(("A", step))
        self.trainable.append((self.a.weight.requires_grad, self.b.weight.requires_grad))
        return {"L_a": (self.a(batch["x"]) + self.b(batch["x"])).pow(2).mean()}

    def loss_b(self, batch, step):
        self.calls.append(("B", step))
        self.trainable.append((self.a.weight.requires_grad, self.b.weight.requires_grad))
        return {"L_b": self.b(batch["x"]).pow(2).mean()}

    def end_step(self, step):
        self.calls.append(("end", step))

    def export(self, step):
        self.exports.append(step)


def test_the_loop_walks_the_phases_in_order_and_trains_each_phase_module_only(tmp_path):
    run = Run(RunConfig(out=str(tmp_path / "r"), iterations=4, batch=4, log_every=1, sample_every=2,
                        ckpt_every=2, tensorboard=False, progress=False), {"x": 1})
    st = TwoPhases()
    lrs = []
    st.sample = lambda step: lrs.append(st.phases[0].opt.param_groups[0]["lr"])
    assert train_loop(run, st) == 0
    assert st.calls == [(p, s) for s in range(4) for p in ("A", "B", "end")]
    assert st.trainable == [(True, False), (False, True)] * 4  # phase A's backward never reaches b
    assert st.exports == [2, 4] and (tmp_path / "r" / "checkpoint.pt").is_file()
    assert lrs == [pytest.approx(0.1), pytest.approx(0.055)]  # the schedule: constant, then linear decay
    rows = (tmp_path / "r" / "log.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["step", "time", "L_a", "L_b"] and len(rows) == 5


def test_the_loop_resumes_from_its_checkpoint(tmp_path):
    cfg = RunConfig(out=str(tmp_path / "r"), iterations=4, batch=4, ckpt_every=10, tensorboard=False, progress=False)
    first = TwoPhases()
    train_loop(Run(cfg, {"x": 1}), first, stop_at=2)
    second = TwoPhases()
    assert train_loop(Run(cfg, {"x": 1}), second) == 2
    assert [c for c in second.calls if c[0] == "A"] == [("A", 2), ("A", 3)]
    whole = TwoPhases()
    train_loop(Run(RunConfig(**{**cfg.__dict__, "out": str(tmp_path / "w")}), {"x": 1}), whole)
    assert torch.equal(second.a.weight, whole.a.weight) and torch.equal(second.b.weight, whole.b.weight)


# ---- flags from dataclasses -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Inner:
    root: str                    # where the images are
    rate: float = 0.5            # a rate
                                 # over two lines


@dataclass(frozen=True)
class _Toy:
    inner: _Inner                # the inner section
    steps: int = 3               # how many steps
    flip: bool = True            # flip images
    bf16: bool = False           # use bf16
    size: tuple[int, int] = (1, 2)  # a pair
    names: tuple[str, ...] = ("a",)  # any number of names
    limit: int | None = None     # at most this many
    extra: _Inner = field(default_factory=lambda: _Inner("x"))  # skipped below


def _parse(argv, **kw):
    p = argparse.ArgumentParser()
    flags = tcli.add_config_arguments(p, _Toy, **kw)
    tcli.suppress_defaults(p)
    return p, flags, p.parse_args(argv)


def test_every_field_is_one_flag_with_its_comment_type_and_default():
    p, flags, _ = _parse([], aliases={"inner.root": "data"}, skip=("extra",))
    assert [f.option for f in flags] == ["--data", "--rate", "--steps", "--no-flip", "--bf16", "--size", "--names",
                                         "--limit"]
    text = p.format_help()
    assert "where the images are" in text and "a rate over two lines (default: 0.5)" in " ".join(text.split())
    assert "turn off: flip images" in " ".join(text.split())
    _, _, args = _parse(["--data", "d", "--rate", "0.25", "--no-flip", "--bf16", "--size", "3", "4",
                         "--names", "p", "q", "r", "--limit", "7"], aliases={"inner.root": "data"}, skip=("extra",))
    given = {f.path: getattr(args, f.path) for f in flags if hasattr(args, f.path)}
    assert given == {"inner.root": "d", "inner.rate": 0.25, "flip": True, "bf16": True, "size": [3, 4],
                     "names": ["p", "q", "r"], "limit": 7}  # "flip": --no-flip was given (negated in config_dict)
    _, _, none = _parse([], aliases={"inner.root": "data"}, skip=("extra",))
    assert vars(none) == {}  # flags not typed are absent: a recipe's values stay


def test_colliding_flags_are_a_developer_error():
    with pytest.raises(AssertionError, match="--root"):
        _parse([])  # inner.root and extra.root


def test_stage2_reads_a_recipe_and_typed_flags_override_it(tmp_path, tiny_bundle):
    from neuedit.stage2 import cli
    recipe = tmp_path / "s2.toml"
    recipe.write_text(f'stage1 = "{tiny_bundle.path}"\nname = "toy"\n[data]\nroot = "imgs"\n'
                      f'[run]\nout = "{tmp_path / "out"}"\niterations = 9\n[mix]\nrecolour = 0.9\n'
                      f'[strokes]\nmax_strokes = 2\n')
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    cfg = cli.build_config(p.parse_args(["--config", str(recipe), "--iterations", "5", "--l-region", "3",
                                         "--strokes", "2", "4", "--no-residual"]))
    assert cfg.name == "toy" and cfg.run.iterations == 5 and cfg.loss.l_region == 3.0
    assert cfg.mix.recolour == 0.9 and cfg.mix.strokes == (2, 4) and cfg.strokes.max_strokes == 2
    assert cfg.residual is False and cfg.data.resolution == tiny_bundle.resolution
    assert cfg.run.batch > 0 and cfg.loss.l_l1 == 10.0  # untouched settings keep the dataclass defaults


def test_shipped_stage2_recipes_are_valid_configs(tiny_bundle):
    from neuedit.config import recipes as cfg_mod
    from neuedit.stage2.train import Stage2Config
    recipes = sorted((ROOT / "recipes" / "stage2").glob("*.toml"))
    names = {"anime", "shoes", "handbags"}
    assert {p.stem for p in recipes} == (names | {f"{n}-semantic{s}" for n in names for s in ("", "-2")}
                                         | {f"{n}-semantic-{k}" for n in names for k in (3, 4)})
    for path in recipes:
        d = cfg_mod.read(path)
        d["data"]["resolution"] = 64
        d["run"]["batch"] = d["run"].get("batch", 16)
        cfg = cfg_mod.from_dict(Stage2Config, d)
        name = path.stem.split("-")[0]
        assert cfg.objective == "pairs" and cfg.name == name
        # the weights each shipped G2 was trained with (README, "Lines at 64 px")
        assert cfg.loss.l_line == {"shoes": 0.5, "anime": 0.5, "handbags": 1.0}[name]
        if "-semantic" in path.stem:  # the semantic phases continue the exported G2 on semantic pairs
            assert cfg.init_from == cfg.stage1 == f"neuedit/models/{name}"
            assert (cfg.mix.attribute if name == "anime" else cfg.mix.object) >= 0.45
            # the anime G2's last phases train with the keep layer the shipped one runs with
            assert cfg.keep == (10.0 if name == "anime" and path.stem[-1] in "34" else 0.0)
        else:
            assert cfg.run.iterations == 1500


def test_train_demos_chains_every_recipe_in_order():
    """scripts/train_demos.sh reproduces the shipped models: every recipe is in one demo's list,
    each stage-one phase warm-starts from the previous phase's bundle, and stage two is built on
    the last one (a recipe added but not chained would ship weights nobody can reproduce)."""
    import re
    from neuedit.config import recipes as cfg_mod
    text = (ROOT / "scripts" / "train_demos.sh").read_text()
    chains = dict(re.findall(r'\[(\w+)\]="([^"]+)"', text))
    assert set(chains) == {"anime", "shoes", "handbags"}
    listed = []
    for name, items in chains.items():
        prev = None
        for item in items.split():
            cmd, path = item.split(":")
            d = cfg_mod.read(ROOT / path)
            listed.append(path)
            if cmd == "train-stage1":
                assert d.get("init_from") == (prev and f"{prev}/bundle"), path
                prev = d["run"]["out"]
            else:
                assert cmd == "train-stage2" and d["stage1"] == f"{prev}/bundle" and d["name"] == name, path
        assert item.startswith("train-stage2:"), f"{name} ends without stage two"
    # each demo's semantic phase runs after the export, from it (its recipe names neuedit/models/<n>)
    assert 'for recipe in recipes/stage2/$n-semantic.toml recipes/stage2/$n-semantic-[0-9].toml' in text
    listed += [str(p.relative_to(ROOT)) for n in chains for p in (ROOT / "recipes" / "stage2").glob(f"{n}-semantic*.toml")]
    # and the photo encoder last, from the finished bundle
    assert 'for recipe in recipes/encoder/$n.toml recipes/encoder/$n-[0-9].toml' in text
    assert 'train train-encoder "$recipe"' in text
    for p in (ROOT / "recipes" / "encoder").glob("*.toml"):
        name, _, phase = p.stem.partition("-")
        d = cfg_mod.read(p)
        assert name in chains and d["bundle"] == f"neuedit/models/{name}", p
        if phase:  # a phase starts from the run of the one before
            before = ROOT / "recipes" / "encoder" / (f"{name}.toml" if phase == "2" else f"{name}-{int(phase) - 1}.toml")
            assert phase.isdigit() and d["init_from"] == cfg_mod.read(before)["run"]["out"] + "/bundle", p
        listed.append(str(p.relative_to(ROOT)))
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").rglob("*.toml"))
    assert sorted(listed) == files


# ---- structure --------------------------------------------------------------------------------------
def _imports(folder: Path) -> set[str]:
    out = set()
    for f in folder.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add(node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
    return out


def test_the_stages_import_nothing_from_each_other():
    assert not any(m.startswith("neuedit.stage2") for m in _imports(ROOT / "stage1"))
    assert not any(m.startswith("neuedit.stage1") for m in _imports(ROOT / "stage2"))
