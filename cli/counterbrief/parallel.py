"""Work on many files with every core and bounded memory: an ordered map over a process pool.

Used by the index build and ``check``. The results come back in the order of the input, a
window at a time: at most two windows are in flight, so a parent that consumes more slowly
than the workers produce (the index writer) never holds more than two windows of results.
Where the platform cannot fork, or the work is small, everything runs in this process.
"""
from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Optional

PARALLEL_FROM = 2000   # below this, starting workers costs more than it saves
WINDOW = 400           # items per window; two windows in flight


def workers() -> int:
    return max(1, min(os.cpu_count() or 2, 8))


def can_fork() -> bool:
    return hasattr(os, "fork")


def ordered_map(func: Callable[[Any], Any], items: list, init: Callable[..., None], initargs: tuple = (),
                parallel: Optional[bool] = None, window: int = WINDOW) -> Iterator[Any]:
    """func(item) for every item, in order; ``init(*initargs)`` prepares each worker (or this process)."""
    if parallel is None:
        parallel = len(items) >= PARALLEL_FROM
    if not (parallel and can_fork() and workers() > 1):
        init(*initargs)
        for item in items:
            yield func(item)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    chunk = max(1, window // (4 * workers()))
    with ctx.Pool(workers(), initializer=init, initargs=initargs) as pool:
        pending: deque = deque()
        for start in range(0, len(items), window):
            pending.append(pool.map_async(func, items[start:start + window], chunksize=chunk))
            if len(pending) >= 2:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
