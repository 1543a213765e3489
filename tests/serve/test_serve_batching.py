"""The inference worker: one thread, same-key jobs merged into batches, one bad input spoiling nobody else's answer."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from rnnkit.errors import UserError

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")

from rnnkit.serve.batching import InferenceWorker  # noqa: E402


def test_concurrent_jobs_of_one_key_are_batched_in_order_on_one_thread():
    worker = InferenceWorker(max_batch=4, max_wait=0.05)
    seen: list[tuple[list[int], str, bool]] = []
    gate = threading.Event()

    def square(items: list[int]) -> list[int]:
        gate.wait(5)  # the first batch waits until everything is queued, so later jobs pile up
        seen.append((list(items), threading.current_thread().name, torch.is_inference_mode_enabled()))
        return [x * x for x in items]

    async def main() -> list[int]:
        tasks = [asyncio.ensure_future(worker.run_batched("sq", square, i)) for i in range(10)]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(*tasks)

    try:
        assert asyncio.run(main()) == [i * i for i in range(10)]
    finally:
        worker.stop()
    assert [x for items, _, _ in seen for x in items] == list(range(10))  # arrival order kept
    assert all(len(items) <= 4 for items, _, _ in seen) and len(seen) < 10  # merged, never over max_batch
    assert {name for _, name, _ in seen} == {"rnnkit-inference"} and all(mode for _, _, mode in seen)
    assert worker.items == 10 and worker.batches == len(seen)


def test_a_bad_item_fails_alone_and_unbatched_jobs_run_alone():
    worker = InferenceWorker(max_batch=8, max_wait=0.05)

    def parse(items: list[str]) -> list[int]:
        for s in items:
            if not s.isdigit():
                raise UserError(f"not a number: {s!r}")
        return [int(s) for s in items]

    async def main() -> list[object]:
        jobs = [worker.run_batched("p", parse, s) for s in ["1", "2", "x", "4"]]
        jobs.append(worker.run(lambda: "alone"))
        return await asyncio.gather(*jobs, return_exceptions=True)

    try:
        out = asyncio.run(main())
    finally:
        worker.stop()
    assert out[:2] == [1, 2] and out[3:] == [4, "alone"]
    assert isinstance(out[2], UserError) and "'x'" in str(out[2])
