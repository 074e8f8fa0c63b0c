"""Load test of the editing server on loopback (a benchmark, not a test: it prints, it asserts nothing).

It starts `neuedit serve` twice in subprocesses, batching off and on, then for each method and
each number of concurrent clients sends edit requests as fast as the clients can (bounded by
--requests and --seconds per cell), alternating between the two servers in short rounds, and
reports requests/s, p50 and p99 latency, and the mean number of requests per engine call.
Prints a table and writes JSON. On a shared machine the numbers move with the neighbours'
load: compare variants within one run, not across runs.

    python bench/bench_server.py                       # a demo-sized random bundle (64x64, z 128)
    python bench/bench_server.py --bundle neuedit/models/anime --clients 1 8 --seconds 5

Without --bundle it uses the first shipped bundle, or builds and exports a random `demo`
bundle once into --work (needs torch and onnx: the dev install).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def demo_bundle(work: Path) -> Path:
    """A random-weight `demo` bundle (64x64, z 128, anime_faces schema), exported once."""
    from neuedit.runtime import bundle as bundle_mod
    path = work / "demo"
    try:
        if "latent_step" in bundle_mod.read(path).meta.get("onnx", {}):
            return path
    except (bundle_mod.BundleError, OSError):
        pass
    import torch

    from neuedit.export.onnx_export import export_bundle
    from neuedit.nn.testing import make_random_bundle
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"building and exporting a random demo bundle into {path} (once)...", file=sys.stderr)
    make_random_bundle(path, preset="demo", z_dim=128, name="demo", with_d=False)
    export_bundle(path, log=lambda *a: print(*a, file=sys.stderr))
    return path


def pick_bundle(args) -> Path:
    if args.bundle:
        return Path(args.bundle)
    from neuedit.runtime.bundle import shipped
    ships = shipped()
    return ships[0] if ships else demo_bundle(Path(args.work))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sketch_png(size: int = 256) -> str:
    """A plausible user sketch: two strokes on a transparent canvas, base64 PNG."""
    from PIL import Image, ImageDraw
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.line([(size * .2, size * .3), (size * .5, size * .35), (size * .7, size * .25)], fill=(220, 50, 50, 255),
           width=size // 24)
    d.line([(size * .3, size * .7), (size * .6, size * .75)], fill=(20, 20, 20, 255), width=size // 32)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class Server:
    """`neuedit serve` in a subprocess."""

    def __init__(self, bundle: Path, batching: bool, args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "neuedit.cli.main", "serve", "--bundle", str(bundle), "--port", str(self.port),
               "--batching", "on" if batching else "off", "--queue-size", "4096", "--log-level", "warning",
               "--max-steps", str(max(50, args.steps))]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.inference_threads:
            cmd += ["--inference-threads", str(args.inference_threads)]
        if args.batch_window_ms is not None:
            cmd += ["--batch-window-ms", str(args.batch_window_ms)]
        if args.max_batch is not None:
            cmd += ["--max-batch", str(args.max_batch)]
        self.proc = subprocess.Popen(cmd)

    async def wait(self, session, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                async with session.get(self.url + "/healthz") as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise TimeoutError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def stats(session, url) -> dict:
    async with session.get(url + "/healthz") as r:
        return (await r.json())["batching"]


async def run_cell(session, url: str, body: bytes, clients: int, max_requests: int, seconds: float) -> dict:
    """`clients` concurrent clients post `body` until `max_requests` are sent or `seconds` pass."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    t_end = time.perf_counter() + seconds

    async def client():
        nonlocal sent, errors
        while sent < max_requests and time.perf_counter() < t_end:
            sent += 1
            t0 = time.perf_counter()
            async with session.post(url + "/api/edit", data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - t0)

    before = await stats(session, url)
    t0 = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    wall = time.perf_counter() - t0
    after = await stats(session, url)
    return {"latencies": latencies, "errors": errors, "wall": wall,
            "calls": after["engine_calls"] - before["engine_calls"], "rows": after["requests"] - before["requests"]}


def summarise(parts: list[dict]) -> dict:
    lat = np.array([x for p in parts for x in p["latencies"]]) * 1000.0
    wall = sum(p["wall"] for p in parts)
    calls, rows = sum(p["calls"] for p in parts), sum(p["rows"] for p in parts)
    return {"requests": len(lat), "errors": sum(p["errors"] for p in parts), "seconds": round(wall, 3),
            "rps": round(len(lat) / wall, 1) if wall > 0 else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
            "rows_per_call": round(rows / calls, 2) if calls else None}


