"""Clips on Ray: one actor per worker, each holding one ``ClipProcessor`` (models loaded once per actor).

Needs the ``ray`` extra (``pip install 'enrich[ray]'``); every node of the cluster needs ``enrich`` installed.
At most ``in_flight`` clips are queued per actor, so the driver's and the object store's memory stay flat
however many clips the run has. A clip lost with its actor (the worker process died) is retried once on a new
actor and recorded as failed if it is lost again; a clip past the per-clip timeout is recorded as failed and its
actor killed and replaced.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError

from enrich.errors import UsageError
from enrich.executors import ProcessorFactory, failed
from enrich.records import ClipResult, ClipTask
from enrich.threads import ONE_THREAD_ENV, limit_threads


class _ClipActor:
    """One Ray worker process: the models, loaded once, then one clip per call."""

    def __init__(self, make_processor: ProcessorFactory, cwd: str) -> None:
        if os.path.isdir(cwd):  # relative clip paths mean what they meant to the driver (the actor owns its process)
            os.chdir(cwd)
        limit_threads()
        self.processor = make_processor()

    def ready(self) -> bool:
        return True

    def process(self, task: ClipTask) -> ClipResult:
        return self.processor(task)


@dataclass
class _Job:
    task: ClipTask
    attempt: int  # 1: first try; 2: the retry after its actor died
    seq: int  # submission order (an actor runs its clips in this order); set when submitted


@dataclass
class _Slot:
    actor: Any
    queue: deque[ray.ObjectRef] = field(default_factory=deque)  # in submission order; the head is running
    started: float = 0.0  # when the head clip started


def _one_line(e: BaseException, limit: int = 200) -> str:
    text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RayExecutor:
    """Clips on a Ray cluster: ``workers`` actors (default: the cluster's CPUs), ``num_cpus=1`` each.

    ``address``: None starts a local cluster for the run (and stops it after); ``"auto"``, ``"host:port"`` or
    ``"ray://host:10001"`` join an existing one. If Ray is already initialised in this process it is used as it
    is and left running. ``timeout_s``: per-clip limit (None: no limit). ``in_flight``: clips queued per actor."""

    def __init__(
        self,
        make_processor: ProcessorFactory,
        address: str | None = None,
        workers: int | None = None,
        timeout_s: float | None = None,
        in_flight: int = 2,
    ) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"workers must be >= 1, got {workers}")
        self.make_processor, self.address, self.n_workers, self.timeout_s = make_processor, address, workers, timeout_s
        self.in_flight = max(1, in_flight)
        self.startup_s = 0.0  # the last run's time to join the cluster and start every actor
        self._actor_cls = ray.remote(
            num_cpus=1, max_restarts=0, max_task_retries=0, runtime_env={"env_vars": ONE_THREAD_ENV}
        )(_ClipActor)

    # ------------------------------------------------------------------------------------------ cluster

    def _init(self) -> bool:
        """Connect to (or start) a cluster; True when this call did, so the run must shut it down."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if self.address is None:
            kwargs["include_dashboard"] = False
            if self.n_workers is not None:
                kwargs["num_cpus"] = self.n_workers
        try:
            ray.init(address=self.address, **kwargs)
        except ConnectionError as e:  # no cluster there: the user's to fix, before any clip ran
            raise UsageError(f"--address {self.address}: cannot reach a Ray cluster ({_one_line(e)})") from None
        return True

    def _start(self) -> _Slot:
        actor = self._actor_cls.remote(self.make_processor, os.getcwd())
        try:
            ray.get(actor.ready.remote())
        except RayActorError as e:
            raise RuntimeError(f"Ray worker failed to start: {_one_line(e)}") from e
        return _Slot(actor)

    def _start_many(self, n: int) -> list[_Slot]:
        actors = [self._actor_cls.remote(self.make_processor, os.getcwd()) for _ in range(n)]
        try:
            ray.get([a.ready.remote() for a in actors])
        except RayActorError as e:
            for a in actors:
                ray.kill(a)
            raise RuntimeError(f"Ray worker failed to start: {_one_line(e)}") from e
        return [_Slot(a) for a in actors]

    # ------------------------------------------------------------------------------------------ run

    def run(self, tasks: Iterable[ClipTask]) -> Iterator[ClipResult]:
        t0 = time.perf_counter()
        started_ray = self._init()
        slots: list[_Slot] = []
        try:
            n = self.n_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            slots = self._start_many(n)
            self.startup_s = time.perf_counter() - t0
            yield from self._loop(iter(tasks), slots)
        finally:
            for slot in slots:
                with contextlib.suppress(Exception):  # already gone, or the cluster with it
                    ray.kill(slot.actor)
            if started_ray:
                ray.shutdown()

    def _loop(self, tasks: Iterator[ClipTask], slots: list[_Slot]) -> Iterator[ClipResult]:
        seq = itertools.count()
        retry: deque[_Job] = deque()  # clips to run again (lost with an actor), before any new one
        jobs: dict[ray.ObjectRef, tuple[_Slot, _Job]] = {}
        exhausted = False

        def next_job() -> _Job | None:
            nonlocal exhausted
            if retry:
                return retry.popleft()
            if exhausted:
                return None
            task = next(tasks, None)
            if task is None:
                exhausted = True
                return None
            return _Job(task, 1, 0)

        while True:
            for slot in slots:  # top every actor up to ``in_flight`` clips
                while len(slot.queue) < self.in_flight and (job := next_job()) is not None:
                    job.seq = next(seq)
                    ref = slot.actor.process.remote(job.task)
                    if not slot.queue:
                        slot.started = time.monotonic()
                    slot.queue.append(ref)
                    jobs[ref] = (slot, job)
            if not jobs:
                return
            ready = self._wait(list(jobs), slots)
            for ref in sorted(ready, key=lambda r: jobs[r][1].seq):
                if ref not in jobs:  # dropped with its actor while handling an earlier ref of this batch
                    continue
                slot, job = jobs[ref]
                try:
                    result = ray.get(ref)
                except RayActorError as e:  # the worker process died: every clip queued on it is lost
                    yield from self._lost(slot, jobs, retry, slots, _one_line(e))
                    continue
                except Exception as e:  # anything else raised through Ray (the clip's own errors are results)
                    result = failed(job.task, f"Ray task failed: {_one_line(e)}")
                del jobs[ref]
                slot.queue.remove(ref)
                if slot.queue:
                    slot.started = time.monotonic()
                yield result
            if self.timeout_s is not None:
                now = time.monotonic()
                overdue = [s for s in slots if s.queue and now - s.started > self.timeout_s]
                if overdue:  # a head that finished (or died) meanwhile is collected next round, not timed out
                    heads = [s.queue[0] for s in overdue]
                    done, _ = ray.wait(heads, num_returns=len(heads), timeout=0)
                    for slot in overdue:
                        if slot.queue[0] not in done:
                            yield from self._timed_out(slot, jobs, retry, slots)

    def _wait(self, refs: list[ray.ObjectRef], slots: list[_Slot]) -> list[ray.ObjectRef]:
        timeout = None
        if self.timeout_s is not None:
            deadline = min(s.started + self.timeout_s for s in slots if s.queue)
            timeout = max(0.0, deadline - time.monotonic())
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # collect everything else already done too
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return ready

    def _drop(
        self, slot: _Slot, jobs: dict[ray.ObjectRef, tuple[_Slot, _Job]], retry: deque[_Job], slots: list[_Slot]
    ) -> _Job:
        """Kill ``slot``'s actor and replace it; its queued clips (never started) go back for a new actor.
        Returns the clip that was running."""
        ray.kill(slot.actor)
        queued = [jobs.pop(ref)[1] for ref in slot.queue]
        running, waiting = queued[0], queued[1:]
        retry.extendleft(reversed(waiting))
        slots[slots.index(slot)] = self._start()
        return running

    def _lost(
        self,
        slot: _Slot,
        jobs: dict[ray.ObjectRef, tuple[_Slot, _Job]],
        retry: deque[_Job],
        slots: list[_Slot],
        cause: str,
    ) -> Iterator[ClipResult]:
        running = self._drop(slot, jobs, retry, slots)
        if running.attempt == 1:
            running.attempt = 2
            retry.appendleft(running)
        else:
            yield failed(running.task, f"Ray worker died twice with this clip ({cause})")

    def _timed_out(
        self, slot: _Slot, jobs: dict[ray.ObjectRef, tuple[_Slot, _Job]], retry: deque[_Job], slots: list[_Slot]
    ) -> Iterator[ClipResult]:
        running = self._drop(slot, jobs, retry, slots)
        yield failed(running.task, f"timed out after {self.timeout_s:.0f} s; Ray worker replaced")
