"""Small helpers shared by the benchmarks: timing and printing a table (no assertions)."""
from __future__ import annotations

import json
import time
from pathlib import Path


def timeit(fn, warmup: int = 1, repeat: int = 5, min_time: float = 0.0) -> float:
    """Median seconds per call of fn()."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def print_table(rows: list[dict], title: str = "") -> None:
    if title:
        print(f"\n{title}")
    cols = list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print(" | ".join(c.ljust(width[c]) for c in cols))
    print("-|-".join("-" * width[c] for c in cols))
    for r in rows:
        print(" | ".join(_fmt(r[c]).ljust(width[c]) for c in cols))


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_json(rows: list[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(rows, indent=2))


def report(rows: list[dict], title: str, path: str | Path) -> None:
    """A bench's ending: its table printed, its rows written as JSON to `path`."""
    print_table(rows, title)
    write_json(rows, path)
