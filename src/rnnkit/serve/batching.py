"""One inference thread for the whole server, which batches concurrent requests that can share a forward pass.

Why one thread: the models are shared by every request, PyTorch modules are not meant to run the same forward
from several threads at once, and on a CPU parallel requests would only fight over the same cores. The event
loop keeps accepting and validating requests while the worker runs; each call waits on its own future.

Batching: a job submitted with a ``key`` (say ``("classify", "spam")``) may be merged with other queued jobs of the
same key, up to ``max_batch`` items, waiting at most ``max_wait`` seconds for company after the first arrives. The
batch function receives the list of items and returns one result per item. If it raises a ``UserError`` (one bad
input spoils a batch), the items are run again one at a time so each request gets its own answer or error.
Jobs without a key (forecasts, beam-search chat) run alone, in arrival order.

Generation streams (``run_stream``: /v1/generate, sampled and greedy /v1/chat) are batched at the step level
instead: each model has one :class:`~rnnkit.decode.stream.StreamBatch`; a new request is prefilled (its prompt run
alone) and joins it, every turn of the loop advances every row by one token, and a request leaves with its result
as soon as its own rows are done. Other jobs run between two steps, so a long generation never blocks a
classification for more than one step. A request joins while its batch has fewer than ``max_batch`` rows; later
requests wait for rows to free up.
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

from rnnkit.decode.stream import Stream, StreamBatch
from rnnkit.errors import UserError


@dataclass
class _Job:
    key: Hashable | None
    fn: Callable[..., Any]  # plain jobs: items -> results; streams: () -> Stream
    item: Any  # streams: () -> StreamBatch, called when the key has no batch yet
    future: Future = field(default_factory=Future)
    stream: bool = False


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
        self.stream_steps = 0  # batched generation steps run
        self.stream_rows = 0  # rows they covered (stream_rows / stream_steps: the mean batch)
        self._streams: dict[Hashable, StreamBatch] = {}  # the worker thread's own
        self._owners: dict[int, tuple[Stream, _Job]] = {}

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

    def submit_stream(
        self, key: Hashable, make_stream: Callable[[], Stream], make_batch: Callable[[], StreamBatch]
    ) -> Future:
        """Queue a generation stream for ``key``'s shared batch; the future gets ``stream.result()``."""
        self.start()
        job = _Job(key, make_stream, make_batch, stream=True)
        self._queue.put(job)
        return job.future

    async def run_stream(
        self, key: Hashable, make_stream: Callable[[], Stream], make_batch: Callable[[], StreamBatch]
    ) -> Any:
        """Await the result of the stream ``make_stream()`` (built on the worker: it may raise UserError), decoded
        step by step together with the other streams of ``key`` (one model) in ``make_batch()``."""
        return await asyncio.wrap_future(self.submit_stream(key, make_stream, make_batch))

    # -- the thread -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        pending: collections.deque[_Job | None] = collections.deque()
        while True:
            busy = any(len(b) for b in self._streams.values())
            if not pending and not busy:
                pending.append(self._queue.get())
            while True:  # whatever else has arrived, without waiting
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in pending:  # stopping: whatever is left is cancelled, never left hanging
                self._stop_all(pending)
                return
            self._admit_streams(pending)
            job = next((j for j in pending if j is not None and not j.stream), None)
            if job is not None:
                pending.remove(job)
                self._execute(self._gather(job, pending, wait=not busy))
            for key in list(self._streams):
                self._step(key)

    def _gather(self, job: _Job, pending: collections.deque[_Job | None], wait: bool) -> list[_Job]:
        """``job`` and up to max_batch - 1 queued jobs of its key; waits max_wait for company unless generation
        streams are running (they are the company then)."""
        batch = [job]
        if job.key is None:
            return batch
        for j in list(pending):
            if len(batch) < self.max_batch and j is not None and not j.stream and j.key == job.key:
                pending.remove(j)
                batch.append(j)
        deadline = time.monotonic() + (self.max_wait if wait else 0.0)
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is not None and not nxt.stream and nxt.key == job.key:
                batch.append(nxt)
            else:
                pending.append(nxt)
                if nxt is None:
                    break
        return batch

    def _admit_streams(self, pending: collections.deque[_Job | None]) -> None:
        """Prefill queued streams and add them to their key's batch while it has rows to spare."""
        for job in [j for j in pending if j is not None and j.stream]:
            batch = self._streams.get(job.key)
            if batch is not None and batch.rows >= self.max_batch:
                continue  # waits for rows; later jobs of other keys may still go
            pending.remove(job)
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                with torch.inference_mode():
                    stream = job.fn()
                    if batch is None:
                        batch = self._streams[job.key] = job.item()
                    finished = batch.add(stream)
                if finished:
                    job.future.set_result(stream.result())
                else:
                    self._owners[id(stream)] = (stream, job)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request (UserError: 422, else 500)
                job.future.set_exception(e)

    def _step(self, key: Hashable) -> None:
        batch = self._streams[key]
        if not len(batch):
            return
        rows = batch.rows
        try:
            with torch.inference_mode():
                finished = batch.step()
        except BaseException as e:  # noqa: BLE001 - a bug: every request in this batch sees it (as a 500)
            for s in batch.streams:
                _, job = self._owners.pop(id(s))
                job.future.set_exception(e)
            del self._streams[key]
            return
        self.stream_steps += 1
        self.stream_rows += rows
        for s in finished:
            _, job = self._owners.pop(id(s))
            try:
                job.future.set_result(s.result())
            except BaseException as e:  # noqa: BLE001
                job.future.set_exception(e)

    def _stop_all(self, pending: collections.deque[_Job | None]) -> None:
        for j in pending:
            if j is not None:
                j.future.cancel()
        for stream, job in self._owners.values():
            job.future.set_exception(RuntimeError("the server stopped before this generation finished"))
            del stream
        self._owners.clear()
        self._streams.clear()

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
