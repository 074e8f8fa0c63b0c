"""Trainer commands' flags, derived from the config dataclasses, and recipe files.

Every leaf field of a trainer's config becomes one flag: `--<field-name>` (underscores as
dashes), its type from the annotation, its help from the field's comment in the source and
its default from the dataclass; a bool that defaults to True is turned off with
`--no-<field-name>`. A new field is one line in its dataclass. `--config` reads a recipe
(.toml) or a run's config.json; the flags a user typed override it, nothing else does.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from pathlib import Path

from neuedit.config import recipes as cfg_mod
from neuedit.errors import UsageError  # noqa: F401  (re-exported for the commands)


@dataclasses.dataclass(frozen=True)
class Flag:
    path: str          # dotted path in the config, e.g. "optim.lr"
    option: str        # "--lr"
    negate: bool       # "--no-x" stores False


def _comments(cls) -> dict[str, str]:
    """Field name -> the comment after it in `cls`'s source (continuation lines appended)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out, last = {}, None
    for line in lines:
        m = re.match(r"\s+(\w+)\s*:[^#]*#\s*(.*)$", line)
        if m:
            last = m.group(1)
            out[last] = m.group(2).strip()
            continue
        m = re.match(r"\s+#\s*(.*)$", line)
        if m and last:
            out[last] += " " + m.group(1).strip()
        else:
            last = None
    return out


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _leaves(cls, prefix: str, default):
    """(path, type, default, comment) of every leaf of dataclass `cls`; sections: (path, None, None, comment)."""
    hints, notes = typing.get_type_hints(cls), _comments(cls)
    for f in dataclasses.fields(cls):
        path, t = prefix + f.name, hints[f.name]
        d = getattr(default, f.name) if default not in (None, dataclasses.MISSING) else _default(f)
        if dataclasses.is_dataclass(t):
            yield path, None, None, notes.get(f.name, "")
            yield from _leaves(t, path + ".", d)
        else:
            yield path, t, d, notes.get(f.name, "")


def _scalar(t):
    """int | None -> int; the element type of tuple[int, int] / tuple[str, ...]."""
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if args and typing.get_origin(t) in (tuple, typing.Union, types.UnionType):
        return args[0]
    return t


def add_config_arguments(p: argparse.ArgumentParser, cls, *, aliases: dict[str, str] | None = None,
                         skip: tuple[str, ...] = ()) -> list[Flag]:
    """Add one flag per leaf of dataclass `cls` (except paths starting with one of `skip`, which
    recipes still set); `aliases` renames a path's flag, e.g. {"data.root": "data"}. Returns the
    flags, for `config_dict`."""
    aliases = aliases or {}
    flags, seen = [], {}
    top = group = p.add_argument_group(cls.__name__)
    section = None
    for path, t, default, note in _leaves(cls, "", None):
        if any(path == s or path.startswith(s + ".") for s in skip):
            continue
        if t is None:  # a section: its own group in --help
            group, section = p.add_argument_group(path, note or None), path + "."
            continue
        if section and not path.startswith(section):
            group, section = top, None
        name = aliases.get(path, path.rsplit(".", 1)[-1]).replace("_", "-")
        negate = t is bool and default is True
        option = f"--no-{name}" if negate else f"--{name}"
        if option in seen:
            raise AssertionError(f"flag {option} would set both {seen[option]} and {path}: alias or skip one")
        seen[option] = path
        shown = "" if default is dataclasses.MISSING or t is bool else f" (default: {default})"
        help_ = (("turn off: " if negate else "") + note + shown).strip() or None
        if t is bool:
            group.add_argument(option, dest=path, action="store_true", help=help_)
        elif typing.get_origin(t) is tuple:
            n = "+" if Ellipsis in typing.get_args(t) else len(typing.get_args(t))
            group.add_argument(option, dest=path, type=_scalar(t), nargs=n, metavar=name.upper(), help=help_)
        else:
            group.add_argument(option, dest=path, type=_scalar(t), metavar=name.upper(), help=help_)
        flags.append(Flag(path, option, negate))
    return flags


def add_run_control(p: argparse.ArgumentParser) -> None:
    """What is not configuration: the recipe to start from, resume, an early stop."""
    g = p.add_argument_group("run control")
    g.add_argument("--config", help="a recipe (.toml) or a run's config.json to start from; flags override it")
    g.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    g.add_argument("--stop-at", type=int, help="stop after this iteration (checkpointed; resume later)")


def suppress_defaults(p: argparse.ArgumentParser) -> None:
    """A flag that is not given is absent, so a --config value is only overridden by flags the user typed."""
    for action in p._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS
            action.required = False


def config_dict(args, flags: list[Flag]) -> dict:
    """--config (if any) overlaid with the flags given, as a nested dict of the config's shape."""
    base = cfg_mod.read(args.config) if getattr(args, "config", None) else {}
    over: dict = {}
    for f in flags:
        if hasattr(args, f.path):
            v = getattr(args, f.path)
            node = over
            *parents, leaf = f.path.split(".")
            for k in parents:
                node = node.setdefault(k, {})
            node[leaf] = (not v) if f.negate else (tuple(v) if isinstance(v, list) else v)
    d = cfg_mod.merge(base, over)
    if "root" not in d.get("data", {}):
        raise UsageError("give --data (or a --config with data.root)")
    if "out" not in d.get("run", {}):
        raise UsageError("give --out (or a --config with run.out)")
    return d


def check_resume(args, out: str) -> None:
    if (Path(out) / "checkpoint.pt").exists() and not getattr(args, "resume", False):
        raise UsageError(f"{out} already holds a checkpoint: pass --resume to continue it, or choose another --out")


def launch(args, cfg, train_fn) -> int:
    """What every trainer's command does with a built config: refuse to clobber, train, report."""
    check_resume(args, cfg.run.out)
    b = train_fn(cfg, stop_at=getattr(args, "stop_at", None))
    if b is not None:
        print(f"bundle: {b.path}")
    return 0
