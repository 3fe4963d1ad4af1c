"""Plans and runs the units of the requested experiments, then writes their tables.

Two ways to ask: a table (`--table 1`, optionally `--experiment 3,5`), reported as
`<out>/table1.csv` and companions; or one recipe (`--upstream X --downstream Y`), reported as
`<out>/<X>_<Y>.csv` with both the best and the top-k averaged checkpoint. Either way every unit is
trained once, resumed after an interruption, and skipped when finished.
"""
from __future__ import annotations

import contextlib
import functools
import json
import platform
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from upstream import get_spec

from .cluster.launch import SlurmOptions, check_slurm, launch
from .common.config import ConfigError
from .common.io import atomic_write_text, check_writable_dir
from .common.lock import run_lock
from .data import iemocap, splits
from .experiments.definitions import ExperimentConfig, Profile, load_profile, load_table, select
from .experiments.plan import RunSettings, Unit, plan, unit_for
from .experiments.stages import RunContext, checkpoint_file, execute
from .reporting.metrics import mean_and_std
from .reporting.results import CHECKPOINT_KINDS, UnitResult, load_result
from .reporting.sections import check_compare, comparison_text
from .reporting.tables import Row, write_table
from .training import distributed
from .training.batching import AudioStore
from .training.cache import data_fingerprint

