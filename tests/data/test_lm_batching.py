import torch

from rnnkit.data.lm import IGNORE, StreamBatches, batchify, eval_columns, tokenize


def test_word_tokens_end_lines_with_eos():
    assert tokenize(" the cat \n\n sat down \n", "word") == ["the", "cat", "<eos>", "sat", "down", "<eos>"]
    assert tokenize("Hi, you.", "word", punctuation=True) == ["Hi", ",", "you", ".", "<eos>"]
    assert tokenize("ab\nc", "char") == ["a", "b", "\n", "c"]


def test_batchify_cuts_columns_like_zaremba():
    ids = torch.arange(23)
    cols = batchify(ids, 4)  # (5, 4): column j is the contiguous slice j*5 .. j*5+4; 3 tokens dropped
    assert cols.shape == (5, 4)
    assert cols[:, 1].tolist() == [5, 6, 7, 8, 9]


def test_stream_batches_targets_are_inputs_shifted():
    cols = batchify(torch.arange(100), 4)  # (25, 4)
    batches = list(StreamBatches(cols, 6))
    assert len(batches) == (25 - 1) // 6
    for x, y in batches:
        assert torch.equal(y, x + 1)  # the next token in each column
    # resuming mid-epoch yields exactly the remaining batches
    rest = list(StreamBatches(cols, 6).iter_from(2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(rest, batches[2:]))


def test_eval_columns_predict_every_token_exactly_once():
    ids = torch.arange(1, 38)  # 37 tokens -> 36 predictions
    inputs, targets = eval_columns(ids, 5)
    kept = targets[targets != IGNORE]
    assert sorted(kept.tolist()) == list(range(2, 38))
    assert torch.equal(targets[targets != IGNORE], inputs[targets != IGNORE] + 1)
