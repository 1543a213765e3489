"""Step-level batched generation: requests decoded together give the text each gives alone.

Greedy requests must equal the request served alone; seeded sampled ones too (each draws from its own generator
over its own rows), up to ties closer than float rounding - which a 10,000-word model with these prompts does
not have, so the tests compare exactly.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from rnnkit.runs import load_run

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")

from rnnkit import predict  # noqa: E402
from rnnkit.serve.batching import InferenceWorker  # noqa: E402

# (prompt, words, temperature, top_k, top_p, seed): greedy, plain sampling, top-k, top-p, cold, char counts
REQUESTS = [
    ("the company said", 12, 0.0, 0, 1.0, None),
    ("the market", 5, 1.0, 0, 1.0, 7),
    ("in the first quarter", 9, 0.8, 40, 1.0, 11),
    ("mr. smith", 3, 1.2, 0, 0.9, 3),
    ("analysts expect", 15, 0.5, 5, 0.95, 12345),
    ("the bank", 1, 0.7, 0, 1.0, 0),
    ("", 7, 1.0, 10, 1.0, 99),
    ("the company said", 12, 1.0, 0, 1.0, 7),  # same prompt as a greedy one, sampled
]


@pytest.fixture(scope="module")
def lm(tiny_run):
    """The tiny trained LM with its weights redrawn large: 20 training steps leave a model whose next-word
    distribution hardly depends on the context, so mixed-up rows would go unnoticed; this one's depends on it."""
    loaded = load_run(str(tiny_run("lm")), "best", "cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.copy_(torch.empty(p.shape).uniform_(-1.0, 1.0, generator=g))
    return loaded


def test_the_redrawn_model_depends_on_its_context(lm):
    outs = {predict.generate(lm, prompt, 6, 0.0) for prompt in ("the company said", "the market", "mr. smith")}
    assert len(outs) == 3


def _alone(lm, req) -> str:
    prompt, words, temperature, top_k, top_p, seed = req
    return predict.generate(lm, prompt, words, temperature, top_k, top_p, seed)


def test_streams_joining_at_different_steps_equal_each_request_alone(lm):
    alone = [_alone(lm, r) for r in REQUESTS]
    batch = predict.generation_batch(lm)
    streams = [predict.generation_stream(lm, *r) for r in REQUESTS]
    finished: list = []
    widest = 0
    with torch.inference_mode():
        for k, s in enumerate(streams):  # one new request every step, the others mid-way
            if batch.add(s):
                finished.append(s)
            widest = max(widest, batch.rows)
            if k % 2:
                finished += batch.step()
        while len(batch):
            finished += batch.step()
    assert sorted(map(id, finished)) == sorted(map(id, streams))
    assert [s.result() for s in streams] == alone
    assert widest >= 4  # they really shared steps
    assert batch.steps < sum(len(s.out) for s in streams)


def test_a_prompt_joining_a_running_batch_is_fed_by_its_steps_not_prefilled(lm):
    """Only the first stream runs a prefill pass; the others' prompts ride on the batch's steps (one token a step,
    each row with its own zero state) and still give the text each gives alone."""
    alone = [_alone(lm, r) for r in REQUESTS]
    batch = predict.generation_batch(lm)
    streams = [predict.generation_stream(lm, *r) for r in REQUESTS]
    prefills: list[int] = []
    for k, s in enumerate(streams):
        s.prefill = lambda s=s, k=k, run=s.prefill: (prefills.append(k), run())[1]
    with torch.inference_mode():
        batch.add(streams[0])
        batch.add(streams[1])
        batch.step()
        for s in streams[2:]:
            batch.add(s)
        batch.run()
    assert prefills == [0]
    assert [s.result() for s in streams] == alone


def test_worker_batches_concurrent_streams_and_returns_each_its_own_text(lm):
    alone = [_alone(lm, r) for r in REQUESTS]
    worker = InferenceWorker(max_batch=4, max_wait=0.0)
    gate = threading.Event()

    async def main() -> list:
        blocker = worker.run(lambda: gate.wait(10))  # holds the worker until every request is queued
        jobs = [
            worker.run_stream("lm", lambda r=r: predict.generation_stream(lm, *r), lambda: predict.generation_batch(lm))
            for r in REQUESTS
        ]
        bad = worker.run_stream(
            "lm", lambda: predict.generation_stream(lm, "zzzqqq xxyyzz", 3), lambda: predict.generation_batch(lm)
        )
        tasks = [asyncio.ensure_future(j) for j in (blocker, *jobs, bad)]
        await asyncio.sleep(0.2)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        out = asyncio.run(main())
    finally:
        worker.stop()
    assert out[1:-1] == alone
    from rnnkit.errors import UserError

    assert isinstance(out[-1], UserError) and "unknown" in str(out[-1])  # its own error, nobody else's
    assert worker.stream_rows > 2 * worker.stream_steps  # more than two rows per step on average
    assert worker.stream_rows <= 4 * worker.stream_steps  # never over max_batch


@pytest.fixture(scope="module")
def chat(tiny_run):
    """The tiny chatbot with its weights redrawn large, for the same reason as ``lm``."""
    loaded = load_run(str(tiny_run("chat")), "best", "cpu")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.copy_(torch.empty(p.shape).uniform_(-0.5, 0.5, generator=g))
    return loaded


# (text, history, replies, decoding, top_k, temperature, seed): messages of different lengths, both decodings
CHATS = [
    ("hi , how are you ?", [], 3, "sample", 3, 1.0, 5),
    ("what is your name", ["hello"], 2, "greedy", None, None, None),
    ("i am fine thanks", [], 4, "sample", 10, 0.7, 42),
    ("where do you live ? i live in a small town near the sea", [], 1, "sample", 0, 1.3, 8),
    ("ok", [], 2, "sample", 5, 1.0, 9),
]


def test_chat_streams_batched_give_each_request_its_own_replies(chat):
    alone = [
        predict.chat(chat, t, h, n=n, decoding=d, top_k=k, temperature=tmp, seed=s) for t, h, n, d, k, tmp, s in CHATS
    ]
    assert len({tuple(r) for r in alone}) == len(CHATS)
    batch = predict.generation_batch(chat, "chat")
    streams = [
        predict.reply_stream(chat, t, h, n=n, decoding=d, top_k=k, temperature=tmp, seed=s)
        for t, h, n, d, k, tmp, s in CHATS
    ]
    widest = 0
    with torch.inference_mode():
        for k, s in enumerate(streams):
            batch.add(s)
            widest = max(widest, batch.rows)
            if k % 2:
                batch.step()
        batch.run()
    assert [s.result() for s in streams] == alone
    assert widest > 8  # sampled requests bring 2 x replies rows each
