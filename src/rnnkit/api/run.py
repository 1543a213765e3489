"""``rnnkit.Run``: one run directory as a Python object - what it is, how it trained, and what it answers.

A Run is a handle on files (``RUN/config.toml``, ``metrics.jsonl``, ``checkpoints/``), not a model held in memory:
``rnnkit.load(path)`` works on any run, finished or stopped, trained by the CLI, the API or the tuner, in this
process or another. The model is loaded on first use (``evaluate``, ``generate``, ...) and kept; ``resume``
trains on and drops it. Every prediction goes through ``rnnkit.predict``, the code the CLI verbs and the server
run, so inputs are checked and defaults chosen the same way everywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from rnnkit.api import arguments as arg
from rnnkit.api.checks import MAX_INPUT_LENGTH, MAX_NEW_TOKENS
from rnnkit.api.results import Prediction, Translation
from rnnkit.config import DEFAULT_NEW_TOKENS, MAX_COUNT, MAX_SEED
from rnnkit.errors import ArgumentError, UserError, UserTypeError, UserValueError, is_file

if TYPE_CHECKING:
    import pandas as pd

    from rnnkit.config import RunConfig
    from rnnkit.runs import LoadedRun

# what Run.forecast(forecaster=...) takes (rnnkit.tasks.forecast.FORECASTERS, without importing the task here)
FORECASTERS = ("auto", "model", "ensemble", "ets", "damped", "theta", "ar", "seasonal_naive", "naive", "drift")
PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def _named(call: str) -> Iterator[None]:
    """Errors about an argument raised below the API (``rnnkit.predict``) name the API call that took it."""
    try:
        yield
    except ArgumentError as e:
        raise e.within(call) from None


class Run:
    """A run directory: its configuration, records and checkpoints, and the predictions of its model.

    Made by ``rnnkit.train(...)`` (a run just trained) or ``rnnkit.load(path)``. Attributes:

    * ``path``: the run directory; ``config``: its resolved configuration (``RunConfig``: ``config.model.hidden``,
      ``config.to_dict()``); ``info``: run.json (device, precision, versions, where its data came from);
    * ``summary``: the last training's summary (``stopped``, ``step``, ``valid_best``, ``test``, ...), the dict
      ``rnnkit train --json`` prints; ``notes``: what training wanted you to know;
    * ``metrics``: the training and evaluation records as a pandas DataFrame (``records``: as dicts).

    Methods: ``evaluate``, ``generate``, ``classify``, ``translate``, ``chat``, ``forecast``, ``resume``,
    ``export`` - each says which runs can answer it (``services`` lists a run's).
    """

    def __init__(
        self,
        path: PathLike,
        checkpoint: str = "best",
        device: str = "auto",
        data_dir: PathLike | None = None,
        summary: dict[str, Any] | None = None,
        notes: Sequence[str] = (),
        rank: int = 0,
    ) -> None:
        from rnnkit.train.rundir import RunDir

        call = "load"
        self.path = arg.path(call, "path", path)
        arg.choice(call, "checkpoint", checkpoint, ("best", "last"))
        arg.text(call, "device", device)
        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+|mps", device):
            raise UserValueError("device", f"must be auto, cpu, cuda, cuda:N or mps, got {device!r}", call)
        self.data_dir = arg.directory(call, "data_dir", data_dir, none=True)
        self._given = os.fspath(path)
        self._dir = RunDir(self.path).require()
        self.checkpoint, self.device = checkpoint, device
        self._summary = summary
        self.notes = list(notes)
        self.rank = rank
        self.launched = False  # trained by worker processes this call started (train(nproc=...))
        self._loaded: Any = None

    def __repr__(self) -> str:
        s = self.summary
        state = f", {s['stopped']} at step {s['step']}" if s.get("stopped") else ""
        return f"Run({self._given!r}, task={self.config.task!r}, recipe={self.config.recipe!r}{state})"

    # -- what the run is ----------------------------------------------------------------------------
    @property
    def config(self) -> RunConfig:
        """The resolved configuration (config.toml) as a typed ``RunConfig``."""
        return self._dir.read_config()

    @property
    def info(self) -> dict[str, Any]:
        """run.json: how the run was started (see rnnkit.runs.setup for its keys)."""
        return self._dir.read_meta()

    @property
    def summary(self) -> dict[str, Any]:
        """The summary of the run's last training (summary.json): stopped, step, epoch, wall_s, valid,
        valid_best, test, ... - what ``rnnkit train --json`` printed."""
        if self._summary is None:
            self._summary = self._dir.read_summary()
        return dict(self._summary)

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl: training windows (step, epoch, loss, lr, tokens_per_s) and evaluations
        (split, step, epoch and the task's metrics)."""
        return self._dir.read_metrics()

    @property
    def metrics(self) -> pd.DataFrame:
        """The records as a pandas DataFrame, one row each (``split`` is NaN for training windows): e.g.
        ``run.metrics.query("split == 'valid'")[["step", "loss"]]``. Needs pandas (``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise UserError("Run.metrics needs pandas: pip install pandas (or use Run.records)") from None
        return pd.DataFrame.from_records(self.records)

    @property
    def services(self) -> tuple[str, ...]:
        """What this run answers: of generate, translate, chat, classify, forecast."""
        from rnnkit import predict

        return predict.services(self._load())

    def can(self, service: str) -> bool:
        """Whether the run answers ``service`` (generate, translate, chat, classify, forecast): see ``services``."""
        from rnnkit import predict

        arg.choice("can", "service", service, tuple(predict.SERVICES))
        return predict.can(self._load(), service)

    def require(self, service: str) -> None:
        """Raise UserError, naming the run and its task, unless it answers ``service``."""
        from rnnkit import predict

        arg.choice("require", "service", service, tuple(predict.SERVICES))
        predict.require(self._load(), service)

    def describe(self) -> dict[str, Any]:
        """What a caller needs to know to form inputs: labels, input format, forecast columns and horizon..."""
        from rnnkit import predict

        return predict.describe(self._load())

    def format_metrics(self, metrics: Mapping[str, Any]) -> str:
        """One line of the task's headline figures, as the CLI prints them."""
        if not isinstance(metrics, Mapping):
            raise UserTypeError("metrics", f"must be a dict of metrics, got {type(metrics).__name__}", "format_metrics")
        return str(self._load().task.format_metrics(dict(metrics)))

    def _load(self) -> LoadedRun:
        if self._loaded is None:
            from rnnkit.runs import load_run

            self._loaded = load_run(self.path, self.checkpoint, self.device, self.data_dir)
        return self._loaded

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, split: str | None = None, data: Any = None) -> dict[str, Any]:
        """The model's metrics on a held-out split, or on new labelled data - the dict ``rnnkit eval RUN --split
        SPLIT --json`` (or ``rnnkit eval RUN --data FILE --json``) prints.

        Args:
            split: "valid" or "test"; None (without ``data``) evaluates every split the task has and returns
                {split: metrics} (``rnnkit eval RUN --json``).
            data: new labelled data, scored with the run's own preprocessing (vocabulary, labels, scalers) and the
                metrics of its test split: any form ``rnnkit.train(data=...)`` takes for the task - ``(text,
                label)`` pairs, ``(X, y)`` arrays, ``(source, target)`` pairs, a text, a series (numbers, a pandas
                Series or DataFrame: a forecaster is scored from every origin of it) - or a ``pathlib.Path`` to a
                file in the task's own format (label<TAB>text lines, an .npz of x and y, source<TAB>target lines
                laid out like the training file, a text file, a CSV laid out like the run's series). A ``str`` is
                data (an LM's text), never a path.

        Evaluation reads the run's data again (the splits are a pure function of the data and the seed).
        """
        if data is not None:
            if split is not None:
                raise UserValueError("split", "goes with the run's own data; give split or data, not both", "evaluate")
            return self._evaluate_data(data)
        arg.text("evaluate", "split", split, none=True)
        loaded = self._load()
        splits = list(loaded.task.splits())
        if split is None:
            return {s: loaded.task.evaluate(loaded.model, s) for s in splits}
        arg.choice("evaluate", "split", split, splits)
        return dict(loaded.task.evaluate(loaded.model, split))

    def _evaluate_data(self, data: Any) -> dict[str, Any]:
        import tempfile

        from rnnkit.runs import fresh_task

        if isinstance(data, os.PathLike) and not is_file(data, "data"):
            raise UserValueError("data", f"file not found: {os.fspath(data)}", "evaluate")
        loaded = self._load()
        with tempfile.TemporaryDirectory(prefix="rnnkit-eval-") as folder, _named("evaluate"):
            return dict(fresh_task(loaded).evaluate_data(loaded.model, data, Path(folder)))

    def predict(self, inputs: Any, **options: Any) -> list[str] | list[Prediction] | list[pd.DataFrame]:
        """One prediction per input, of one type per task - what the run is for (``services[0]``):

        * a language model: the continuation (``str``) of each prompt (``generate``; options such as
          ``max_new_tokens``, ``temperature``, ``seed``);
        * a classifier: a ``Prediction`` per text or sequence (``classify``);
        * a translator: the translation (``str``) of each sentence (``translate``; ``beam``, ``max_new_tokens``);
        * a chatbot: the best reply (``str``) to each message (``chat``);
        * a forecaster: the forecast (a pandas DataFrame, as ``forecast`` returns) after each history (numbers, rows
          of numbers, or a pandas Series / DataFrame; ``horizon``, ``level``, ``seed``, ``forecaster``).

        ``inputs`` is a list (a single text is one input); the answer is always a list in input order.
        """
        service = self.services[0]
        if service == "forecast":
            return self._predict_forecasts(inputs, **options)
        _check_options(getattr(self, service), options)
        if service == "classify":
            out = self.classify(inputs, **options)
            return [out] if isinstance(out, dict) else out
        _, items = arg.texts("predict", "inputs", inputs)
        if service == "generate":
            return [self.generate(p, **options) for p in items]
        if service == "translate":
            return list(self.translate(items, **options))
        return [self.chat(text, **options)[0] for text in items]

    def _predict_forecasts(self, inputs: Any, **options: Any) -> list[pd.DataFrame]:
        from rnnkit.data.memory import is_frame, is_series

        call = "predict"
        unknown = set(options) - {"horizon", "level", "seed", "forecaster"}
        if unknown:
            raise UserTypeError(sorted(unknown)[0], "is not an option of a forecaster's predict", call)
        if (
            is_series(inputs)
            or is_frame(inputs)
            or isinstance(inputs, (str, bytes))
            or not isinstance(inputs, Sequence)
        ):
            raise UserTypeError("inputs", "must be a list of histories (each numbers, or a Series/DataFrame)", call)
        out: list[pd.DataFrame] = []
        for i, history in enumerate(inputs):
            if history is None:
                raise UserTypeError(f"inputs[{i}]", "must be a history, got None", call)
            try:
                out.append(self.forecast(history, **options))
            except ArgumentError as e:
                raise e.within(call) from None
        return out

    def report(self, split: str = "test") -> tuple[dict[str, Any], Path]:
        """A classifier's per-class report on ``split`` and its confusion matrix, drawn into
        ``RUN/confusion_SPLIT.png``: (metrics, png path)."""
        from rnnkit import predict

        task = predict.require(self._load(), "classify")
        arg.choice("report", "split", split, list(task.splits()))
        metrics, png = task.write_report(self._load().model, split, self.path)
        return dict(metrics), Path(png)

    # -- predictions ----------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str = "",
        max_new_tokens: int = DEFAULT_NEW_TOKENS,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        max_input_length: int | None = None,
        *,
        words: int | None = None,
    ) -> str:
        """Continue ``prompt`` with a language model (``rnnkit generate``).

        Args:
            prompt: text to continue ("" starts a new sentence).
            max_new_tokens: how many tokens (words of a word-level model) to add.
            temperature: 0 picks the most likely token each step; below 1 sharper, above 1 more random.
            top_k: sample among the k most likely (0: all). top_p: nucleus sampling mass (1: off).
            seed: fixes the sampling, for reproducible text.
            max_input_length: longest prompt in characters (default: the server's 2000; None here = default).
            words: the old name of ``max_new_tokens`` (accepted until rnnkit 0.3, with a warning).

        Returns: the continuation, without the prompt.
        """
        from rnnkit import predict

        call = "generate"
        arg.text(call, "prompt", prompt)
        max_new_tokens = arg.renamed(call, "max_new_tokens", max_new_tokens, "words", words, DEFAULT_NEW_TOKENS)
        arg.integer(call, "max_new_tokens", max_new_tokens, ge=1, le=MAX_NEW_TOKENS)
        arg.number(call, "temperature", temperature, ge=0, le=1e6)
        arg.integer(call, "top_k", top_k, ge=0)
        arg.number(call, "top_p", top_p, gt=0, le=1)
        arg.integer(call, "seed", seed, none=True, ge=0, le=MAX_SEED)
        limit = self._input_limit(call, max_input_length)
        with _named(call):
            return predict.generate(
                self._load(),
                prompt,
                int(max_new_tokens),
                temperature=float(temperature),
                top_k=int(top_k),
                top_p=float(top_p),
                seed=seed,
                max_input_length=limit,
            )

    @overload
    def classify(self, inputs: str, max_input_length: int | None = None) -> Prediction: ...

    @overload
    def classify(self, inputs: Any, max_input_length: int | None = None) -> Prediction | list[Prediction]: ...

    def classify(self, inputs: Any, max_input_length: int | None = None) -> Prediction | list[Prediction]:
        """Label and probabilities for each input of a classifier (``rnnkit classify``).

        Args:
            inputs: a text, or a list of texts (text classifiers); for sequence classifiers one sequence as an
                array of shape (steps, channels), several as (n, steps, channels) or a list of (steps, channels)
                arrays (numbers written as text are taken too).
            max_input_length: longest input (characters, or values for sequences); default the server's.

        Returns: for one input (a text, or one sequence) a ``Prediction`` dict {"label", "probability",
        "probabilities"} (with "text" for a text); for several, a list of them in input order. ``predict`` always
        returns the list.
        """
        from rnnkit import predict

        call = "classify"
        limit = self._input_limit(call, max_input_length)
        loaded = self._load()
        predict.require(loaded, "classify")
        single, texts = self._as_inputs(inputs)
        with _named(call):
            out = predict.classify(loaded, texts, max_input_length=limit, name="inputs")
        results = [Prediction(**r) for r in out]  # type: ignore[typeddict-item]
        return results[0] if single else results

    def _as_inputs(self, inputs: Any) -> tuple[bool, list[Any]]:
        """(one input?, the inputs: texts, or for a sequence classifier arrays of numbers in its input order)."""
        call = "classify"
        if isinstance(inputs, str):
            return True, [inputs]
        info = self.describe()
        if info.get("input") == "sequence" and not (
            isinstance(inputs, Sequence) and inputs and all(isinstance(x, str) for x in inputs)
        ):
            from rnnkit.data.series_sets import series_inputs

            try:
                single, arrays = series_inputs(inputs, int(info.get("channels") or 1))
            except UserError as e:
                raise UserValueError("inputs", str(e).removeprefix("inputs: "), call) from None
            except (TypeError, ValueError) as e:  # numbers that are not numbers
                raise UserTypeError(
                    "inputs",
                    "must be numbers: (steps, channels) or (n, steps, channels) arrays, a list of (steps, channels) "
                    f"arrays or a DataFrame ({e})",
                    call,
                ) from None
            if not all(np.isfinite(x).all() for x in arrays):
                raise UserValueError("inputs", "holds a value that is not a finite number", call)
            first = info.get("layout") == "channels_first"
            return single, [np.ascontiguousarray(x.T if first else x).ravel() for x in arrays]  # in input_format order
        return arg.texts(call, "inputs", inputs)

    @overload
    def translate(
        self,
        texts: str,
        beam: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        details: bool = False,
        max_input_length: int | None = None,
        *,
        max_length: int | None = None,
    ) -> str | Translation: ...

    @overload
    def translate(
        self,
        texts: Sequence[str],
        beam: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        details: bool = False,
        max_input_length: int | None = None,
        *,
        max_length: int | None = None,
    ) -> list[str] | list[Translation]: ...

    def translate(
        self,
        texts: str | Sequence[str],
        beam: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        details: bool = False,
        max_input_length: int | None = None,
        *,
        max_length: int | None = None,
    ) -> str | Translation | list[str] | list[Translation]:
        """Translate with a sequence-to-sequence run (``rnnkit translate``).

        Args:
            texts: a sentence or a list of sentences.
            beam: beam size (default: the run's model.beam; 1 = greedy).
            max_new_tokens: most output tokens (default: 2 x input + 10).
            length_penalty: GNMT length penalty alpha (default: the run's model.length_penalty).
            details: return ``Translation`` dicts (translation, tokens, score, attention weights) instead of strings.
            max_length: the old name of ``max_new_tokens`` (accepted until rnnkit 0.3, with a warning).

        Returns: a string (a ``Translation`` with ``details``) for one sentence, a list of them for several.
        """
        from rnnkit import predict

        call = "translate"
        single, items = arg.texts(call, "texts", texts)
        arg.integer(call, "beam", beam, none=True, ge=1, le=1000)
        max_new_tokens = arg.renamed(call, "max_new_tokens", max_new_tokens, "max_length", max_length)
        arg.integer(call, "max_new_tokens", max_new_tokens, none=True, ge=1, le=MAX_NEW_TOKENS)
        arg.number(call, "length_penalty", length_penalty, none=True, ge=0, le=100)
        arg.flag(call, "details", details)
        limit = self._input_limit(call, max_input_length)
        with _named(call):
            out = predict.translate(
                self._load(),
                items,
                beam=beam,
                max_new_tokens=max_new_tokens,
                alpha=length_penalty,
                max_input_length=limit,
                name="texts",
            )
        result = [Translation(**r) for r in out] if details else [str(r["translation"]) for r in out]  # type: ignore[typeddict-item]
        return result[0] if single else result  # type: ignore[return-value]

    def plot_attention(self, result: Mapping[str, Any], path: PathLike) -> Path:
        """Draw one translation's attention weights (a ``translate(..., details=True)`` dict) into a PNG."""
        from rnnkit.api.plots import plot_attention
        from rnnkit.figures import output_file

        call = "plot_attention"
        if not isinstance(result, Mapping) or not {"source", "translation", "source_tokens"} <= set(result):
            raise UserTypeError("result", "must be a dict from translate(..., details=True)", call)
        out = output_file(arg.path(call, "path", path), "path", call)
        if result.get("attention") is None:
            raise UserValueError("result", "has no attention weights (the run's model.attention_kind is 'none')", call)
        return plot_attention(
            result["attention"],
            result["source_tokens"],
            result["target_tokens"],
            out,
            result["source"],
            result["translation"],
        )

    def chat(
        self,
        text: str,
        history: Sequence[str] = (),
        replies: int | None = None,
        decoding: str | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        beam: int | None = None,
        seed: int | None = None,
        max_new_tokens: int | None = None,
        max_input_length: int | None = None,
        *,
        max_words: int | None = None,
    ) -> list[str]:
        """Candidate replies of a chatbot (a seq2seq run trained on dialogue; ``rnnkit chat``).

        Args:
            text: the message. history: the conversation before it, oldest first (used when the run reads
                earlier turns, data.context_turns).
            replies: how many candidates (default: the run's model.replies).
            decoding: "sample", "beam" or "greedy" (default: model.reply_decoding); top_k, temperature, beam:
                its settings (default: the run's). seed: fixes the sampling.
            max_new_tokens: longest reply in tokens (default: the run's model.decode_length).
            max_words: the old name of ``max_new_tokens`` (accepted until rnnkit 0.3, with a warning).

        Returns: the replies, best first.
        """
        from rnnkit import predict

        call = "chat"
        arg.text(call, "text", text)
        if isinstance(history, str):
            raise UserTypeError("history", "must be a list of str (the earlier turns), got str", call)
        history = [] if not history else arg.texts(call, "history", history)[1]
        arg.integer(call, "replies", replies, none=True, ge=1, le=100)
        arg.choice(call, "decoding", decoding, ("sample", "beam", "greedy"), none=True)
        arg.integer(call, "top_k", top_k, none=True, ge=0)
        arg.number(call, "temperature", temperature, none=True, ge=0, le=1e6)
        arg.integer(call, "beam", beam, none=True, ge=1, le=1000)
        arg.integer(call, "seed", seed, none=True, ge=0, le=MAX_SEED)
        max_new_tokens = arg.renamed(call, "max_new_tokens", max_new_tokens, "max_words", max_words)
        arg.integer(call, "max_new_tokens", max_new_tokens, none=True, ge=1, le=MAX_NEW_TOKENS)
        limit = self._input_limit(call, max_input_length)
        with _named(call):
            return predict.chat(
                self._load(),
                text,
                list(history),
                n=replies,
                decoding=decoding,
                top_k=top_k,
                temperature=temperature,
                beam=beam,
                seed=seed,
                max_new_tokens=max_new_tokens,
                max_input_length=limit,
            )

    def _input_limit(self, call: str, n: Any) -> int:
        n = arg.integer(call, "max_input_length", n, none=True, ge=1, le=MAX_COUNT)
        return MAX_INPUT_LENGTH if n is None else int(n)

    def forecast(
        self,
        history: Any = None,
        horizon: int | None = None,
        level: float | None = None,
        seed: int = 0,
        forecaster: str | None = None,
        future: Any = None,
    ) -> pd.DataFrame:
        """Forecast the ``horizon`` steps after the end of ``history`` with a forecasting run.

        Args:
            history: the series to continue, in the run's columns: numbers (a list or array of n values, or n
                rows of k values), a numpy array, a pandas Series or DataFrame (its index is the time), or None
                for the run's own series (kept in its checkpoint).
            horizon: steps to forecast (default: the run's data.horizon; beyond it forecasts are fed back).
            level: the prediction interval's coverage (default: the run's model.interval).
            seed: sample paths of recursive Gaussian models.
            forecaster: "model", "ensemble", a baseline ("ets", "damped", "theta", "ar", "seasonal_naive", "naive",
                "drift"), or "auto" (default: the run's model.forecaster): the one validation chose.
            future: a run with covariates (data.past_covariates, data.future_covariates) reads them from
                ``history``'s columns of those names; the known-future ones for the forecast steps come here: a
                DataFrame or dict of those columns, ``horizon`` rows.

        Returns a pandas DataFrame with one row per step and column: ``time`` (the index's own type for pandas
        input: dates continue their frequency; labels otherwise), ``column``, ``forecast``, ``lower``, ``upper``
        - the rows of ``rnnkit forecast --json``. ``attrs["forecaster"]`` says what forecast them and
        ``attrs["note"]`` is the line printed when the model lost to a baseline on validation (or None).
        """
        import pandas as pd

        from rnnkit import predict
        from rnnkit.api.forecasting import future_index
        from rnnkit.data.memory import is_frame, is_series, series_table
        from rnnkit.data.timeseries import future_times

        call = "forecast"
        _check_history(call, history)
        arg.integer(call, "horizon", horizon, none=True, ge=1, le=1_000_000)
        arg.number(call, "level", level, none=True, gt=0, lt=1)
        arg.integer(call, "seed", seed, ge=0, le=MAX_SEED)
        arg.choice(call, "forecaster", forecaster, FORECASTERS, none=True)
        loaded = self._load()
        with _named(call):
            horizon, level = predict.forecast_settings(loaded, horizon, level)
        exog, own = None, None
        if history is None:
            values, times, columns, _ = predict.saved_history(loaded)
            own = predict.require(loaded, "forecast").saved.get("history_column_times")  # a panel's own times
            saved = predict.require(loaded, "forecast").saved.get("history_exog")
            exog = np.asarray(saved, dtype=np.float64) if saved else None
        else:
            values, labels, columns = series_table(history)
            times = labels if labels is not None else [str(i) for i in range(values.shape[0])]
        values, columns, exog = _split_covariates(loaded, values, columns, exog, future, horizon)
        with _named(call):
            fc = predict.forecast(loaded, values, horizon, level, seed=seed, forecaster=forecaster, exog=exog)
        out_times: list[Any] = future_times(times, horizon)
        trained = list(self.describe().get("columns") or columns)
        names = trained
        if is_series(history) or is_frame(history):
            out_times = list(future_index(history.index, horizon, out_times))
            if is_frame(history):
                names = list(columns)  # the frame's own column names, less any covariates
            elif getattr(history, "name", None) is not None:
                names = [str(history.name)]
        rows = [
            {
                "time": future_times(own[j], horizon)[i] if own else out_times[i],
                "column": name,
                "forecast": float(fc["mean"][i, j]),
                "lower": float(fc["lower"][i, j]),
                "upper": float(fc["upper"][i, j]),
            }
            for i in range(horizon)
            for j, name in enumerate(names)
        ]
        frame = pd.DataFrame(rows, columns=["time", "column", "forecast", "lower", "upper"])
        frame.attrs.update({"forecaster": fc["forecaster"], "note": fc["note"], "interval": level, "pool": fc["pool"]})
        return frame

    def forecast_report(
        self,
        csv: PathLike | None = None,
        time_column: str | None = None,
        target: str | None = None,
        horizon: int | None = None,
        holdout: bool = False,
        level: float | None = None,
        plot: PathLike | None = None,
        seed: int = 0,
        forecaster: str | None = None,
    ) -> dict[str, Any]:
        """What ``rnnkit forecast --json`` prints: a table of forecasts (rows of time, column, forecast, lower,
        upper) for the steps after the time ``after``, ``forecaster`` (what gave them) and ``note`` (one line when
        the model lost to a baseline on validation); with ``holdout`` the truth and ``metrics``: the forecast's
        errors, the model's, the ensemble's and every baseline's (``baselines``, each fitted on the same
        history); with ``plot`` a PNG.

        Args:
            csv: a CSV to continue (default: the run's own series); time_column, target: its columns (default:
                the run's data.time_column / data.value_columns).
            horizon, level, seed, forecaster: as for ``forecast``.
            holdout: hide the last ``horizon`` known points, forecast them and score the forecast.
            plot: draw history, forecast, interval (and truth) into this PNG.
        """
        from rnnkit import predict
        from rnnkit.api.plots import plot_forecast

        call = "forecast_report"
        _check_report_arguments(call, csv, time_column, target, horizon, holdout, level, seed, forecaster, plot)
        loaded = self._load()
        predict.require(loaded, "forecast")
        with _named(call):
            horizon, level = predict.forecast_settings(loaded, horizon, level)
        series, values, times, columns, source, exog = _report_series(loaded, csv, time_column, target, call)
        history, hist_times, out_times, truth = _hide_holdout(values, times, horizon, holdout, loaded, source)
        with _named(call):
            fc = predict.forecast(
                loaded,
                history,
                horizon,
                level,
                series=series,
                seed=seed,
                forecaster=forecaster,
                candidates=holdout,
                exog=exog,
            )
        col_times = _column_times(series, times, out_times, columns, horizon, holdout)
        result: dict[str, Any] = {
            "run": self._given,
            "source": source,
            "columns": columns,
            "horizon": horizon,
            "after": hist_times[-1] if hist_times else "start",
            "interval": level,
            "holdout": bool(holdout),
            "strategy": loaded.config.model.strategy,
            "forecaster": fc["forecaster"],
            "note": fc["note"],
            "pool": fc["pool"],
            "rows": _report_rows(fc, columns, col_times, truth, horizon),
        }
        if truth is not None:
            result["metrics"] = _holdout_metrics(values, history, truth, fc, horizon, loaded.config.data.season)
        if plot is not None:
            plot_forecast(
                hist_times,
                history,
                out_times,
                fc,
                truth,
                columns,
                plot,
                level,
                title=f"{Path(self._given).name}: {', '.join(columns)}",
            )
            result["plot"] = os.fspath(plot)
        return result

    # -- diagnosis ----------------------------------------------------------------------------------------
    def diagnose(self, target_loss: float | None = None, plot: PathLike | None = None) -> dict[str, Any]:
        """High bias, high variance or converged, read off the learning curves (``rnnkit diagnose RUN``): the
        verdict, the reasons, the figures, and a plot of training vs validation loss (default
        RUN/diagnosis.png). ``target_loss``: the training loss you need (above it: high bias)."""
        from rnnkit.diagnose.run import diagnose_run
        from rnnkit.figures import output_file

        call = "diagnose"
        arg.number(call, "target_loss", target_loss, none=True, ge=0)
        if plot is not None:
            output_file(arg.path(call, "plot", plot), "plot", call)
        return diagnose_run(self.path, plot, target_loss)

    def data_size_curve(
        self,
        fractions: Sequence[float],
        overrides: Mapping[str, Any] | None = None,
        plot: PathLike | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Train copies of this run on fractions of its training set (``rnnkit diagnose RUN --data-sizes``) and
        plot the final losses against data size: does more data help? Copies live in RUN/data-sizes/."""
        from rnnkit.diagnose.run import data_size_curve
        from rnnkit.figures import output_file

        call = "data_size_curve"
        if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or not fractions:
            raise UserTypeError("fractions", "must be a non-empty list of numbers in (0, 1]", call)
        for i, f in enumerate(fractions):
            arg.number(call, f"fractions[{i}]", f, gt=0, le=1)
        if overrides is not None and not isinstance(overrides, Mapping):
            raise UserTypeError(
                "overrides", f"must be a dict of 'section.key': value, got {type(overrides).__name__}", call
            )
        if plot is not None:
            output_file(arg.path(call, "plot", plot), "plot", call)
        arg.function(call, "echo", echo)
        return data_size_curve(
            self.path,
            sorted(set(fractions)),
            dict(overrides or {}),
            os.fspath(self.data_dir) if self.data_dir else None,
            plot,
            echo=echo,
        )

    # -- more training, export ------------------------------------------------------------------------
    def resume(
        self,
        max_steps: int | None = None,
        max_time: float | None = None,
        max_epochs: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callable[[dict[str, Any]], Any]] = (),
        progress: bool | None = None,
        device: str | None = None,
        data_dir: PathLike | None = None,
    ) -> Run:
        """Train this run on from its last checkpoint, exactly (bit for bit as if it had not stopped); returns
        this Run, updated. The budgets are totals across resumes (``max_steps``) or for this call (``max_time``);
        a budget the run has already reached trains nothing (see ``notes``). Arguments as for ``rnnkit.train``."""
        from rnnkit.api.training import train

        try:
            done = train(
                resume=self.path,
                max_steps=max_steps,
                max_time=max_time,
                max_epochs=max_epochs,
                overrides=overrides,
                callbacks=callbacks,
                progress=progress,
                device=device,
                data_dir=data_dir if data_dir is not None else self.data_dir,
            )
        except ArgumentError as e:
            if e.call == "train":  # the arguments are this call's
                e.call = "resume"
            raise
        self._summary, self.notes, self._loaded = done.summary, done.notes, None
        return self

    def export(self, format: str = "onnx", out: PathLike | None = None) -> dict[str, Any]:  # noqa: A002
        """Write the model as ONNX or TorchScript (``rnnkit export``), checked against PyTorch on fresh inputs;
        returns the report (files, metadata file, max abs difference per graph, ok). Default file:
        RUN/export/model.onnx (or .pt). ONNX needs the serve extra (onnx, onnxruntime)."""
        from rnnkit.export import export_run
        from rnnkit.runs import load_run

        arg.choice("export", "format", format, ("onnx", "torchscript"))
        arg.path("export", "out", out, none=True)
        loaded = load_run(self.path, self.checkpoint, "cpu", self.data_dir)
        return export_run(loaded, format, out)


def _check_history(call: str, history: Any) -> None:
    """A forecast's history: numbers (a list, an array, rows of numbers), a pandas Series or DataFrame, or None."""
    from rnnkit.data.memory import is_frame, is_series

    if history is None or is_series(history) or is_frame(history):
        return
    if isinstance(history, (str, bytes, Mapping)) or not hasattr(history, "__len__"):
        raise UserTypeError(
            "history",
            f"must be numbers (a list or array, or rows of numbers), a pandas Series or DataFrame, or None; "
            f"got {type(history).__name__}",
            call,
        )
    try:
        values = np.asarray(history, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserTypeError("history", "must hold numbers only (a list or array, or rows of numbers)", call) from None
    if values.ndim not in (1, 2) or values.size == 0:
        raise UserValueError("history", f"must be n values or n rows of values, got shape {values.shape}", call)
    if not np.isfinite(values).all():
        raise UserValueError("history", "holds a value that is not a finite number", call)


def _split_covariates(
    loaded: Any, values: np.ndarray, columns: list[str], exog: np.ndarray | None, future: Any, horizon: int
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """A run with covariates: the history's columns split into the forecast ones and the covariates (by name), and
    ``future``'s known-future covariates appended for the forecast steps -> (values, columns, exog or None)."""
    from rnnkit.data.memory import series_table

    task = loaded.task
    names = list(getattr(task, "exog_columns", []) or [])
    if not names:
        return values, columns, None
    if all(c in columns for c in names):
        exog = values[:, [columns.index(c) for c in names]]
        keep = [j for j, c in enumerate(columns) if c not in names]
        values, columns = values[:, keep], [columns[j] for j in keep]
    if future is not None and exog is not None:
        fut = names[task.past_count :]
        if isinstance(future, Mapping):
            fcols = [str(c) for c in future]
            fvals = np.column_stack([np.asarray(v, dtype=np.float64).ravel() for v in future.values()])
        else:
            fvals, _, fcols = series_table(future)
        missing = [c for c in fut if c not in fcols]
        if missing:
            raise UserError(f"future: no column {missing[0]!r} (the run's known-future covariates: {', '.join(fut)})")
        rows = np.full((fvals.shape[0], len(names)), np.nan)
        rows[:, task.past_count :] = fvals[:, [fcols.index(c) for c in fut]]
        exog = np.concatenate([exog[: values.shape[0]], rows[:horizon]], 0)
    return values, columns, exog


def _check_options(method: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """``predict``'s options are those of the method it calls (``method``), less the input it passes itself: one
    it does not take is a ``UserTypeError`` naming ``predict`` and the options there are."""
    import inspect

    params = list(inspect.signature(method).parameters.values())[1:]  # the first: the inputs predict passes
    shown = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]  # (the keyword-only: old names)
    known = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for name in options:
        if name not in known:
            raise UserTypeError(
                name, f"is not an option of {method.__name__} (it takes {', '.join(shown) or 'none'})", "predict"
            )


# -- forecast_report's steps ----------------------------------------------------------------------------------------
def _check_report_arguments(
    call: str,
    csv: Any,
    time_column: Any,
    target: Any,
    horizon: Any,
    holdout: Any,
    level: Any,
    seed: Any,
    forecaster: Any,
    plot: Any,
) -> None:
    """``forecast_report``'s arguments, checked before the run is loaded (a ``plot`` into a place that cannot take
    it is refused before any work)."""
    from rnnkit.figures import output_file

    arg.path(call, "csv", csv, none=True)
    arg.text(call, "time_column", time_column, none=True)
    if arg.text(call, "target", target, none=True) is not None and not [t for t in target.split(",") if t.strip()]:
        raise UserValueError("target", f"names no column ({target!r}); give column names, comma-separated", call)
    arg.integer(call, "horizon", horizon, none=True, ge=1, le=1_000_000)
    arg.flag(call, "holdout", holdout)
    arg.number(call, "level", level, none=True, gt=0, lt=1)
    arg.integer(call, "seed", seed, ge=0, le=MAX_SEED)
    arg.choice(call, "forecaster", forecaster, FORECASTERS, none=True)
    if plot is not None:
        output_file(arg.path(call, "plot", plot), "plot", call)


# the column keys forecast_report's caller chooses for its csv (the run's own choose the rest)
_REPORT_KEYS = {"data.value_columns": "target=...", "data.time_column": "time_column=..."}


def _report_series(
    loaded: Any, csv: PathLike | None, time_column: str | None, target: str | None, call: str
) -> tuple[Any, np.ndarray, list[str], list[str], str, np.ndarray | None]:
    """The series to forecast from: ``csv`` read as the run reads its data (its value columns put in the trained
    order), or the run's own series: (the series read or None, values, times, columns, source, covariates)."""
    from rnnkit import predict
    from rnnkit.data.timeseries import read_series_csv

    task = loaded.task
    d = loaded.config.data
    if csv is None:
        values, times, columns, source = predict.saved_history(loaded)
        saved = task.saved.get("history_exog")
        return None, values, times, columns, source, np.asarray(saved, dtype=np.float64) if saved else None
    path = Path(csv)
    if not is_file(path, "csv"):
        raise UserValueError("csv", f"file not found: {csv}", call)
    series = read_series_csv(
        path,
        time_column if time_column is not None else d.time_column,
        target if target is not None else d.value_columns,
        sort=d.sort,
        series_col=d.series_column,
        past=d.past_covariates,
        future=d.future_covariates,
        keys=_REPORT_KEYS,
    )
    trained = list(task.columns or [])
    if sorted(series.columns) == sorted(trained) and series.columns != trained:  # same names, other order
        order = [series.columns.index(c) for c in trained]
        series.values, series.columns = series.values[:, order], trained
    return series, series.values, series.times, series.columns, str(path), series.exog


def _hide_holdout(
    values: np.ndarray, times: list[str], horizon: int, holdout: bool, loaded: Any, source: str
) -> tuple[np.ndarray, list[str], list[str], np.ndarray | None]:
    """(history, its times, the forecast steps' times, the truth or None): with ``holdout`` the last ``horizon``
    points are hidden to be forecast and scored; without, the steps after the series are forecast."""
    from rnnkit.data.timeseries import future_times

    n = values.shape[0]
    if horizon >= n:
        raise UserError(
            f"{source}: horizon=... {horizon} is longer than the series ({n} points)"
            + ("; holdout=... needs history before the last horizon=... points" if holdout else "")
        )
    if not holdout:
        return values, times, future_times(times, horizon), None
    lookback = loaded.config.data.lookback
    if n - horizon < lookback:
        raise UserError(
            f"{source}: series too short for holdout=...: {n} points leave {n - horizon} before the last "
            f"{horizon}, the model needs data.lookback={lookback}; give a longer series or a shorter horizon=..."
        )
    return values[: n - horizon], times[: n - horizon], times[n - horizon :], values[n - horizon :]


def _column_times(
    series: Any, times: list[str], out_times: list[str], columns: list[str], horizon: int, holdout: bool
) -> list[list[str]]:
    """The forecast steps' times per column: a panel's series of different spans each have their own."""
    from rnnkit.data.timeseries import future_times

    own = getattr(series, "column_times", None)
    return [
        (t[len(t) - horizon :] if holdout else future_times(t, horizon)) if own else out_times
        for t in (own or [times] * len(columns))
    ]


def _report_rows(
    fc: Mapping[str, Any], columns: list[str], col_times: list[list[str]], truth: np.ndarray | None, horizon: int
) -> list[dict[str, Any]]:
    """One row per step and column: time, column, forecast, lower, upper (and the truth with a holdout)."""
    rows = []
    for i in range(horizon):
        for j, col in enumerate(columns):
            row: dict[str, Any] = {
                "time": col_times[j][i],
                "column": col,
                "forecast": float(fc["mean"][i, j]),
                "lower": float(fc["lower"][i, j]),
                "upper": float(fc["upper"][i, j]),
            }
            if truth is not None:
                row["truth"] = float(truth[i, j])
            rows.append(row)
    return rows


def _holdout_metrics(
    values: np.ndarray,
    history: np.ndarray,
    truth: np.ndarray,
    fc: Mapping[str, Any],
    horizon: int,
    season: int,
) -> dict[str, Any]:
    """The held-out forecast's errors, and the model's, the ensemble's and every baseline's on the same history."""
    from rnnkit.metrics.forecasting import baseline_forecasts, mase_scale, point_metrics

    origin = np.array([history.shape[0]])
    scale = mase_scale(history, season)
    y = truth[None]
    metrics: dict[str, Any] = dict(point_metrics(y, fc["mean"][None], scale))
    metrics["forecaster"] = fc["forecaster"]
    try:
        base = baseline_forecasts(values, origin, horizon, season)
    except ValueError:  # not a whole season of history before the holdout
        base = {k: v for k, v in baseline_forecasts(values, origin, horizon, 1).items() if k != "seasonal_naive"}
    others = fc.get("candidates") or {}
    base.update({k: v[None] for k, v in others.items() if k not in ("model", "ensemble", *base)})
    metrics["baselines"] = {k: point_metrics(y, f, scale) for k, f in base.items()}
    for k in ("model", "ensemble"):
        if k in others:
            metrics[k] = point_metrics(y, others[k][None], scale)
    return metrics
