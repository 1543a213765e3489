"""Hyperparameter search on Optuna: every trial is an ordinary run directory trained by the ordinary Trainer.

The study lives in an RDB storage: by default ``OUT/study.db`` (SQLite), so a killed search continues where it
stopped when the same command runs again; a PostgreSQL URL lets worker processes on several machines share one
study (Optuna hands out the trial numbers, so no two workers ever run the same trial). Trials write into
``OUT/trials/NNNN/`` (NNNN = the study's trial number), each a run directory that ``rnnkit eval``, ``generate``
and ``diagnose`` read like any other.

A worker that dies mid-trial (kill -9, a lost machine) leaves its trial RUNNING. The next worker on the same host
sees that the process is gone and marks the trial failed at once; on other hosts Optuna's heartbeat does the same
after a grace period. Either way the trial's parameters are queued again, so the search loses no configuration,
and no finished trial is ever touched.

``--trials N`` is the size of the study, not of one invocation: a study holds N trials when done, counting the
finished (complete, pruned, failed) and those other workers are running, but not a trial cut short by a kill or
Ctrl-C whose configuration was queued again (``cut_trials``; its rerun counts instead). So the same command after
a kill runs only the missing trials, the cut one first, and once the study is complete it runs none. Workers
sharing a study stop together at N: a trial that another worker's trial made one too many (both started at the
same moment) gives its slot back at once, before training (state FAIL, user attribute ``surplus``, counted
nowhere).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import TrainingDiverged, UserError
from rnnkit.train.rundir import pid_alive
from rnnkit.tune.space import SearchSpace, check_space, load_space, parse_space

SAMPLERS = ("grid", "random", "tpe", "gp")
PRUNERS = ("none", "median", "halving", "hyperband")
HEARTBEAT_S = 30  # a trial's worker writes a heartbeat this often ...
GRACE_S = 120  # ... and a trial silent for this long is declared dead (workers on other hosts)


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - optuna is a dependency
        raise UserError("hyperparameter search needs optuna: pip install 'optuna>=3.6'") from None
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def storage_url(out: Path, storage: str | None) -> str:
    """``--storage`` as given (a database URL), or the SQLite file ``OUT/study.db``."""
    if storage:
        if "://" not in storage:
            raise UserError(
                f"storage=...: expected a database URL such as postgresql://user@host/db or "
                f"sqlite:///path/study.db, got {storage!r}"
            )
        return storage
    return f"sqlite:///{(out / 'study.db').resolve()}"


def _driver_url(url: str) -> str:
    """``postgresql://`` (or ``postgres://``) with the driver that is installed: SQLAlchemy 2.1 defaults to psycopg 3,
    older versions to psycopg2, and the ``tune`` extra installs psycopg2-binary."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg2") is not None:
            return f"postgresql+psycopg2{sep}{rest}"
        if importlib.util.find_spec("psycopg") is not None:
            return f"postgresql+psycopg{sep}{rest}"
        return f"postgresql{sep}{rest}"
    return url


def open_storage(url: str) -> Any:
    """An RDB storage with heartbeats; dead workers' trials are failed and queued again."""
    import inspect

    optuna = import_optuna()
    from optuna.storages import RDBStorage

    if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage.__init__).parameters:  # optuna >= 4.9
        retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
    else:
        retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
    url = _driver_url(url)
    if url.startswith("sqlite"):
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    last: Exception | None = None
    for attempt in range(5):  # workers starting together may race to create the tables
        try:
            return RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, **retry
            )
        except ImportError as e:
            raise UserError(
                f"storage=... {_safe_url(url)}: the database driver is not installed ({e}); for PostgreSQL "
                f"install the extra: pip install 'rnnkit[tune]' (psycopg2-binary)"
            ) from None
        except optuna.exceptions.StorageInternalError as e:
            last = e
        except Exception as e:  # sqlalchemy errors: bad URL, server down, authentication
            if type(e).__module__.startswith("sqlalchemy"):
                last = e
                if "ArgumentError" in type(e).__name__ or "NoSuchModule" in type(e).__name__:
                    break
            else:
                raise
        time.sleep(0.5 + attempt)
    first = str(getattr(last, "orig", None) or last).strip().splitlines()
    raise UserError(f"storage=... {_safe_url(url)}: cannot open the study database: {first[0] if first else last}")


