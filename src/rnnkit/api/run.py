"""``rnnkit.Run``: one run directory as a Python object - what it is, how it trained, and what it answers.

A Run is a handle on files (``RUN/config.toml``, ``metrics.jsonl``, ``checkpoints/``), not a model held in memory:
``rnnkit.load(path)`` works on any run, finished or stopped, trained by the CLI, the API or the tuner, in this
process or another. The model is loaded on first use (``evaluate``, ``generate``, ...) and kept; ``resume``
trains on and drops it. Every prediction goes through ``rnnkit.predict``, the code the CLI verbs and the server
run, so inputs are checked and defaults chosen the same way everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import UserError

PathLike = str | os.PathLike[str]


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

        if checkpoint not in ("best", "last"):
            raise UserError(f"checkpoint: expected 'best' or 'last', got {checkpoint!r}")
        self.path = Path(path)
        self._given = os.fspath(path)
        self._dir = RunDir(self.path).require()
        self.checkpoint, self.device = checkpoint, device
        self.data_dir = Path(data_dir) if data_dir is not None else None
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
    def config(self) -> Any:
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
    def metrics(self) -> Any:
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
        """Whether the run's task offers ``service`` (generate, translate, chat, classify, forecast)."""
        from rnnkit import predict

        return predict.can(self._load(), service)

    def require(self, service: str) -> None:
        """Raise UserError, naming the run and its task, unless it offers ``service``."""
        from rnnkit import predict

        predict.require(self._load(), service)

    def describe(self) -> dict[str, Any]:
        """What a caller needs to know to form inputs: labels, input format, forecast columns and horizon..."""
        from rnnkit import predict

        return predict.describe(self._load())

    def format_metrics(self, metrics: Mapping[str, Any]) -> str:
        """One line of the task's headline figures, as the CLI prints them."""
        return str(self._load().task.format_metrics(dict(metrics)))

    def _load(self) -> Any:
        if self._loaded is None:
            from rnnkit.runs import load_run

            self._loaded = load_run(self.path, self.checkpoint, self.device, self.data_dir)
        return self._loaded

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, split: str | None = None) -> dict[str, Any]:
        """The model's metrics on a held-out split - the dict ``rnnkit eval RUN --split SPLIT --json`` prints.

        Args:
            split: "valid" or "test"; None evaluates every split the task has and returns {split: metrics}
                (``rnnkit eval RUN --json``).

        Evaluation reads the run's data again (the splits are a pure function of the data and the seed).
        """
        loaded = self._load()
        splits = list(loaded.task.splits())
        if split is None:
            return {s: loaded.task.evaluate(loaded.model, s) for s in splits}
        if split not in splits:
            raise UserError(f"split: expected one of {', '.join(splits)}, got {split!r}")
        return dict(loaded.task.evaluate(loaded.model, split))

    def report(self, split: str = "test") -> tuple[dict[str, Any], Path]:
        """A classifier's per-class report on ``split`` and its confusion matrix, drawn into
        ``RUN/confusion_SPLIT.png``: (metrics, png path)."""
        from rnnkit import predict

        task = predict.require(self._load(), "classify")
        metrics, png = task.write_report(self._load().model, split, self.path)
        return dict(metrics), Path(png)

    # -- predictions ----------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str = "",
        words: int = 50,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        max_input_length: int | None = None,
    ) -> str:
        """Continue ``prompt`` with a language model (``rnnkit generate``).

        Args:
            prompt: text to continue ("" starts a new sentence).
            words: how many words (tokens) to add.
            temperature: 0 picks the most likely word each step; below 1 sharper, above 1 more random.
            top_k: sample among the k most likely (0: all). top_p: nucleus sampling mass (1: off).
            seed: fixes the sampling, for reproducible text.
            max_input_length: longest prompt in characters (default: the server's 2000; None here = default).
        """
        from rnnkit import predict

        return predict.generate(
            self._load(),
            prompt,
            words,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            max_input_length=_limit(max_input_length),
        )

    def classify(self, inputs: Any, max_input_length: int | None = None) -> Any:
        """Label and probabilities for each input of a classifier (``rnnkit classify``).

        Args:
            inputs: a text, or a list of texts (text classifiers); for sequence classifiers one sequence as an
                array of shape (steps, channels), several as (n, steps, channels) or a list of (steps, channels)
                arrays (numbers written as text are taken too).
            max_input_length: longest input (characters, or values for sequences); default the server's.

        Returns: for one input a dict {"text", "label", "probability", "probabilities"}; for several, a list.
        """
        from rnnkit import predict

        loaded = self._load()
        predict.require(loaded, "classify")
        single, texts = self._as_inputs(inputs)
        out = predict.classify(loaded, texts, max_input_length=_limit(max_input_length))
        if not (
            isinstance(inputs, str)
            or (isinstance(inputs, Sequence) and inputs and all(isinstance(x, str) for x in inputs))
        ):
            out = [{k: v for k, v in r.items() if k != "text"} for r in out]  # arrays: no text to echo
        return out[0] if single else out

    def _as_inputs(self, inputs: Any) -> tuple[bool, list[str]]:
        """(one input?, the inputs as the text the CLI and server take)."""
        if isinstance(inputs, str):
            return True, [inputs]
        info = self.describe()
        if info.get("input") == "sequence" and not (
            isinstance(inputs, Sequence) and inputs and all(isinstance(x, str) for x in inputs)
        ):
            arr = np.asarray(inputs, dtype=np.float64) if not isinstance(inputs, np.ndarray) else inputs
            single = arr.ndim == 2 or (arr.ndim == 1 and info.get("channels") == 1)
            arr = arr[None] if single else arr
            if arr.ndim == 2:  # (n, steps) of one channel
                arr = arr[:, :, None]
            if arr.ndim != 3:
                raise UserError(
                    f"inputs: expected (steps, channels) or (n, steps, channels) arrays, got shape {np.shape(inputs)}"
                )
            first = info.get("layout") == "channels_first"
            texts = [" ".join(repr(float(v)) for v in (x.T if first else x).ravel()) for x in arr]
            return single, texts
        if isinstance(inputs, Sequence) and all(isinstance(x, str) for x in inputs):
            return False, list(inputs)
        raise UserError(f"inputs: expected a text or a list of texts, got {type(inputs).__name__}")

    def translate(
        self,
        texts: str | Sequence[str],
        beam: int | None = None,
        max_length: int | None = None,
        length_penalty: float | None = None,
        details: bool = False,
        max_input_length: int | None = None,
    ) -> Any:
        """Translate with a sequence-to-sequence run (``rnnkit translate``).

        Args:
            texts: a sentence or a list of sentences.
            beam: beam size (default: the run's model.beam; 1 = greedy).
            max_length: most output tokens (default: 2 x input + 10).
            length_penalty: GNMT length penalty alpha (default: the run's model.length_penalty).
            details: return dicts (translation, tokens, score, attention weights) instead of strings.

        Returns: a string for one sentence, a list for several (dicts with ``details``).
        """
        from rnnkit import predict

        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = predict.translate(
            self._load(),
            items,
            beam=beam,
            max_len=max_length,
            alpha=length_penalty,
            max_input_length=_limit(max_input_length),
        )
        result = out if details else [r["translation"] for r in out]
        return result[0] if single else result

    def plot_attention(self, result: Mapping[str, Any], path: PathLike) -> Path:
        """Draw one translation's attention weights (a ``translate(..., details=True)`` dict) into a PNG."""
        from rnnkit.api.plots import plot_attention

        if result.get("attention") is None:
            raise UserError("--show-attention: this run's model has no attention (model.attention = 'none')")
        return plot_attention(
            result["attention"],
            result["source_tokens"],
            result["target_tokens"],
            path,
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
        max_words: int | None = None,
        max_input_length: int | None = None,
    ) -> list[str]:
        """Candidate replies of a chatbot (a seq2seq run trained on dialogue; ``rnnkit chat``).

        Args:
            text: the message. history: the conversation before it, oldest first (used when the run reads
                earlier turns, data.context_turns).
            replies: how many candidates (default: the run's model.replies).
            decoding: "sample", "beam" or "greedy" (default: model.reply_decoding); top_k, temperature, beam:
                its settings (default: the run's). seed: fixes the sampling.
            max_words: longest reply in tokens.
        """
        from rnnkit import predict

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
            max_len=max_words,
            max_input_length=_limit(max_input_length),
        )

    def forecast(
        self,
        history: Any = None,
        horizon: int | None = None,
        level: float | None = None,
        seed: int = 0,
        forecaster: str | None = None,
        future: Any = None,
    ) -> Any:
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

        loaded = self._load()
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
        fc = predict.forecast(loaded, values, horizon, level, seed=seed, forecaster=forecaster, exog=exog)
        out_times: list[Any] = future_times(times, horizon)
        trained = list(self.describe().get("columns") or columns)
        names = trained
        if is_series(history) or is_frame(history):
            out_times = list(future_index(history.index, horizon, out_times))
            if is_frame(history):
                names = [str(c) for c in history.columns]
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
                the run's data.time_column / data.target).
            horizon, level, seed, forecaster: as for ``forecast``.
            holdout: hide the last ``horizon`` known points, forecast them and score the forecast.
            plot: draw history, forecast, interval (and truth) into this PNG.
        """
        from rnnkit import predict
        from rnnkit.api.plots import plot_forecast
        from rnnkit.data.timeseries import future_times, read_series_csv
        from rnnkit.metrics.forecasting import baseline_forecasts, mase_scale, point_metrics

        if plot is not None:
            from rnnkit.figures import output_file

            output_file(plot, "--plot")
        loaded = self._load()
        task = predict.require(loaded, "forecast")
        d = loaded.config.data
        horizon, level = predict.forecast_settings(loaded, horizon, level)
        series = None
        if csv is not None:
            path = Path(csv)
            if not path.is_file():
                raise UserError(f"--csv: file not found: {csv}")
            series = read_series_csv(
                path,
                time_column if time_column is not None else d.time_column,
                target if target is not None else d.target,
                sort=d.sort,
                series_col=d.series_column,
                past=d.past_covariates,
                future=d.future_covariates,
            )
            trained = list(task.columns or [])
            if sorted(series.columns) == sorted(trained) and series.columns != trained:  # same names, other order
                order = [series.columns.index(c) for c in trained]
                series.values, series.columns = series.values[:, order], trained
            values, times, columns, source = series.values, series.times, series.columns, str(path)
            exog = series.exog
        else:
            values, times, columns, source = predict.saved_history(loaded)
            saved = task.saved.get("history_exog")
            exog = np.asarray(saved, dtype=np.float64) if saved else None
        n = values.shape[0]
        if horizon >= n:
            raise UserError(
                f"{source}: --horizon {horizon} is longer than the series ({n} points)"
                + ("; --holdout needs history before the last --horizon points" if holdout else "")
            )
        truth = None
        if holdout:
            if n - horizon < d.lookback:
                raise UserError(
                    f"{source}: series too short for --holdout: {n} points leave {n - horizon} before "
                    f"the last {horizon}, the model needs data.lookback={d.lookback}; give a longer series or "
                    f"a shorter --horizon"
                )
            truth = values[n - horizon :]
            history, hist_times, out_times = values[: n - horizon], times[: n - horizon], times[n - horizon :]
        else:
            history, hist_times, out_times = values, times, future_times(times, horizon)
        own = getattr(series, "column_times", None)  # a panel's series of different spans: each its own times
        col_times = [
            (t[len(t) - horizon :] if holdout else future_times(t, horizon)) if own else out_times
            for t in (own or [times] * len(columns))
        ]
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
            "rows": rows,
        }
        if truth is not None:
            origin = np.array([history.shape[0]])
            scale = mase_scale(history, d.season)
            y = truth[None]
            metrics: dict[str, Any] = dict(point_metrics(y, fc["mean"][None], scale))
            metrics["forecaster"] = fc["forecaster"]
            try:
                base = baseline_forecasts(values, origin, horizon, d.season)
            except ValueError:  # not a whole season of history before the holdout
                base = {
                    k: v for k, v in baseline_forecasts(values, origin, horizon, 1).items() if k != "seasonal_naive"
                }
            others = fc.get("candidates") or {}
            base.update({k: v[None] for k, v in others.items() if k not in ("model", "ensemble", *base)})
            metrics["baselines"] = {k: point_metrics(y, f, scale) for k, f in base.items()}
            for k in ("model", "ensemble"):
                if k in others:
                    metrics[k] = point_metrics(y, others[k][None], scale)
            result["metrics"] = metrics
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
        self._summary, self.notes, self._loaded = done.summary, done.notes, None
        return self

    def export(self, format: str = "onnx", out: PathLike | None = None) -> dict[str, Any]:  # noqa: A002
        """Write the model as ONNX or TorchScript (``rnnkit export``), checked against PyTorch on fresh inputs;
        returns the report (files, metadata file, max abs difference per graph, ok). Default file:
        RUN/export/model.onnx (or .pt). ONNX needs the serve extra (onnx, onnxruntime)."""
        from rnnkit.export import export_run
        from rnnkit.runs import load_run

        loaded = load_run(self.path, self.checkpoint, "cpu", self.data_dir)
        return export_run(loaded, format, out)


def check_text(
    text: str, what: str = "text", service: str = "classify", limit: int | None = None, flag: str = "--max-input-length"
) -> None:
    """Refuse an empty or whitespace-only text, or one over ``limit`` characters (default: the server's), before
    any model is loaded - the check every prediction makes (``rnnkit.predict``)."""
    from rnnkit import predict

    predict.check_text(text, what, service, _limit(limit), flag)


def check_length(text: str, what: str = "text", limit: int | None = None, flag: str = "--max-input-length") -> None:
    """Refuse a text over ``limit`` characters (default: the server's)."""
    from rnnkit import predict

    predict.check_length(text, what, _limit(limit), flag)


def _limit(n: int | None) -> int:
    from rnnkit.predict import MAX_INPUT_LENGTH

    return MAX_INPUT_LENGTH if n is None else n


def json_ready(obj: Any) -> Any:
    """A result as plain JSON values (what the CLI's --json prints, read back)."""
    return json.loads(json.dumps(obj, default=str))


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
