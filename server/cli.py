"""`neuedit serve`: the editing server and web client.

One process by default; `--workers N` forks N processes that all listen on the same port
(SO_REUSEPORT: the kernel spreads connections over them) under a small supervisor that
restarts a worker that dies and forwards SIGTERM/SIGINT once. A worker stops gracefully:
it stops accepting connections, finishes the requests in flight (up to
--shutdown-timeout seconds), then closes its engines.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal

from neuedit.config import flags as tcli
from neuedit.config import recipes as cfg_mod
from neuedit.server.config import ServerConfig
from neuedit.errors import UsageError

log = logging.getLogger("neuedit.server")


@dataclass(frozen=True)
class ServeCommand:
    """Everything `neuedit serve` takes: the app's ServerConfig and how the processes run."""
    server: ServerConfig            # what is served and the limits every request meets
    host: str = "127.0.0.1"         # address to listen on (0.0.0.0 for every interface)
    port: int = 8080                # TCP port
    workers: int = 1                # processes sharing the port via SO_REUSEPORT
    shutdown_timeout: float = 30.0  # seconds to finish requests in flight at shutdown
    log_level: Literal["debug", "info", "warning", "error"] = "info"  # the logging threshold

    def __post_init__(self):
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.workers > 1 and self.port == 0:
            raise UsageError("--workers > 1 needs a fixed --port (every worker must bind the same one)")


# what the flag builder needs beyond ServeCommand's fields (neuedit.config.flags): the flag names
# and forms `neuedit serve` has always had (bench/bench_server.py and README use them), and the
# defaults build_config applies
DECLARED = dict(
    aliases={"server.bundles": "bundle", "server.max_body_bytes": "max-body-mb"},
    repeat=("server.bundles",), units={"server.max_body_bytes": ("MiB", 2**20)}, on_off=("server.batching",),
    defaults={"server.bundles": "every bundle shipped with the package",
              "server.inference_threads": "CPU cores / --workers"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    tcli.add_command_arguments(p, ServeCommand, **DECLARED)


def build_config(args: argparse.Namespace) -> ServeCommand:
    """The flags typed over ServeCommand's defaults; the bundles checked (`resolve_bundles`)."""
    d = tcli.given(args, tcli.flags_of(ServeCommand, **DECLARED))
    server = d.setdefault("server", {})
    server["bundles"] = resolve_bundles(server.get("bundles"))
    server.setdefault("inference_threads", max(1, (os.cpu_count() or 1) // max(1, d.get("workers", 1))))
    if server.get("threads") == 0:  # the command line's spelling of None
        server["threads"] = None
    return cfg_mod.from_dict(ServeCommand, d)


def resolve_bundles(given: list[str] | None) -> list[str]:
    """The bundle folders to serve, checked (metadata only, no ONNX Runtime) before any fork."""
    from neuedit.runtime import bundle as bundle_mod
    if given:
        paths = [str(p) for p in given]
    else:
        paths = [str(p) for p in bundle_mod.shipped()]
        if not paths:
            raise UsageError(f"no bundle to serve: none is shipped in {bundle_mod.shipped_dir()}; "
                             "pass --bundle DIR (an exported bundle: `neuedit export DIR`)")
    for p in paths:
        b = bundle_mod.read(p)  # BundleError (a ValueError) names the folder
        if "g1" not in b.meta.get("onnx", {}):
            raise UsageError(f"bundle {p} has no ONNX graphs; run `neuedit export {p}` first")
    return paths


def run(args: argparse.Namespace) -> int:
    cmd = build_config(args)
    logging.basicConfig(level=getattr(logging, cmd.log_level.upper()),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    cfg = cmd.server
    where = f"http://{cmd.host}:{cmd.port}/"
    if cmd.workers == 1:
        log.info("serving %s on %s", ", ".join(cfg.bundles), where)
        return _serve(cmd, reuse_port=False)
    log.info("serving %s on %s with %d worker processes", ", ".join(cfg.bundles), where, cmd.workers)
    return _supervise(cmd)


def _serve(cmd: ServeCommand, reuse_port: bool) -> int:
    from aiohttp import web

    from neuedit.runtime.engine import EngineError

    from neuedit.server.app import AccessLogger, create_app
    try:
        web.run_app(create_app(cmd.server), host=cmd.host, port=cmd.port, reuse_port=reuse_port or None,
                    shutdown_timeout=cmd.shutdown_timeout, access_log_class=AccessLogger,
                    access_log=logging.getLogger("neuedit.access"), print=None)
    except EngineError as e:
        print(f"neuedit serve: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"neuedit serve: error: cannot listen on {cmd.host}:{cmd.port}: {e}", file=sys.stderr)
        return 1
    return 0


def _supervise(cmd: ServeCommand) -> int:
    """Fork the workers, restart one that dies after running a while, stop all on a signal."""
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
    stopping = False
    rc = 0

    def start(i: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: its own process group, so a terminal's Ctrl+C reaches it once, via us
            code = 1
            try:
                os.setpgid(0, 0)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = _serve(cmd, reuse_port=True)
            except BaseException:  # noqa: BLE001  a worker must never return into the supervisor's code
                log.exception("worker %d failed", i)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = (i, time.monotonic())

    def stop_all(signum=None, frame=None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            log.info("stopping %d worker(s)", len(children))
            for pid in list(children):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for i in range(cmd.workers):
        start(i)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        i, started = children.pop(pid, (None, 0.0))
        if i is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if time.monotonic() - started < 5.0:
            log.error("worker %d exited with %s right after starting; stopping", i, code)
            rc = 1
            stop_all()
        else:
            log.warning("worker %d exited with %s; starting a new one", i, code)
            start(i)
    return rc