async def bench(args) -> list[dict]:
    """Both servers (batching off and on) run side by side; each cell alternates between them in
    short rounds, so a neighbour's changing CPU load hits both variants alike."""
    import aiohttp
    bundle = pick_bundle(args)
    sketch = sketch_png()
    servers = {b: Server(bundle, b == "on", args) for b in args.batching}
    rows = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(args.clients) + 4),
                                         timeout=aiohttp.ClientTimeout(total=300)) as session:
            for s in servers.values():
                await s.wait(session)
            first = next(iter(servers.values())).url
            async with session.get(first + "/api/models") as r:
                model = (await r.json())["models"][0]
            async with session.post(first + "/api/generate", json={"model": model["name"], "seed": 0}) as r:
                state = (await r.json())["state"]
            for method in args.methods:
                if method not in model["methods"]:
                    print(f"{model['name']} has no {method} graph; skipped", file=sys.stderr)
                    continue
                body = {"model": model["name"], "state": state, "sketch": sketch, "method": method}
                if method == "latent":
                    body.update(steps=args.steps, optimizer="adam")
                data = json.dumps(body).encode()
                for s in servers.values():  # warm-up
                    await run_cell(session, s.url, data, 4, 12, 10.0)
                for clients in args.clients:
                    parts: dict[str, list] = {b: [] for b in servers}
                    for k in range(args.rounds):
                        order = list(servers) if k % 2 == 0 else list(servers)[::-1]
                        for b in order:
                            parts[b].append(await run_cell(session, servers[b].url, data, clients,
                                                           args.requests // args.rounds, args.seconds / args.rounds))
                    for b in servers:
                        row = {"model": model["name"], "resolution": model["resolution"], "method": method,
                               "steps": args.steps if method == "latent" else None, "clients": clients,
                               "batching": b, **summarise(parts[b])}
                        rows.append(row)
                        print(format_row(row), file=sys.stderr, flush=True)
    finally:
        for s in servers.values():
            s.stop()
    return rows


HEADER = f"{'method':<10} {'clients':>7} {'batching':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} " \
         f"{'rows/call':>9} {'ok':>5} {'err':>4}"


def format_row(r: dict) -> str:
    method = r["method"] + (f" x{r['steps']}" if r["steps"] else "")
    f = lambda v: "-" if v is None else v  # noqa: E731
    return (f"{method:<10} {r['clients']:>7} {r['batching']:>8} {r['rps']:>8} {f(r['p50_ms']):>8} "
            f"{f(r['p99_ms']):>8} {f(r['rows_per_call']):>9} {r['requests']:>5} {r['errors']:>4}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", help="exported bundle to serve (default: first shipped, else a random demo bundle)")
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "neuedit-bench"),
                   help="where the random demo bundle is built and kept")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients per cell")
    p.add_argument("--methods", nargs="+", default=["two-stage", "latent"], choices=["two-stage", "latent"])
    p.add_argument("--batching", nargs="+", default=["off", "on"], choices=["off", "on"])
    p.add_argument("--steps", type=int, default=5, help="latent steps per request")
    p.add_argument("--requests", type=int, default=300, help="at most this many requests per cell")
    p.add_argument("--seconds", type=float, default=8.0, help="at most this long per cell and variant")
    p.add_argument("--rounds", type=int, default=4, help="alternate batching off/on this many times per cell")
    p.add_argument("--threads", type=int, default=None, help="server: ONNX Runtime intra-op threads")
    p.add_argument("--inference-threads", type=int, default=None, help="server: engine calls at once")
    p.add_argument("--batch-window-ms", type=float, default=None, help="server: batch window")
    p.add_argument("--max-batch", type=int, default=None, help="server: requests per engine call at most")
    p.add_argument("--json", default="bench_server.json", help="write the results here")
    args = p.parse_args(argv)
    print(HEADER, file=sys.stderr)
    rows = asyncio.run(bench(args))
    print("\n" + HEADER)
    for r in rows:
        print(format_row(r))
    meta = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "args": vars(args)}
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
