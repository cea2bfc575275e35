"""The streaming scheduler of the LLM stages: an ordered window of jobs on worker threads, and an in-flight gauge.

The runner hands each batch of records to `ordered`, which runs up to `workers` batches at once on daemon threads and
gives the results back in input order, so outputs are written in the order they were read whatever order the
requests finish in. A batch blocked on one slow request holds its thread, not the backend: the other batches keep
the backend's slots busy (the HTTP backend bounds the requests in flight with its `concurrency`), and memory stays
bounded by `workers` batches. With `workers <= 1` the jobs run inline, one after the other (local backends).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

K = TypeVar("K")

# Records a stage may hold per request the backend keeps in flight: enough that a request ~30x slower
# than the mean (a heavy-tailed latency's tail) does not empty the window while the records after it wait to be written.
LOOKAHEAD = 32


class Gauge:
    """Requests in flight in this process (all backends), and the most seen at once: for progress and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.now += n
            self.peak = max(self.peak, self.now)

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.now


IN_FLIGHT = Gauge()


def ordered(jobs: Iterable[tuple[K, Callable[[], Any] | None]], workers: int) -> Iterator[tuple[K, Any]]:
    """For each (key, job) in order: (key, job()) in the same order, or (key, None) for a job of None (a marker that
    keeps its place in the order). Up to `workers` jobs run at once on daemon threads (a killed run does not wait for
    them); an exception in a job is raised here, in order. The input is read only as far as the window allows."""
    if workers <= 1:
        for key, job in jobs:
            yield key, (job() if job is not None else None)
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        while True:
            item = todo.get()
            if item is None:
                return
            job, fut = item
            if stop.is_set() or not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(job())
            except BaseException as exc:  # handed to the consumer, in order
                fut.set_exception(exc)

    threads = [threading.Thread(target=work, daemon=True, name=f"mlift-stage-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    pending: deque[tuple[K, Future | None]] = deque()
    running = 0
    try:
        for key, job in jobs:
            fut = None
            if job is not None:
                fut = Future()
                todo.put((job, fut))
                running += 1
            pending.append((key, fut))
            # Hand back whatever is finished at the head; block on the head only when the window is full.
            while pending and (pending[0][1] is None or pending[0][1].done() or running >= workers):
                key0, fut0 = pending.popleft()
                if fut0 is not None:
                    running -= 1
                yield key0, (fut0.result() if fut0 is not None else None)
        while pending:
            key0, fut0 = pending.popleft()
            yield key0, (fut0.result() if fut0 is not None else None)
    finally:
        stop.set()
        for _, fut in pending:
            if fut is not None:
                fut.cancel()
        for _ in threads:
            todo.put(None)
