"""A process pool for decoding work that may hang or crash: per-task timeouts, dead workers replaced, bounded queue.

``run_tasks(fn, tasks, ...)`` yields ``TaskResult``s in task order (or as they finish) while at most ``workers``
tasks run and at most ``prefetch`` finished results wait for the consumer, so memory stays bounded whatever the
number of tasks. A task that exceeds ``timeout`` seconds gets its worker killed and comes back as a failure; so
does a task whose worker dies. Workers are forked (cheap, and they inherit the parent's imports).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import wait
from typing import Any


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task: ``value`` when it returned, ``error`` (one line) when it raised, hung or crashed."""

    index: int  # position of the task in the input
    task: Any
    value: Any = None
    error: str | None = None


def _received(conn) -> Iterator[Any]:
    """A worker's tasks, until the pipe closes or the pool sends None."""
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        yield task


def _reason(error: Exception, expected: tuple[type[BaseException], ...]) -> str:
    """A task's one-line failure: an expected error's message as is, others with their type name."""
    return str(error) if isinstance(error, expected) else f"{type(error).__name__}: {error}"


def _serve(conn, fn: Callable, expected: tuple[type[BaseException], ...]) -> None:
    """Worker loop: run ``fn`` on each task received; send back ``(value, None)`` or ``(None, message)``."""
    for task in _received(conn):
        try:
            conn.send((fn(task), None))
        except Exception as e:  # reported per task; the worker goes on with the next one
            conn.send((None, _reason(e, expected)))


def _serve_streams(conn, fn: Callable, expected: tuple[type[BaseException], ...]) -> None:
    """Worker loop of :func:`stream_tasks`: send each item ``fn(task)`` yields as it comes, then the end."""
    for task in _received(conn):
        try:
            for item in fn(task):
                conn.send(("item", item))  # blocks while the consumer is behind: the pipe bounds what waits
            conn.send(("done", None))
        except Exception as e:
            conn.send(("error", _reason(e, expected)))


class Lost(str):
    """Why a worker's task was lost (it died, or overran its timeout): the worker is killed, its ``job`` kept."""


class _Worker:
    def __init__(
        self, ctx, fn: Callable, expected: tuple[type[BaseException], ...], *, serve: Callable = _serve
    ) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, fn, expected), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple[int, Any] | None = None
        self.started = 0.0

    def submit(self, index: int, task: Any) -> None:
        self.job, self.started = (index, task), time.monotonic()
        self.conn.send(task)

    def receive(self, readable: bool, timeout: float | None, *, waiting: str = ""):
        """The worker's next message (None while it works), or a :class:`Lost` once it died or went ``timeout``
        seconds since its task started (``waiting``: what it was waiting for, in the message); then killed."""
        if readable:
            try:
                return self.conn.recv()
            except EOFError:
                self.process.join(timeout=5)
                self.close(kill=True)
                return Lost(f"worker died (exit code {self.process.exitcode})")
        if timeout is not None and time.monotonic() - self.started > timeout:
            self.close(kill=True)
            return Lost(f"timed out after {timeout:g} s{waiting}")
        return None

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


def _context():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Iterable[Any],
    workers: int,
    *,
    timeout: float | None = None,
    ordered: bool = True,
    prefetch: int | None = None,
    expected: tuple[type[BaseException], ...] = (Exception,),
    on_abandon: Callable[[Any], None] | None = None,
) -> Iterator[TaskResult]:
    """Run ``fn(task)`` for every task in ``workers`` processes; yield a :class:`TaskResult` per task.

    Args:
        ordered: yield in task order (a slow task holds back later results, within ``prefetch``).
        prefetch: finished results that may wait for the consumer (default: 2 x workers).
        expected: exception types whose message becomes a result's ``error`` as is; others are prefixed with
            their type name.
        on_abandon: cleanup called with the task when its worker died or was killed for exceeding ``timeout``.
    """
    ctx = _context()
    limit = max(prefetch or 2 * workers, workers)
    pending = iter(enumerate(tasks))
    respawn = partial(_Worker, ctx, fn, expected)
    pool = [respawn() for _ in range(max(1, workers))]
    done: dict[int, TaskResult] = {}
    next_out = 0  # ordered: the next index to yield
    exhausted = False

    def refill() -> None:
        """Give idle workers new tasks while the result buffer has room: called before every yield, so workers
        decode while the consumer runs the model instead of waiting for the consumer's next call."""
        nonlocal exhausted
        for worker in pool:
            if worker.job is None and not exhausted and len(done) + _busy(pool) < limit:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                else:
                    worker.submit(*item)

    try:
        while True:
            refill()
            if exhausted and not _busy(pool) and not done:
                return
            ready = wait([w.conn for w in pool if w.job], timeout=0.1) if _busy(pool) else []
            _gather(
                pool, ready, done, timeout=timeout, on_abandon=on_abandon, respawn=lambda: _Worker(ctx, fn, expected)
            )
            ready_indices = _releasable(done, next_out, ordered)
            next_out += len(ready_indices) if ordered else 0
            for index in ready_indices:
                result = done.pop(index)
                refill()
                yield result
    finally:
        for worker in pool:
            worker.close(kill=worker.job is not None)


