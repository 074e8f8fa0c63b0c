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

from neuedit.server.config import ServerConfig
from neuedit.errors import UsageError

log = logging.getLogger("neuedit.server")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ServerConfig.__dataclass_fields__
    p.add_argument("--bundle", action="append", metavar="DIR",
                   help="an exported bundle folder to serve (repeat for several); default: every bundle shipped "
                        "with the package")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8080, help="TCP port")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port via SO_REUSEPORT")
    p.add_argument("--threads", type=int, default=d["threads"].default,
                   help="ONNX Runtime intra-op threads per engine call (0: ONNX Runtime's default, one per core)")
    p.add_argument("--inference-threads", type=int, default=None,
                   help="engine calls running at once per process (default: CPU cores / workers)")
    p.add_argument("--providers", default="auto", help="ONNX Runtime providers: auto, cpu or cuda")
    p.add_argument("--batching", choices=["on", "off"], default="on" if d["batching"].default else "off",
                   help="micro-batch concurrent requests for the same model and method")
    p.add_argument("--batch-window-ms", type=float, default=d["batch_window_ms"].default,
                   help="how long a request waits for others to share its engine call")
    p.add_argument("--max-batch", type=int, default=d["max_batch"].default, help="requests per engine call at most")
    p.add_argument("--queue-size", type=int, default=d["queue_size"].default,
                   help="requests in flight per process before answering 503")
    p.add_argument("--max-steps", type=int, default=d["max_steps"].default, help="latent edit steps per request")
    p.add_argument("--max-project-steps", type=int, default=d["max_project_steps"].default,
                   help="photo projection steps per request")
    p.add_argument("--max-body-mb", type=float, default=d["max_body_bytes"].default / 2**20,
                   help="largest request body in MiB")
    p.add_argument("--shutdown-timeout", type=float, default=30.0,
                   help="seconds to finish requests in flight at shutdown")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def config_from_args(args: argparse.Namespace, bundles: list[str]) -> ServerConfig:
    return ServerConfig(bundles=tuple(bundles), max_body_bytes=int(args.max_body_mb * 2**20), max_steps=args.max_steps,
                        max_project_steps=args.max_project_steps, queue_size=args.queue_size, batching=args.batching == "on",
                        batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
                        inference_threads=args.inference_threads or max(1, (os.cpu_count() or 1) // args.workers),
                        threads=args.threads or None, providers=args.providers)


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
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.workers > 1 and args.port == 0:
        raise UsageError("--workers > 1 needs a fixed --port (every worker must bind the same one)")
    cfg = config_from_args(args, resolve_bundles(args.bundle))
    where = f"http://{args.host}:{args.port}/"
    if args.workers == 1:
        log.info("serving %s on %s", ", ".join(cfg.bundles), where)
        return _serve(cfg, args, reuse_port=False)
    log.info("serving %s on %s with %d worker processes", ", ".join(cfg.bundles), where, args.workers)
    return _supervise(cfg, args)


def _serve(cfg: ServerConfig, args: argparse.Namespace, reuse_port: bool) -> int:
    from aiohttp import web

    from neuedit.runtime.engine import EngineError

    from neuedit.server.app import AccessLogger, create_app
    try:
        web.run_app(create_app(cfg), host=args.host, port=args.port, reuse_port=reuse_port or None,
                    shutdown_timeout=args.shutdown_timeout, access_log_class=AccessLogger,
                    access_log=logging.getLogger("neuedit.access"), print=None)
    except EngineError as e:
        print(f"neuedit serve: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"neuedit serve: error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    return 0


def _supervise(cfg: ServerConfig, args: argparse.Namespace) -> int:
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
                code = _serve(cfg, args, reuse_port=True)
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
    for i in range(args.workers):
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