DEFAULT_DATA_ROOT = Path("data")
DOWNSTREAMS: tuple[str, ...] = ("mean", "ecapa")
RECIPE_COLUMNS = ("upstream", "downstream", "stage", "checkpoint", "fold", "split", "split_hash", "n_train",
                  "n_valid", "n_test", "best_epoch", "wa", "ua", "macro_f1")


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for."""

    upstream: str = "fbank"
    downstream: str = "mean"
    table: int | None = None
    experiments: tuple[int, ...] = ()
    data: Path | None = None  # None: the demo corpus under DEFAULT_DATA_ROOT, generated when missing
    folds: tuple[int, ...] = splits.SESSIONS
    out: Path = Path("results")
    seed: int = 0
    split: str = "superb"
    strict: bool | None = None
    profile: str | Profile | None = None  # name, YAML path or Profile; None: "demo" without --data, else "paper"
    epochs: int | None = None
    upstream_ckpt: str | None = None
    trust_checkpoint: bool = False
    report_only: bool = False
    compare: tuple[int, ...] = ()  # experiments of the table whose pairwise matrix is printed
    threads: int | None = None  # torch CPU threads, set by the CLI here and by each cluster job for itself
    launcher: str = "local"  # "local": units run in this process (or torchrun's); "slurm": one job per unit
    slurm: SlurmOptions | None = None

def resolve_profile(request: RunRequest) -> Profile:
    if isinstance(request.profile, Profile):
        profile = request.profile
    else:
        profile = load_profile(request.profile or ("demo" if request.data is None else "paper"))
    if request.epochs is not None:
        profile = replace(profile, finetune=replace(profile.finetune, epochs=request.epochs),
                          frozen=replace(profile.frozen, epochs=request.epochs))
    return profile


def recipe_experiment(request: RunRequest, profile: Profile, trainable: bool) -> ExperimentConfig:
    """The one-row experiment behind `--upstream X --downstream Y`."""
    name = profile.resolve(request.upstream)
    return ExperimentConfig(id=0, description=f"{name} → {request.downstream} + linear", branches=(request.upstream,),
                            finetune=(trainable,), aggregator=request.downstream,  # type: ignore[arg-type]
                            input_norm=get_spec(name).backend == "fbank")


def _is_trainable(name: str, request: RunRequest) -> bool:
    from upstream import build_upstream

    upstream = build_upstream(name, ckpt=request.upstream_ckpt, trust_checkpoint=request.trust_checkpoint or None)
    return any(p.requires_grad for p in upstream.parameters())


def corpus_dir(request: RunRequest) -> Path:
    if request.data is not None:
        return request.data
    from .data.demo import ensure_demo_corpus

    return ensure_demo_corpus(DEFAULT_DATA_ROOT)


def _experiments(request: RunRequest, profile: Profile) -> tuple[str, list[ExperimentConfig]]:
    if request.table is not None or request.experiments or request.compare:
        if request.upstream_ckpt:
            raise ConfigError("--upstream-ckpt applies to one upstream: use it with --upstream, not with a table")
        experiments = load_table(request.table or 1)
        experiments = select(experiments, request.experiments) if request.experiments else experiments
        check_compare(request.compare, [e.id for e in experiments])
        return f"table{request.table or 1}", experiments
    name = profile.resolve(request.upstream)
    get_spec(name)  # unknown names fail before any data is read
    if request.downstream not in DOWNSTREAMS:
        raise ValueError(f"--downstream: unknown downstream {request.downstream!r}; expected one of {', '.join(DOWNSTREAMS)}")
    return "", [recipe_experiment(request, profile, _is_trainable(name, request))]


def recipe_csv(experiment: ExperimentConfig, upstream: str, results: list[UnitResult]) -> str:
    stage = "finetune" if experiment.is_finetune_row else "frozen"
    lines = [",".join(RECIPE_COLUMNS)]
    for kind in CHECKPOINT_KINDS:
        for r in results:
            s = r.scores[kind]
            lines.append(",".join(str(v) for v in (
                upstream, experiment.aggregator, stage, kind, r.fold, r.split, r.split_hash, r.n_train, r.n_valid,
                r.n_test, r.best_epoch, f"{s.wa:.2f}", f"{s.ua:.2f}", f"{s.macro_f1:.2f}")))
    for kind in CHECKPOINT_KINDS:
        stats = [mean_and_std([getattr(r.scores[kind], m) for r in results]) for m in ("wa", "ua", "macro_f1")]
        for name, index in (("mean", 0), ("std", 1)):
            lines.append(",".join([upstream, experiment.aggregator, stage, kind, name, *[""] * 6,
                                   *(f"{stat[index]:.2f}" for stat in stats)]))
    return "\n".join(lines) + "\n"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(request: RunRequest, profile: Profile, experiments: list[ExperimentConfig],
               units: list, data_hash: str) -> dict:
    import numpy
    import speechbrain
    import transformers

    return {
        "request": json.loads(json.dumps(asdict(request), default=str)),
        "profile": asdict(profile),
        "experiments": [asdict(e) for e in experiments],
        "units": {str(unit.directory(request.out).relative_to(request.out)): unit.key for unit in units},
        "data_fingerprint": data_hash,
        "git_commit": _git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
                     "transformers": transformers.__version__, "speechbrain": speechbrain.__version__},
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})",
        "data_parallel_processes": distributed.world().size,
        "torch_threads": torch.get_num_threads(),
    }


@dataclass(frozen=True)
class Planned:
    """A request resolved into its profile, experiments and units."""

    profile: Profile
    table_name: str
    experiments: list[ExperimentConfig]
    settings: RunSettings
    units: list[Unit]


def resolve(request: RunRequest) -> Planned:
    profile = resolve_profile(request)
    table_name, experiments = _experiments(request, profile)
    settings = RunSettings(profile, request.seed, request.split, request.upstream_ckpt)
    return Planned(profile, table_name, experiments, settings, plan(experiments, request.folds, settings))


def prepare(request: RunRequest, profile: Profile, folds: tuple[int, ...]) -> tuple[str, RunContext]:
    """Read and check the corpus and every audio file the folds use; the data fingerprint and run context."""
    utterances = iemocap.load(corpus_dir(request), strict=request.strict)
    split_folds = {f.index: f for f in splits.folds(utterances, request.split, folds)}  # type: ignore[arg-type]
    store = preload_audio([u for fold in split_folds.values() for u in (*fold.train, *fold.valid, *fold.test)])
    context = RunContext(request.out, profile, split_folds, store, request.upstream_ckpt, request.trust_checkpoint)
    return data_fingerprint(utterances), context


def run(request: RunRequest) -> Path | None:
    """Run (or, with `report_only`, only report) the request; returns the main CSV written (None on the
    ranks other than 0 of a torchrun job, and when SLURM jobs were submitted without waiting)."""
    _apply_threads(request)
    planned = resolve(request)
    check_writable_dir(request.out)
    slurm = request.slurm or SlurmOptions()
    if request.launcher == "slurm" and not request.report_only:
        if distributed.world().parallel:
            raise ConfigError("--launcher slurm submits jobs: run it as one process, not under torchrun")
        check_slurm(slurm)
    data_hash, context = "(report only)", None
    if not request.report_only:
        data_hash, context = prepare(request, planned.profile, request.folds)
    # Everything above only reads: bad input fails before the output folder is touched.
    if request.launcher == "slurm" and context is not None:
        job_request = replace(request, launcher="local")
        if not launch(request.out, planned.units, slurm, functools.partial(run_planned_unit, job_request),
                      functools.partial(run, replace(job_request, report_only=True))):
            return None
        context = None  # every unit has finished in its own job: only the report is left
    main = distributed.world().is_main
    with run_lock(request.out) if main else contextlib.nullcontext():
        if context is not None:
            print(f"plan: {len(planned.units)} unit(s) for {len(planned.experiments)} experiment(s) × "
                  f"{len(request.folds)} fold(s), profile {planned.profile.name}")
            for number, unit in enumerate(planned.units, 1):
                print(f"[{number}/{len(planned.units)}] {unit.directory(request.out).relative_to(request.out)}")
                execute(unit, context)
        if not main:
            return None
        return _report(request, planned.profile, planned.table_name, planned.experiments, planned.settings,
                       planned.units, data_hash)


def _apply_threads(request: RunRequest) -> None:
    if request.threads is not None:
        torch.set_num_threads(request.threads)


def run_planned_unit(request: RunRequest, key: str, fold: int) -> UnitResult:
    """Run one unit of the request's plan (what a cluster job does), under that unit's own lock."""
    _apply_threads(request)
    planned = resolve(request)
    unit = next((u for u in planned.units if (u.key, u.fold) == (key, fold)), None)
    if unit is None:
        raise ConfigError(f"no unit {key} on fold {fold} in the plan of this request (profile or code changed?)")
    _, context = prepare(request, planned.profile, (unit.fold,))
    unit_dir = unit.directory(request.out)
    with run_lock(unit_dir) if distributed.world().is_main else contextlib.nullcontext():
        return execute(unit, context)


def preload_audio(utterances: list) -> AudioStore:
    """Read (and so check) every utterance's audio once, before any training starts."""
    store = AudioStore()
    for utterance in tqdm(utterances, desc="reading audio", leave=False, disable=None):
        store.get(utterance)
    return store


