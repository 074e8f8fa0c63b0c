"""Every command's flags, derived from its config dataclass, and recipe files.

Every leaf field of a command's config becomes one flag: `--<field-name>` (underscores as
dashes), its type from the annotation (the choices of a `Literal`), its help from the field's
comment in the source and its default from the dataclass; a bool that defaults to True is
turned off with `--no-<field-name>`. A new field is one line in its dataclass. A flag that is
not typed is absent from the parsed arguments, so the dataclass's default (or a recipe's value)
applies: the command line and the Python API cannot disagree.

A command adds its flags with `add_command_arguments` (fields without a default are required)
and builds its config with `build`; `add_config_arguments` takes what a command declares
beyond the fields: `aliases` (a path's flag name), `skip`, `positional`, `repeat` (one value per
use, `--bundle A --bundle B`), `units` (the flag takes another unit, e.g. MiB for a byte
count), `on_off` (a bool typed as `--x on|off`) and `defaults` (the default the command applies
itself, shown in --help). The trainers add `add_run_control`: `--config` reads a recipe (.toml)
or a run's config.json, and the flags a user typed override it, nothing else does
(`config_dict`). docs/training.md lists the trainers' flags and recipes.
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
    option: str        # "--lr" (a positional argument: its name)
    negate: bool       # "--no-x" stores False
    convert: typing.Callable | None = None  # the typed value -> the config's (units, on/off)


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


def _choices(t) -> tuple | None:
    """The values of a Literal annotation (also inside an optional or a tuple), else None."""
    e = _scalar(t)
    return typing.get_args(e) if typing.get_origin(e) is typing.Literal else None


def _shown(default) -> str:
    """" (default: X)" for --help; nothing where the default says nothing (None, "", an empty tuple)."""
    if default is dataclasses.MISSING or default is None or default == "" or default == ():
        return ""
    if isinstance(default, tuple):  # as it is typed: --size 1 2
        default = " ".join(str(v) for v in default)
    elif isinstance(default, float):
        default = f"{default:g}"
    return f" (default: {default})"


def add_config_arguments(p: argparse.ArgumentParser, cls, *, aliases: dict[str, str] | None = None,
                         skip: tuple[str, ...] = (), positional: tuple[str, ...] = (),
                         repeat: tuple[str, ...] = (), units: dict[str, tuple[str, float]] | None = None,
                         on_off: tuple[str, ...] = (), defaults: dict[str, object] | None = None,
                         choices: dict[str, tuple] | None = None, may_be_empty: tuple[str, ...] = (),
                         title: str | None = None) -> list[Flag]:
    """Add one flag per leaf of dataclass `cls` (except paths starting with one of `skip`, which
    recipes still set). What a command declares per dotted path: `aliases` renames its flag, e.g.
    {"data.root": "data"}; `positional` makes it a positional argument (a tuple: one or more
    values); `repeat` has a tuple field take one value per use of its flag (`--label a --label b`)
    rather than several after one; `units` {path: (unit, factor)} has the flag take the value in
    that unit (the config gets value * factor); `on_off` types a bool as `--x on|off` rather than
    `--x` / `--no-x`; `defaults` is the default the command applies itself when the flag is
    absent, shown in --help instead of the dataclass's; `choices` {path: values} restricts a
    plain-typed field (a `Literal` type does the same by itself); a tuple field in `may_be_empty`
    takes its flag with no value too. Fields without a default (in the
    dataclass or `defaults`) are required (`suppress_defaults` lifts that where a recipe may set
    them). The options go into an argument group titled `title` (None: the class name; "": the
    parser's own options), a nested dataclass's into a group of its own. Returns the flags, for
    `given`, `build` and `config_dict`."""
    aliases, units, defaults, declared_choices = aliases or {}, units or {}, defaults or {}, choices or {}
    flags, seen = [], {}
    top = group = p if title == "" else p.add_argument_group(title or cls.__name__)
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
        is_tuple, choices = typing.get_origin(t) is tuple, tuple(declared_choices.get(path, ())) or _choices(t)
        kind = choices and type(choices[0]) or _scalar(t)
        negate = t is bool and default is True and path not in on_off
        option = name if path in positional else f"--no-{name}" if negate else f"--{name}"
        if option in seen:
            raise AssertionError(f"flag {option} would set both {seen[option]} and {path}: alias or skip one")
        seen[option] = path
        convert = None
        shown = defaults.get(path, default)
        if path in units:
            unit, factor = units[path]
            note += f", in {unit}"
            convert = (lambda v, k=factor: int(round(v * k))) if t is int else (lambda v, k=factor: v * k)
            kind, shown = float, shown / factor if isinstance(shown, (int, float)) else shown
        if path in on_off:
            choices, convert, shown = ("on", "off"), (lambda v: v == "on"), shown and "on" or "off"
        elif t is bool:
            shown = dataclasses.MISSING
        if path in repeat:
            note += "; repeat the flag for several"
        help_ = (("turn off: " if negate else "") + note + _shown(shown)).strip() or None
        kw = dict(help=help_, choices=choices, metavar=None if choices else name.upper())
        required = default is dataclasses.MISSING and path not in defaults  # else the command fills it in
        if path in positional:
            nargs = ("+" if required else "*") if is_tuple else (None if required else "?")
            p.add_argument(path, type=kind, nargs=nargs, **kw)  # dest: the path; --help: the metavar
        elif t is bool and path not in on_off:
            group.add_argument(option, dest=path, action="store_true", help=help_)
        elif path in repeat:
            group.add_argument(option, dest=path, action="append", type=kind, required=required, **kw)
        elif is_tuple:
            n = "*" if path in may_be_empty else "+" if Ellipsis in typing.get_args(t) else len(typing.get_args(t))
            group.add_argument(option, dest=path, type=kind, nargs=n, required=required, **kw)
        else:
            group.add_argument(option, dest=path, type=None if path in on_off else kind, required=required, **kw)
        flags.append(Flag(path, option, negate, convert))
    return flags


def add_command_arguments(p: argparse.ArgumentParser, cls, **declared) -> list[Flag]:
    """The flags of a command without recipes: `add_config_arguments(p, cls, **declared)` in
    the parser's own options, with no argparse defaults (the dataclass's apply in `build`) and
    the fields that have no default required."""
    declared.setdefault("title", "")
    flags = add_config_arguments(p, cls, **declared)
    suppress_defaults(p, keep_required=True)
    return flags


@dataclasses.dataclass(frozen=True)
class Command:
    """A command without recipes, from its config dataclass: `add_arguments(p)` and
    `build_config(args)` (the module-level functions `neuedit.cli.main` calls)."""
    cls: type
    declared: dict = dataclasses.field(default_factory=dict)  # add_config_arguments' per-path declarations

    def add_arguments(self, p: argparse.ArgumentParser) -> list[Flag]:
        return add_command_arguments(p, self.cls, **self.declared)

    def build_config(self, args):
        return build(self.cls, args, flags_of(self.cls, **self.declared))


@dataclasses.dataclass(frozen=True)
class Trainer:
    """A trainer's flags over a recipe (`--config`), from its config dataclass: `add_arguments(p)`
    and `config_dict(args)`, the recipe overlaid with the flags typed (the command fills in
    what depends on the data or the bundle, then `recipes.from_dict`)."""
    cls: type
    declared: dict = dataclasses.field(default_factory=dict)

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        add_run_control(p)
        add_config_arguments(p, self.cls, **self.declared)
        suppress_defaults(p)

    def config_dict(self, args) -> dict:
        return config_dict(args, flags_of(self.cls, **self.declared))

    def build_config(self, args, fill, needs: str | None = None):
        """The config: `config_dict`, then `fill(d)` sets what depends on the data or the bundle
        in place; `needs` names a field that must come from a flag or the recipe."""
        d = self.config_dict(args)
        if needs and needs not in d:
            raise UsageError(f"give --{needs.replace('_', '-')} (or a --config with {needs})")
        fill(d)
        return cfg_mod.from_dict(self.cls, d)


def flags_of(cls, **declared) -> list[Flag]:
    """The flags `add_config_arguments(..., cls, **declared)` adds, without a parser to add them to."""
    return add_config_arguments(argparse.ArgumentParser(add_help=False), cls, **declared)


def add_run_control(p: argparse.ArgumentParser) -> None:
    """What is not configuration: the recipe to start from, resume, an early stop."""
    g = p.add_argument_group("run control")
    g.add_argument("--config", help="a recipe (.toml) or a run's config.json to start from; flags override it")
    g.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    g.add_argument("--stop-at", type=int, help="stop after this iteration (checkpointed; resume later)")


def suppress_defaults(p: argparse.ArgumentParser, keep_required: bool = False) -> None:
    """A flag that is not given is absent, so a --config value (or the dataclass's default) is only
    overridden by flags the user typed; unless `keep_required`, no flag is required (a recipe may
    set it)."""
    for action in p._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS
            if not keep_required:
                action.required = False


def given(args, flags: list[Flag]) -> dict:
    """The flags typed, as a nested dict of the config's shape (negations and units applied,
    lists as tuples)."""
    over: dict = {}
    for f in flags:
        if hasattr(args, f.path):
            v = getattr(args, f.path)
            v = (not v) if f.negate else (tuple(v) if isinstance(v, list) else v)
            node = over
            *parents, leaf = f.path.split(".")
            for k in parents:
                node = node.setdefault(k, {})
            node[leaf] = f.convert(v) if f.convert else v
    return over


def build(cls, args, flags: list[Flag], base: dict | None = None):
    """Dataclass `cls` from the flags typed over `base` (a nested dict; the dataclass's defaults
    fill the rest); a bad or missing value is a UsageError."""
    return cfg_mod.from_dict(cls, cfg_mod.merge(base or {}, given(args, flags)))


def config_dict(args, flags: list[Flag]) -> dict:
    """A trainer's --config (if any) overlaid with the flags given, as a nested dict of the config's shape."""
    base = cfg_mod.read(args.config) if getattr(args, "config", None) else {}
    d = cfg_mod.merge(base, given(args, flags))
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
