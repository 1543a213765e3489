"""One inference thread for the whole server, which batches concurrent requests that can share a forward pass.

Why one thread: the models are shared by every request, PyTorch modules are not meant to run the same forward
from several threads at once, and on a CPU parallel requests would only fight over the same cores. The event
loop keeps accepting and validating requests while the worker runs; each call waits on its own future.

Batching: a job submitted with a ``key`` (say ``("classify", "spam")``) may be merged with other queued jobs of the
same key, up to ``max_batch`` items, waiting at most ``max_wait`` seconds for company after the first arrives. The
batch function receives the list of items and returns one result per item. If it raises a ``UserError`` (one bad
input spoils a batch), the items are run again one at a time so each request gets its own answer or error.
Jobs without a key (generation, chat, forecasts) run alone, in arrival order.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from rnnkit.errors import UserError


@dataclass
class _Job:
    key: Hashable | None
    fn: Callable[[list[Any]], list[Any]]
    item: Any
    future: Future = field(default_factory=Future)


class InferenceWorker:
    """Runs inference calls on one background thread under ``torch.inference_mode``; see the module docstring."""

    def __init__(self, max_batch: int = 32, max_wait: float = 0.002) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # forward calls made (for tests and the load test)
        self.items = 0  # items they covered

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="rnnkit-inference", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    # -- submitting -----------------------------------------------------------------------------------------
    def submit(self, fn: Callable[[list[Any]], list[Any]], item: Any, key: Hashable | None = None) -> Future:
        """Queue ``fn([item])`` (merged with same-key jobs into ``fn([item, ...])``); the future gets its result."""
        self.start()
        job = _Job(key, fn, item)
        self._queue.put(job)
        return job.future

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on the worker, alone, and await its result."""
        return await asyncio.wrap_future(self.submit(lambda items: [fn()], None))

    async def run_batched(self, key: Hashable, fn: Callable[[list[Any]], list[Any]], item: Any) -> Any:
        """Await ``fn``'s result for ``item``, computed in a batch with other queued items of the same ``key``."""
        return await asyncio.wrap_future(self.submit(fn, item, key))

    # -- the thread -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        pending: collections.deque[_Job | None] = collections.deque()
        while True:
            job = pending.popleft() if pending else self._queue.get()
            if job is None:
                for j in pending:  # stopping: whatever is left is cancelled, never left hanging
                    if j is not None:
                        j.future.cancel()
                return
            batch = [job]
            if job.key is not None:
                for j in list(pending):
                    if len(batch) < self.max_batch and j is not None and j.key == job.key:
                        pending.remove(j)
                        batch.append(j)
                deadline = time.monotonic() + self.max_wait
                while len(batch) < self.max_batch:
                    remaining = deadline - time.monotonic()
                    try:
                        nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is not None and nxt.key == job.key:
                        batch.append(nxt)
                    else:
                        pending.append(nxt)
                        if nxt is None:
                            break
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            results = self._call(batch[0].fn, [j.item for j in batch])
        except UserError as e:
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            for j in batch:  # find out whose input it was: each alone
                try:
                    j.future.set_result(self._call(j.fn, [j.item])[0])
                except BaseException as e1:  # noqa: BLE001 - handed to the waiting request
                    j.future.set_exception(e1)
            return
        except BaseException as e:  # noqa: BLE001 - a bug: every waiting request sees it (as a 500)
            for j in batch:
                j.future.set_exception(e)
            return
        for j, r in zip(batch, results):
            j.future.set_result(r)

    def _call(self, fn: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
        with torch.inference_mode():
            out = fn(items)
        if len(out) != len(items):
            raise RuntimeError(f"batch function returned {len(out)} results for {len(items)} items")
        self.batches += 1
        self.items += len(items)
        return out