def _safe_url(url: str) -> str:
    """A URL with any password masked, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            cred = cred.split(":", 1)[0] + ":***"
        return f"{scheme}://{cred}@{host}"
    return url


def recover_dead_trials(study: Any) -> list[int]:
    """Fail the RUNNING trials whose worker was a process on this host that no longer exists; queue them again.

    Returns the numbers of the trials failed. Trials of live workers, and of other hosts, are left alone (the
    heartbeat covers those).
    """
    optuna = import_optuna()
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        w_host, _, w_pid = worker.rpartition(":")
        if w_host != host or not w_pid.isdigit() or pid_alive(int(w_pid)) or int(w_pid) == os.getpid():
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        except (ValueError, RuntimeError, getattr(optuna.exceptions, "UpdateFinishedTrialError", RuntimeError)):
            continue
        failed.append(t.number)
        if t.params and "retry_of" not in t.user_attrs:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
    return failed


def cut_trials(trials: list[Any]) -> dict[int, int]:
    """Failed trials whose configuration was queued to run again (cut by a kill or Ctrl-C): {number: rerun's}."""
    from optuna.trial import TrialState

    failed = {t.number for t in trials if t.state == TrialState.FAIL}
    out: dict[int, int] = {}
    for t in trials:
        # ours (recover_dead_trials, Ctrl-C), and Optuna's heartbeat retry on other hosts
        for n in (t.user_attrs.get("retry_of"), t.system_attrs.get("failed_trial")):
            if isinstance(n, int) and n in failed:
                out.setdefault(n, t.number)
    return out


def counted_trials(study: Any) -> int:
    """How many trials count toward ``--trials``: all but those cut and queued again, surplus ones, and those
    still queued."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    cut = cut_trials(trials)
    return sum(
        1 for t in trials if t.state != TrialState.WAITING and t.number not in cut and not t.user_attrs.get("surplus")
    )


def _surplus(study: Any, number: int, total: int) -> bool:
    """Whether trial ``number`` would exceed the study's ``total``: ``total`` trials with smaller numbers (queued
    ones included: they will run) already hold the slots. Trial numbers come from the storage, so every worker
    agrees which trials are the first ``total``."""
    trials = study.get_trials(deepcopy=False)
    cut = cut_trials(trials)
    before = sum(1 for t in trials if t.number < number and t.number not in cut and not t.user_attrs.get("surplus"))
    return before >= total


def make_sampler(name: str, space: SearchSpace, seed: int | None, startup: int | None) -> Any:
    optuna = import_optuna()
    s = optuna.samplers
    if name == "grid":
        return s.GridSampler(space.grid(), seed=seed)
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "tpe":
        return s.TPESampler(
            seed=seed,
            multivariate=True,
            constant_liar=True,  # liar: parallel workers spread out
            n_startup_trials=10 if startup is None else startup,
        )
    if name == "gp":
        return s.GPSampler(seed=seed, n_startup_trials=10 if startup is None else startup)
    raise UserError(f"sampler=...: expected one of {', '.join(SAMPLERS)}, got {name!r}")


def make_pruner(name: str, startup: int | None, warmup: int | None, max_steps: int) -> Any:
    optuna = import_optuna()
    p = optuna.pruners
    if name == "none":
        return p.NopPruner()
    if name == "median":
        return p.MedianPruner(n_startup_trials=5 if startup is None else startup, n_warmup_steps=warmup or 0)
    if name == "halving":
        return p.SuccessiveHalvingPruner(min_resource=warmup or "auto")
    if name == "hyperband":
        return p.HyperbandPruner(min_resource=warmup or 1, max_resource=max_steps or "auto")
    raise UserError(f"pruner=...: expected one of {', '.join(PRUNERS)}, got {name!r}")


@dataclass
class TuneOptions:
    recipe: str
    space: str | Path | dict[str, Any] | SearchSpace  # a TOML file, or its tables as a dict
    trials: int  # the study's total (see the module docstring)
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    study: str | None = None
    out: str | None = None
    timeout: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # --set, --max-steps, --max-time, --device
    data_dir: str | None = None  # None: rnnkit's data cache (rnnkit.datasets)
    seed: int | None = None  # the sampler's
    baseline: bool = False  # run the recipe's own values of the searched fields as a trial first
    resume: bool = False  # require an existing study
    total_trials: int | None = None  # stop when the study holds this many complete + pruned trials
    startup_trials: int | None = None
    pruner_startup: int | None = None
    pruner_warmup: int | None = None
    echo: Callable[[str], None] | None = None


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_study(opts: TuneOptions) -> dict[str, Any]:
    """Create or continue a study and run the trials it lacks to hold ``opts.trials``. Returns a summary.

    The steps: the search is planned and checked before anything is written (``plan_search``), the study opened or
    continued in its storage (``open_study``), the number of trials this call runs decided (``trials_to_run``),
    and the trials run, each an ordinary run directory (``Objective``)."""
    optuna = import_optuna()
    from optuna.trial import TrialState

    echo = opts.echo or (lambda line: None)
    plan = plan_search(opts)
    study, continued = open_study(optuna, plan, opts, echo)
    n_trials = trials_to_run(study, plan, opts, continued, echo)
    objective = Objective(study, plan, opts, echo)

    def enough(study: Any, trial: Any) -> None:  # other workers on the same study: stop at the total together
        if counted_trials(study) >= opts.trials:
            study.stop()

    callbacks = [enough]
    if opts.total_trials is not None:
        callbacks.append(
            optuna.study.MaxTrialsCallback(opts.total_trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
        )
    t_start = time.perf_counter()
    if n_trials > 0:
        study.optimize(objective, n_trials=n_trials, timeout=opts.timeout, callbacks=callbacks, catch=())
    if objective.errors and not objective.done_here and n_trials > 0:
        raise UserError(f"every trial of this run failed; the last error: {objective.errors[-1]}")
    summary = study_summary(study)
    summary.update(
        {
            "study": plan.study_name,
            "storage": _safe_url(plan.url),
            "out": str(plan.out),
            "trials_this_run": n_trials,
            "wall_s": round(time.perf_counter() - t_start, 2),
        }
    )
    return summary


@dataclass
class SearchPlan:
    """A search, resolved and checked: what is searched, on which configuration, into which study."""

    space: SearchSpace
    overrides: dict[str, Any]  # fixed in every trial
    base: Any  # the recipe's RunConfig with the overrides (rnnkit.config.RunConfig)
    metric: str
    direction: str  # "maximize" | "minimize"
    out: Path
    study_name: str
    url: str  # the storage


def plan_search(opts: TuneOptions) -> SearchPlan:
    """The search ``opts`` asks for, every value checked against the recipe before anything is written."""
    from rnnkit.tasks import get_task

    if opts.trials < 0:
        raise UserError(f"trials=... must be >= 0, got {opts.trials}")
    if opts.sampler not in SAMPLERS:
        raise UserError(f"sampler=...: expected one of {', '.join(SAMPLERS)}, got {opts.sampler!r}")
    if opts.pruner not in PRUNERS:
        raise UserError(f"pruner=...: expected one of {', '.join(PRUNERS)}, got {opts.pruner!r}")
    space = (
        opts.space
        if isinstance(opts.space, SearchSpace)
        else (parse_space(dict(opts.space), "space") if isinstance(opts.space, dict) else load_space(opts.space))
    )
    overrides = dict(opts.overrides)
    searched = set(space.names())
    if "train.eval_test" not in searched:
        overrides.setdefault("train.eval_test", False)  # the search never looks at test; eval the best run later
    base = check_space(space, opts.recipe, overrides)
    if (
        opts.pruner != "none"
        and "train.eval_every" not in overrides
        and "train.eval_every" not in searched
        and base.train.eval_every == 0
        and base.train.max_steps > 0
    ):
        # short trials validate a few times, so the pruner has intermediate values to compare
        overrides["train.eval_every"] = max(1, base.train.max_steps // 4)
    if opts.sampler == "grid":
        space.grid()  # a float range without a step cannot be gridded: say so before anything runs
    task_cls = get_task(base.task)
    out = Path(opts.out) if opts.out else Path("runs") / f"tune-{base.recipe}"
    return SearchPlan(
        space=space,
        overrides=overrides,
        base=base,
        metric=task_cls.metric,
        direction="maximize" if task_cls.higher_is_better else "minimize",
        out=out,
        study_name=opts.study or base.recipe,
        url=storage_url(out, opts.storage),
    )


def open_study(optuna: Any, plan: SearchPlan, opts: TuneOptions, echo: Callable[[str], None]) -> tuple[Any, bool]:
    """(the study, whether it existed): created, or continued when it searches the same recipe the same way; the
    trials of dead workers failed and queued again; its sampler chosen (after that: failing a trial informs it)."""
    if plan.url.startswith("sqlite") and opts.resume and not (plan.out / "study.db").is_file():
        raise UserError(f"resume=...: no study to continue in {plan.out} (no study.db)")
    plan.out.mkdir(parents=True, exist_ok=True)
    storage = open_storage(plan.url)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    name = plan.study_name
    if opts.resume and name not in existing:
        raise UserError(
            f"resume=...: the storage holds no study named {name!r}"
            + (f" (it has: {', '.join(sorted(existing))})" if existing else "")
        )
    if name in existing:
        prev = existing[name]
        old_recipe = prev.user_attrs.get("recipe")
        if old_recipe and old_recipe != plan.base.recipe:
            raise UserError(
                f"study {name!r} searches recipe {old_recipe!r}, not {plan.base.recipe!r}; use another out=... or "
                f"study=..."
            )
        if prev.direction.name.lower() != plan.direction:
            raise UserError(
                f"study {name!r} {prev.direction.name.lower()}s, but {plan.metric} of task "
                f"{plan.base.task} must be {plan.direction}d"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=plan.direction,
        load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(),
        pruner=make_pruner(opts.pruner, opts.pruner_startup, opts.pruner_warmup, plan.base.train.max_steps),
    )
    if "recipe" not in study.user_attrs:
        for k, v in (
            ("recipe", plan.base.recipe),
            ("task", plan.base.task),
            ("metric", plan.metric),
            ("space", plan.space.to_dict()),
            ("overrides", dict(plan.overrides)),
        ):
            study.set_user_attr(k, v)
    elif study.user_attrs.get("space") != plan.space.to_dict():
        echo(f"note: the search space differs from the one study {name!r} started with")
    dead = recover_dead_trials(study)
    if dead:
        echo(f"trial(s) {', '.join(map(str, dead))} of a worker that died were marked failed and queued again")
    n_before = len(study.get_trials(deepcopy=False))
    seed = None if opts.seed is None else opts.seed + n_before  # a continued study must not replay its samples
    study.sampler = make_sampler(opts.sampler, plan.space, seed, opts.startup_trials)
    return study, name in existing


def trials_to_run(study: Any, plan: SearchPlan, opts: TuneOptions, continued: bool, echo: Callable[[str], None]) -> int:
    """How many trials this call runs: what the study lacks of ``opts.trials`` (see the module docstring), no more
    than a grid has left, no more than ``total_trials`` allows; the baseline trial queued first when asked."""
    from optuna.trial import TrialState

    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    counted = counted_trials(study)
    n_trials = max(0, opts.trials - counted)
    if continued:
        echo(
            f"continuing study {plan.study_name!r}: {counted} of {opts.trials} trial(s) done or running"
            + (f", {n_trials} to run" if n_trials else "; nothing to run (raise trials=... to search further)")
        )
    if opts.baseline and not any(t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(plan.space.baseline(plan.base), user_attrs={"baseline": True})
    if opts.sampler == "grid":
        try:
            left = len(study.sampler._get_unvisited_grid_ids(study))
        except Exception:  # pragma: no cover - private API moved
            left = n_trials
        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        if left + waiting < n_trials:
            echo(f"the grid has {left} point(s) left to try (of {plan.space.grid_size()})")
            n_trials = left + waiting
    if opts.total_trials is not None:
        n_trials = min(n_trials, max(0, opts.total_trials - len(finished)))
    return n_trials


class Objective:
    """One trial: its parameters sampled, its run directory (``OUT/trials/NNNN``) trained, its validation metric
    returned. A configuration that cannot train fails its trial and the study goes on; Ctrl-C queues the trial's
    configuration again and stops."""

    def __init__(self, study: Any, plan: SearchPlan, opts: TuneOptions, echo: Callable[[str], None]) -> None:
        from rnnkit.datasets import data_dir_option

        self.study, self.plan, self.opts, self.echo = study, plan, opts, echo
        self.data_dir = data_dir_option(opts.data_dir)
        self.trials_dir = plan.out / "trials"
        self.errors: list[str] = []  # the messages of trials that failed
        self.done_here: list[int] = []  # the trials this call completed

    def __call__(self, trial: Any) -> float:
        optuna = import_optuna()
        study, plan, echo = self.study, self.plan, self.echo
        if _surplus(study, trial.number, self.opts.trials):  # another worker took the last slot at the same moment
            trial.set_user_attr("surplus", True)
            study.stop()
            return float("nan")
        params = plan.space.suggest(trial)
        run_path = self.trials_dir / f"{trial.number:04d}"
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("run_dir", str(run_path.resolve()))
        t0 = time.perf_counter()
        try:
            value, info = _train_trial(
                trial,
                self.opts.recipe,
                {**plan.overrides, **params},
                run_path,
                self.data_dir,
                plan.metric,
                plan.study_name,
            )
        except optuna.TrialPruned as e:
            echo(f"trial {trial.number:4d}  {_params(params)}  pruned {e}  ({time.perf_counter() - t0:.0f} s)")
            raise
        except KeyboardInterrupt:  # Ctrl-C: this trial fails; its configuration runs again when the study goes on
            if "retry_of" not in trial.user_attrs:
                study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
            echo(f"trial {trial.number:4d}  interrupted; run the same command again to continue the study")
            raise
        except UserError as e:  # a configuration this search proposed cannot train: the trial fails, the study goes on
            msg = str(e)
            self.errors.append(msg)
            trial.set_user_attr("error", msg)
            echo(f"trial {trial.number:4d}  {_params(params)}  failed: {msg}")
            return float("nan")
        for k, v in info.items():
            trial.set_user_attr(k, v)
        self.done_here.append(trial.number)
        echo(
            f"trial {trial.number:4d}  {_params(params)}  {plan.metric} {_fmt(value)}  "
            f"({info.get('stopped')}, step {info.get('step')}, {time.perf_counter() - t0:.0f} s)  "
            f"{self._best(trial.number, value)}".rstrip()
        )
        return value

    def _best(self, number: int, value: float) -> str:
        try:
            prior = self.study.best_trial
            best_n, best_v = (
                (number, value) if _improves(value, prior.value, self.plan.direction) else (prior.number, prior.value)
            )
        except ValueError:  # the first complete trial
            best_n, best_v = number, value
        return f"best {_fmt(best_v)} (trial {best_n})"


def _improves(value: float, best: float, direction: str) -> bool:
    return value > best if direction == "maximize" else value < best


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _train_trial(
    trial: Any,
    recipe: str,
    overrides: dict[str, Any],
    run_path: Path,
    data_dir: Path | None,
    metric: str,
    study_name: str,
) -> tuple[float, dict[str, Any]]:
    """One trial = one ordinary training run (the run set-up ``rnnkit train`` uses), reporting each validation
    to the trial through a callback; the pruner's verdict (optuna.TrialPruned) ends the run."""
    import optuna

    from rnnkit.runs.setup import TrainRequest, train_run

    if run_path.exists():  # left by an earlier study with this number (a deleted study.db): this trial owns it now
        shutil.rmtree(run_path)
    reported: set[int] = set()

    def report(record: dict[str, Any]) -> None:
        value, step = record.get(metric), record.get("step")
        if (
            record.get("split") != "valid"
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or step in reported
        ):
            return
        reported.add(step)
        trial.report(float(value), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"at step {step} ({metric} {value:.4g})")

    request = TrainRequest(
        recipe=recipe,
        out=run_path,
        data_dir=data_dir,
        overrides=overrides,
        callbacks=[report],
        progress=False,
        meta={"tune": {"study": study_name, "trial": trial.number, "params": dict(trial.params)}},
    )
    try:
        result = train_run(request)
    except TrainingDiverged as e:
        raise UserError(str(e).split(";")[0]) from None
    summary = result.summary
    if summary["stopped"] == "interrupted":
        raise KeyboardInterrupt
    best = result.best
    if best is None or not math.isfinite(best):
        raise UserError(f"no finite validation {metric}")
    info = {"stopped": summary["stopped"], "step": summary["step"], "wall_s": summary["wall_s"]}
    return float(best), info


