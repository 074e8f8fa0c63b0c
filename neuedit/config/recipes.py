"""Frozen dataclass configs to and from plain dicts (config.json, recipe TOML files).

A run's `config.json` and a checked-in recipe share one schema: the dataclass's fields, with
nested dataclasses as nested tables. `from_dict` rebuilds the dataclass and refuses unknown keys,
so a typo in a recipe is an error, not a silently ignored setting.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from pathlib import Path
from neuedit.errors import UsageError


def from_dict(cls, d: dict):
    """Build dataclass `cls` from `d`; nested dataclass fields from nested dicts; lists -> tuples
    where the field's default is a tuple."""
    if not isinstance(d, dict):
        raise UsageError(f"{cls.__name__}: expected a table, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise UsageError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kw = {}
    for k, v in d.items():
        t = hints[k]
        if dataclasses.is_dataclass(t):
            kw[k] = from_dict(t, v)
        elif isinstance(v, list):
            kw[k] = tuple(v)
        else:
            kw[k] = v
    try:
        return cls(**kw)
    except TypeError as e:  # a required setting is missing
        raise UsageError(f"{cls.__name__}: {e}") from None


def merge(base: dict, over: dict) -> dict:
    """Nested dict update: `over`'s leaves replace `base`'s."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read(path: str | Path) -> dict:
    """A recipe (.toml) or a run's config.json -> dict."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise UsageError(f"config {p}: cannot be read ({e.strerror})") from None
    try:
        return tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"config {p}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'} ({e})") from None


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