def _gather(pool: list[_Worker], ready: list, done: dict[int, TaskResult], *, timeout, on_abandon, respawn) -> None:
    """Move every finished (or timed-out, or dead) worker's result into ``done``; a killed worker is replaced."""
    for i, worker in enumerate(pool):
        result = _collect(worker, worker.conn in ready, timeout, on_abandon=on_abandon)
        if result is None:
            continue
        if worker.job is not None:  # killed: replace
            worker.job = None
            pool[i] = respawn()
        done[result.index] = result


def _releasable(done: dict[int, TaskResult], next_out: int, ordered: bool) -> list[int]:
    """The task indices that may be yielded now: the run of consecutive ones from ``next_out`` (ordered), or all."""
    if not ordered:
        return sorted(done)
    indices = []
    while next_out + len(indices) in done:
        indices.append(next_out + len(indices))
    return indices


def _busy(pool: list[_Worker]) -> int:
    return sum(1 for w in pool if w.job is not None)


def _collect(worker: _Worker, readable: bool, timeout: float | None, *, on_abandon) -> TaskResult | None:
    """The finished, crashed or timed-out task of ``worker``, or None while it runs. A dead or stuck worker is
    killed and keeps its ``job`` set so the caller replaces it."""
    if worker.job is None:
        return None
    index, task = worker.job
    message = worker.receive(readable, timeout)
    if message is None:
        return None
    if isinstance(message, Lost):
        if on_abandon is not None:
            on_abandon(task)
        return TaskResult(index, task, error=str(message))
    worker.job = None
    return TaskResult(index, task, *message)


@dataclass(frozen=True)
class Streamed:
    """One message of :func:`stream_tasks`: an ``item`` a task yielded, its ``done``, or its ``error`` (one line:
    it raised, hung or its worker died)."""

    index: int  # position of the task in the input
    task: Any
    kind: str  # "item" | "done" | "error"
    value: Any = None  # the item, or the error's message


def stream_tasks(
    fn: Callable[[Any], Iterable[Any]],
    tasks: Iterable[Any],
    workers: int,
    *,
    timeout: float | None = None,
    expected: tuple[type[BaseException], ...] = (Exception,),
) -> Iterator[Streamed]:
    """Run the generator ``fn(task)`` for every task in ``workers`` processes (0: in this one), yielding each item
    as it arrives, tasks interleaved, then each task's end. A worker sends an item only when the consumer took its
    previous one, so at most one item per worker waits, whatever a task's length. ``timeout``: seconds a task may go
    without an item before its worker is killed (the task then ends in an error)."""
    if workers == 0:
        yield from _stream_here(fn, tasks, expected)
        return
    ctx = _context()
    respawn = partial(_Worker, ctx, fn, expected, serve=_serve_streams)
    pool = [respawn() for _ in range(workers)]
    pending = iter(enumerate(tasks))
    exhausted = False
    try:
        while True:
            for worker in pool:
                item = None if exhausted or worker.job is not None else next(pending, None)
                if item is not None:
                    worker.submit(*item)
                exhausted = exhausted or (item is None and worker.job is None)
            if exhausted and not _busy(pool):
                return
            ready = wait([w.conn for w in pool if w.job], timeout=0.1)
            for i, worker in enumerate(pool):
                message = _stream_message(worker, worker.conn in ready, timeout)
                if message is None:
                    continue
                if message.kind != "item" and worker.job is not None:  # died or stuck: killed, replaced
                    pool[i] = respawn()
                yield message
    finally:
        for worker in pool:
            worker.close(kill=worker.job is not None)


def _stream_here(fn, tasks, expected) -> Iterator[Streamed]:
    for index, task in enumerate(tasks):
        try:
            for item in fn(task):
                yield Streamed(index, task, "item", item)
        except expected as e:
            yield Streamed(index, task, "error", str(e))
            continue
        yield Streamed(index, task, "done")


def _stream_message(worker: _Worker, readable: bool, timeout: float | None) -> Streamed | None:
    """The worker's next message, or None while it works; a dead or stuck worker is killed (its ``job`` kept set,
    so the caller replaces it) and its task ends in an error."""
    if worker.job is None:
        return None
    index, task = worker.job
    message = worker.receive(readable, timeout, waiting=" without a clip")
    if message is None:
        return None
    if isinstance(message, Lost):
        return Streamed(index, task, "error", str(message))
    kind, value = message
    worker.started = time.monotonic()  # the timeout counts from the last item
    if kind != "item":
        worker.job = None
    return Streamed(index, task, kind, value)
