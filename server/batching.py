"""Inference off the event loop: a bounded admission gate and a micro-batcher.

`Batcher.submit(key, fn, payload, finish)` queues one request. Requests with the same key
(model, method and everything that must be equal within one engine call) are gathered: the
first waits up to `window_ms` for company (0 by default: not at all), or less when
`max_batch` requests are waiting; then one thread-pool job runs `fn(payloads)`, which returns
one result per payload, and each request's `finish(result)` (encoding its response), so a
request costs one executor hop for inference and its reply. At most `concurrency` engine
calls run at once; while they all are busy, new requests keep joining the waiting batch, so
batches form by themselves under load and a lone request never waits. With batching off
every request is its own call.
"""
from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from neuedit.server.errors import ApiError


class Gate:
    """Counts requests in flight; beyond `limit` a request is answered 503 with Retry-After."""

    def __init__(self, limit: int, retry_after_s: int = 1):
        self.limit, self.retry_after_s, self.inflight = limit, retry_after_s, 0

    @contextlib.contextmanager
    def enter(self):
        if self.inflight >= self.limit:
            raise ApiError(503, "busy", f"the server is busy ({self.inflight} requests in flight); retry shortly",
                           {"Retry-After": str(self.retry_after_s)})
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1


@dataclass
class _Job:
    payload: Any
    fn: Callable[[list], list]
    finish: Callable[[Any], Any] | None
    future: asyncio.Future
    t0: float


@dataclass
class BatchStats:
    calls: int = 0                                  # engine calls made
    rows: int = 0                                   # requests served by them
    sizes: dict = field(default_factory=dict)       # batch size -> count


class Batcher:
    def __init__(self, executor: Executor, concurrency: int, window_ms: float, max_batch: int, enabled: bool = True):
        self.executor = executor
        self.enabled = enabled
        self.window_s = window_ms / 1000.0 if enabled else 0.0
        self.max_batch = max_batch if enabled else 1
        self.stats = BatchStats()
        self._slots = asyncio.Semaphore(concurrency)
        self._pending: dict[Hashable, list[_Job]] = {}
        self._wake: dict[Hashable, asyncio.Event] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, key: Hashable, fn: Callable[[list], list], payload,
                     finish: Callable[[Any], Any] | None = None) -> tuple[Any, int]:
        """Run `fn([payload, ...])` batched with other payloads of `key`, then `finish` on this
        payload's result in the same executor job; returns (the finished result, the batch size).
        A result that is an exception (from `fn` or `finish`) is returned, not raised, and skips
        `finish`. `fn` must be the same for all jobs of one key."""
        loop = asyncio.get_running_loop()
        job = _Job(payload, fn, finish, loop.create_future(), loop.time())
        q = self._pending.get(key)
        if q is None:
            q = self._pending[key] = []
            self._wake[key] = asyncio.Event()
            self._spawn(self._drain(key))
        q.append(job)
        if len(q) >= self.max_batch:
            self._wake[key].set()
        return await job.future

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _drain(self, key: Hashable) -> None:
        loop = asyncio.get_running_loop()
        q, wake = self._pending[key], self._wake[key]
        try:
            while q:
                deadline = q[0].t0 + self.window_s
                while len(q) < self.max_batch:
                    delay = deadline - loop.time()
                    if delay <= 0:
                        break
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), delay)
                    except asyncio.TimeoutError:
                        break
                await self._slots.acquire()
                batch = [j for j in q[:self.max_batch] if not j.future.done()]
                del q[:self.max_batch]
                if not batch:
                    self._slots.release()
                    continue
                self._spawn(self._run(batch))
        finally:
            del self._pending[key], self._wake[key]

    async def _run(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, _call, batch)
        except BaseException as e:  # noqa: BLE001  handed to every waiting request
            for j in batch:
                if not j.future.done():
                    j.future.set_exception(e)
            if isinstance(e, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        else:
            self.stats.calls += 1
            self.stats.rows += len(batch)
            self.stats.sizes[len(batch)] = self.stats.sizes.get(len(batch), 0) + 1
            for j, r in zip(batch, results):
                if not j.future.done():
                    j.future.set_result((r, len(batch)))
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Wait for every queued and running call (the server is shutting down)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _call(batch: list[_Job]) -> list:
    """One executor job: the batched engine call, then every request's `finish`."""
    results = batch[0].fn([j.payload for j in batch])
    if len(results) != len(batch):
        raise RuntimeError(f"batched call returned {len(results)} results for {len(batch)} requests")
    return [_finish(j.finish, r) for j, r in zip(batch, results)]


def _finish(finish: Callable[[Any], Any] | None, result):
    if finish is None or isinstance(result, Exception):
        return result
    try:
        return finish(result)
    except Exception as e:  # noqa: BLE001  fails only this request, not the others in its batch
        return e