def _report(request: RunRequest, profile: Profile, table_name: str, experiments: list[ExperimentConfig],
            settings: RunSettings, units: list, data_hash: str) -> Path:
    rows = []
    for experiment in experiments:
        results = {}
        for fold in request.folds:
            unit = unit_for(experiment, fold, settings)
            result = load_result(unit.directory(request.out))
            if result is None:
                raise FileNotFoundError(f"{unit.directory(request.out)}: no finished result for experiment "
                                        f"{experiment.id} fold {fold}; run without --report-only first")
            results[fold] = result
        checkpoints = {k: checkpoint_file(unit_for(experiment, k, settings).directory(request.out), result,
                                          experiment.checkpoint) for k, result in results.items()}
        rows.append(Row(experiment, results, checkpoints))
    if not table_name:
        upstream = profile.resolve(request.upstream)
        stem = f"{upstream.replace(':', '_')}_{request.downstream}"
        path = request.out / f"{stem}.csv"
        atomic_write_text(request.out / f"{stem}.json", json.dumps(
            provenance(request, profile, experiments, units, data_hash) | {"folds": [asdict(r) for r in rows[0].folds.values()]},
            indent=1, default=str) + "\n")
        atomic_write_text(path, recipe_csv(experiments[0], upstream, list(rows[0].folds.values())))
        for kind in CHECKPOINT_KINDS:
            wa, ua = (mean_and_std([getattr(r.scores[kind], m) for r in rows[0].folds.values()])[0] for m in ("wa", "ua"))
            print(f"{stem} [{kind}]: mean over {len(rows[0].folds)} fold(s): WA {wa:.2f}  UA {ua:.2f}")
    else:
        path = write_table(request.out, table_name, rows, provenance(request, profile, experiments, units, data_hash))
        for row in rows:
            wa = mean_and_std([row.scores(k).wa for k in row.folds])[0]
            ua = mean_and_std([row.scores(k).ua for k in row.folds])[0]
            print(f"exp {row.experiment.id:2d}: WA {wa:6.2f}  UA {ua:6.2f}  {row.experiment.description}")
        if request.compare:
            print(comparison_text([next(r for r in rows if r.experiment.id == i) for i in request.compare]))
    print(f"→ {path}")
    return path
