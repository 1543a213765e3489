"""Sequence to sequence: translation (Spanish -> English with attention) and a chatbot, one task.

Data: ``source<TAB>target[<TAB>...]`` lines (``data.source_column`` / ``data.target_column``, 0-based), e.g. the
Tatoeba Spanish-English pairs (English in column 0) or a dialogue corpus of (utterance, reply) lines. Pairs are
split train/valid/test by source sentence (``rnnkit.data.parallel.grouped_split``); the split is saved in every
checkpoint and reused by ``rnnkit eval``, so test sentences are never trained on, even if the code that draws
splits changes. Pairs longer than ``data.max_pair_tokens`` tokens on either side are dropped from every split (text
classification's ``data.truncate`` cuts texts instead: a classifier keeps every example).

Selection metric (``model.select``): ``bleu`` = corpus BLEU of greedy decoding on at most
``data.valid_bleu_sentences`` validation sources (``bleu_greedy``); it tracks what we care about better than the
loss, which keeps falling after BLEU has peaked. ``loss`` = the teacher-forced validation loss (for the chatbot,
whose references are one reply among many possible ones).

Evaluation on ``test`` decodes every test source with beam search (``model.beam``) and greedily, and reports
corpus BLEU and chrF (sacrebleu, detokenised, case-insensitive when ``data.lowercase``), with all the
translations a source sentence has in the split as its references.

The package: ``settings`` (the [data] and [model] keys), ``corpus`` (text, tokens, splits, vocabularies),
``decoding`` (search, translations, chat replies), ``sampled_softmax`` (the sampled training loss), ``task`` (the
registered task that joins them: model, training step, evaluation).
"""

from rnnkit.tasks.seq2seq.settings import Seq2SeqData, Seq2SeqModel
from rnnkit.tasks.seq2seq.task import Seq2SeqTask

__all__ = ["Seq2SeqData", "Seq2SeqModel", "Seq2SeqTask"]
