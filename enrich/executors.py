"""Where clips run: a pool of local worker processes (here), or Ray (enrich.executor_ray).

An executor only decides where work runs. It is given a factory for the per-worker processor (a picklable
callable, e.g. ``partial(ClipProcessor, config)``) and turns ``ClipTask``s into ``ClipResult``s; the run loop
writes them through one writer, in the order they finish. Every worker builds one processor (the models) and
keeps it for all its clips. A clip that hangs past the timeout or kills its worker is recorded as failed, and
the worker is replaced.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from enrich.errors import ClipError, UsageError
from enrich.records import ClipResult, ClipTask
from enrich.threads import limit_threads, one_thread_environment

ProcessorFactory = Callable[[], Callable[[ClipTask], ClipResult]]


def failed(task: ClipTask, cause: str) -> ClipResult:
    return ClipResult(task.meta, task.src.path, error=str(ClipError(task.src.video_id, cause)), notes=task.notes)


def _serve(make_processor: ProcessorFactory, conn: Connection) -> None:
    """Worker process (spawned with ``ONE_THREAD_ENV``): load the models once, then answer tasks until told to stop."""
    _ignore_stop_signals()  # Ctrl-C reaches the whole process group: the parent decides, workers stay quiet
    limit_threads()
    processor = make_processor()
    conn.send("ready")
    with contextlib.suppress(EOFError, BrokenPipeError):  # the parent is gone: nothing to answer
        while (task := conn.recv()) is not None:
            conn.send(processor(task))


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _ignore_stop_signals() -> dict[int, object]:
    """Ignore SIGINT and SIGTERM (main thread only); returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    task: ClipTask | None = None
    started: float = 0.0


class LocalPool:
    """``workers`` processes on this machine, each running ``make_processor()``; per-clip ``timeout_s`` (None: no
    limit)."""

    def __init__(self, make_processor: ProcessorFactory, workers: int, timeout_s: float | None = None) -> None:
        if workers < 1:
            raise UsageError(f"workers must be >= 1, got {workers}")
        self.make_processor, self.n_workers, self.timeout_s = make_processor, workers, timeout_s
        self.startup_s = 0.0  # the last run's time to start every worker (models loaded)
        self._ctx = mp.get_context("spawn")  # TFLite and torch threads do not survive fork()

    def _start(self) -> _Worker:
        return self._ready(self._spawn())

    def _spawn(self) -> _Worker:
        """Start a worker process without waiting for its models (workers load them side by side)."""
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_serve, args=(self.make_processor, child), daemon=True)
        previous = _ignore_stop_signals()  # inherited through exec: the child is quiet from its first instruction
        try:
            with one_thread_environment():  # before the child imports torch or numpy (to unpickle its args)
                process.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        child.close()
        return _Worker(process, parent)

    @staticmethod
    def _ready(worker: _Worker) -> _Worker:
        """Wait until the worker has loaded its models."""
        try:
            ready = worker.conn.recv()
        except EOFError:
            ready = None
        if ready != "ready":
            worker.process.join(timeout=5)
            raise RuntimeError(f"a worker process failed to start (exit code {worker.process.exitcode})")
        return worker

    def run(self, tasks: Iterable[ClipTask]) -> Iterator[ClipResult]:
        t0 = time.perf_counter()
        spawned = [self._spawn() for _ in range(self.n_workers)]  # all load their models at once
        try:
            workers = [self._ready(w) for w in spawned]
        except BaseException:
            for w in spawned:
                _stop(w, now=True)
            raise
        pending = iter(tasks)  # read lazily
        self.startup_s = time.perf_counter() - t0
        more = True
        try:
            while more or any(w.task for w in workers):
                for w in workers:
                    if w.task is None and more:
                        w.task = next(pending, None)
                        more = w.task is not None
                        if more:
                            w.started = time.monotonic()
                            w.conn.send(w.task)
                yield from self._collect(workers)
        finally:
            for w in workers:
                _stop(w, now=w.task is not None)  # busy only when the run was cut short: drop the clip

    def _collect(self, workers: list[_Worker]) -> Iterator[ClipResult]:
        busy = [w for w in workers if w.task is not None]
        if not busy:
            return
        deadline = min((w.started + self.timeout_s for w in busy), default=None) if self.timeout_s else None
        ready = wait([w.conn for w in busy], None if deadline is None else max(0.0, deadline - time.monotonic()))
        for i, w in enumerate(workers):
            if w.task is None:
                continue
            if w.conn in ready:
                try:
                    result = w.conn.recv()
                except (EOFError, OSError):  # the worker died with the clip (a decoder fault, the OOM killer)
                    result = failed(w.task, f"worker process died (exit code {w.process.exitcode})")
                    workers[i] = self._replace(w)
                else:
                    w.task = None
                yield result
            elif self.timeout_s and time.monotonic() - w.started > self.timeout_s:
                yield failed(w.task, f"timed out after {self.timeout_s:.0f} s; worker replaced")
                workers[i] = self._replace(w)

    def _replace(self, w: _Worker) -> _Worker:
        w.process.kill()
        w.process.join()
        return self._start()


def _stop(w: _Worker, now: bool = False) -> None:
    if now:
        w.process.kill()
    with contextlib.suppress(BrokenPipeError, OSError):
        w.conn.send(None)
    w.process.join(timeout=5)
    if w.process.is_alive():
        w.process.kill()
        w.process.join()