def study_summary(study: Any) -> dict[str, Any]:
    """The figures ``rnnkit tune report --json`` prints: best value/params and trial counts by state.

    A trial cut by a kill or Ctrl-C and queued again is ``n_retried``, not ``n_failed``: its configuration did not
    fail, and its rerun is counted in its own state. ``n_trials + n_pruned + n_failed + n_running`` is what counts
    toward ``--trials``; ``n_total`` is every trial number the study has handed out.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    by = {s: [t for t in trials if t.state == s] for s in TrialState}
    cut = cut_trials(trials)
    surplus = sum(1 for t in by[TrialState.FAIL] if t.user_attrs.get("surplus"))
    out: dict[str, Any] = {
        "best_value": None,
        "best_params": {},
        "best_trial": None,
        "best_run": None,
        "n_trials": len(by[TrialState.COMPLETE]),
        "n_pruned": len(by[TrialState.PRUNED]),
        "n_failed": len(by[TrialState.FAIL]) - len(cut) - surplus,
        "n_retried": len(cut),
        "n_running": len(by[TrialState.RUNNING]),
        "n_waiting": len(by[TrialState.WAITING]),
        "n_total": len(trials),
        "direction": study.direction.name.lower(),
        "metric": study.user_attrs.get("metric"),
        "recipe": study.user_attrs.get("recipe"),
    }
    if by[TrialState.COMPLETE]:
        best = study.best_trial
        out.update(
            {
                "best_value": best.value,
                "best_params": dict(best.params),
                "best_trial": best.number,
                "best_run": best.user_attrs.get("run_dir"),
            }
        )
    return out
