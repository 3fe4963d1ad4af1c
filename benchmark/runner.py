"""Plans and runs the units of the requested experiments, then writes their tables.

Two ways to ask: a table (`--table 1`, optionally `--experiment 3,5`), reported as
`<out>/table1.csv` and companions; or one recipe (`--upstream X --downstream Y`), reported as
`<out>/<X>_<Y>.csv` with both the best and the top-k averaged checkpoint. Either way every unit is
trained once, resumed after an interruption, and skipped when finished. The corpus is read first
(also for `--report-only`): units are keyed by the data of their fold, so results computed on
another copy of the corpus are never reported for this one.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from upstream import get_spec

from .cluster.launch import SlurmOptions, check_slurm, job_device, launch
from .cluster.pool import run_in_processes
from .common.config import ConfigError
from .common.io import check_writable_dir, free_bytes
from .common.lock import run_lock
from .experiments.definitions import ExperimentConfig, Profile
from .experiments.estimate import RunCost, check_disk, estimate, format_estimate
from .experiments.plan import RunSettings, Unit, plan, reported_checkpoints
from .experiments.published import is_published, published_models
from .experiments.retention import CacheJanitor
from .experiments.stages import RunContext, execute
from .outputs import CorpusRead, collect_rows, recipe_stem, record_path, report
from .reporting.corpora import corpus_line, write_corpora_table
from .reporting.results import UnitResult
from .reporting.seeds import write_seed_summary
from .reporting.stats import StatsConfig
from .request import RunRequest, experiments_of, read_corpus, resolve_profile, table_task
from .training import distributed
from .training.batching import AudioStore
from .training.device import cpu_has_native_bf16, default_device, emulated_bf16_warning


@dataclass(frozen=True)
class Planned:
    """A request resolved into its profile, experiments, the corpus read and the units they need."""

    profile: Profile
    table_name: str
    experiments: list[ExperimentConfig]
    corpus: CorpusRead
    settings: RunSettings
    units: list[Unit]

    def reported(self) -> dict[str, frozenset[str]]:  # a one-recipe run reports both checkpoints
        return reported_checkpoints(self.experiments, tuple(self.corpus.fold_data), self.settings, not self.table_name)


def resolve(request: RunRequest, folds: tuple[int, ...] | None = None, quiet: bool = False) -> Planned:
    """Profile and experiments first (bad names fail before any data is read), then the corpus and the plan."""
    profile = resolve_profile(request)
    table_name, experiments = experiments_of(request, profile)
    if not quiet:
        announce_stand_ins(profile, experiments)
    stem = recipe_stem(asdict(request), profile.resolve(request.upstream))
    read_as = replace(request, task=table_task(experiments)) if table_name else request  # rows' tasks read a table
    record = record_path(request.out, table_name, stem)
    corpus = read_corpus(read_as, folds or request.folds, record, quiet)
    published = published_models([b for e in experiments for b in e.branches if is_published(b)], corpus.labels,
                                 request.label_map, record if request.report_only else None)
    for model in published.values() if not quiet and distributed.world().is_main else ():
        print(f"{model.name}: {model.directory}, labels {model.mapping.describe()}")
    settings = RunSettings(profile, request.seed, request.split, request.upstream_ckpt, corpus.fold_data, corpus.labels,
                           published)
    return Planned(profile, table_name, experiments, corpus, settings,
                   plan(experiments, tuple(corpus.fold_data), settings))


def announce_stand_ins(profile: Profile, experiments: list[ExperimentConfig]) -> None:
    """Say, before anything runs, which upstream names the profile replaces and by what."""
    used = sorted({b for e in experiments for b in e.branches if profile.resolve(b) != b})
    for name in used if distributed.world().is_main else ():
        spec = get_spec(profile.resolve(name))
        print(f"profile {profile.name}: {name} → {spec.name} ({spec.source})")


def context_for(request: RunRequest, planned: Planned) -> RunContext:
    """Read (and so check) every audio file the planned folds use, once, before any training starts."""
    folds = planned.corpus.folds
    assert folds is not None, "training needs the corpus read"
    store = preload_audio([u for fold in folds.values() for u in (*fold.train, *fold.valid, *fold.test)])
    return RunContext(request.out, planned.profile, folds, store, request.upstream_ckpt, request.trust_checkpoint,
                      planned.reported(), planned.corpus.labels)


def run(request: RunRequest) -> Path | None:
    """Run (or, with `report_only`, only report) the request; returns the main CSV written (None on the
    ranks other than 0 of a torchrun job, and when SLURM jobs were submitted without waiting)."""
    if request.seeds > 1:
        return run_seeds(request)
    if request.corpora:
        return run_corpora(request)
    _apply_threads(request)
    slurm = request.slurm or SlurmOptions()
    if request.launcher == "slurm" and not request.report_only:
        if distributed.world().parallel:
            raise ConfigError("--launcher slurm submits jobs: run it as one process, not under torchrun")
        check_slurm(slurm)
        request = replace(request, device=request.device or job_device(slurm))  # units are keyed for the jobs'
    if request.jobs > 1 and distributed.world().parallel:
        raise ConfigError("--jobs runs units in worker processes: use it without torchrun")
    planned = resolve(request)
    precisions = [c.precision for c in (planned.profile.finetune, planned.profile.frozen,
                                        *planned.profile.finetune_per_upstream.values())]
    warning = emulated_bf16_warning(precisions, request.device or default_device().type, cpu_has_native_bf16())
    if warning and distributed.world().is_main:
        print(warning, file=sys.stderr)
    if request.estimate:
        print_estimate(request, planned)
        return None
    check_writable_dir(request.out)
    if not request.report_only and request.disk_check and distributed.world().is_main:
        check_disk(request.out, run_cost(request, planned))
    context = None if request.report_only else context_for(request, planned)
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
                  f"{len(planned.corpus.fold_data)} fold(s), profile {planned.profile.name}"
                  + (f", {request.jobs} worker processes" if request.jobs > 1 else ""))
            janitor = CacheJanitor(planned.units, request.out, planned.profile.keep_cache)
            if request.jobs > 1:  # each worker one torch thread unless --threads says otherwise
                worker = replace(request, jobs=1, launcher="local", threads=request.threads or 1)
                run_in_processes(request.out, planned.units, request.jobs, functools.partial(_run_unit_in_worker, worker),
                                 janitor.unit_done)
            else:
                for number, unit in enumerate(planned.units, 1):
                    print(f"[{number}/{len(planned.units)}] {unit.directory(request.out).relative_to(request.out)}")
                    execute(unit, context)
                    if main:
                        janitor.unit_done(unit)
        if not main:
            return None
        return report(asdict(request), request.out, planned.profile, planned.table_name, planned.experiments,
                      planned.settings, planned.units, planned.corpus, request.compare)


def run_cost(request: RunRequest, planned: Planned) -> RunCost:
    folds = planned.corpus.folds
    if folds is None:
        raise ConfigError("--estimate needs the corpus itself (its durations), not a recorded run")
    return estimate(planned.units, planned.profile, folds, request.out, planned.reported())


def print_estimate(request: RunRequest, planned: Planned) -> None:
    cost = run_cost(request, planned)
    print(f"estimate: {len(planned.units)} unit(s), profile {planned.profile.name}, keep {planned.profile.keep}, "
          f"keep_cache {str(planned.profile.keep_cache).lower()}")
    print(format_estimate(cost, free_bytes(request.out)))


def _apply_threads(request: RunRequest) -> None:
    if request.threads is not None:
        torch.set_num_threads(request.threads)


def _run_unit_in_worker(request: RunRequest, key: str, fold: int) -> UnitResult:
    """A `--jobs` worker's task: one unit (the corpus and stand-ins were announced by the main process)."""
    return run_planned_unit(request, key, fold, quiet=True)


def run_planned_unit(request: RunRequest, key: str, fold: int, quiet: bool = False) -> UnitResult:
    """Run one unit of the request's plan (what a cluster job does), under that unit's own lock."""
    _apply_threads(request)
    planned = resolve(request, (fold,), quiet)
    unit = next((u for u in planned.units if (u.key, u.fold) == (key, fold)), None)
    if unit is None:
        raise ConfigError(f"no unit {key} on fold {fold} in the plan of this request (profile, data or code changed?)")
    context = context_for(request, planned)
    unit_dir = unit.directory(request.out)
    with run_lock(unit_dir) if distributed.world().is_main else contextlib.nullcontext():
        return execute(unit, context)


def preload_audio(utterances: list) -> AudioStore:
    """Read (and so check) every utterance's audio once, before any training starts."""
    store = AudioStore()
    for utterance in tqdm(utterances, desc="reading audio", leave=False, disable=None):
        store.get(utterance)
    return store




def run_seeds(request: RunRequest) -> Path | None:
    """`--seeds N`: the request trained with seeds seed … seed + N − 1, each a run of its own (the
    first seed last, so the table on disk is its), then `<name>_seeds.csv`: the spread over seeds."""
    seeds = [request.seed + i for i in range(request.seeds)]
    experiments_of(request, resolve_profile(request))  # what --seeds cannot repeat (a published model) fails first
    if request.corpora or request.test_corpus:
        raise ConfigError("--seeds repeats one table or recipe on one corpus; not with --corpora or --test-corpus")
    if request.estimate:
        print(f"estimate of seed {seeds[0]}; --seeds {len(seeds)} trains {len(seeds)} times as many units")
        return run(replace(request, seeds=1))
    path = None
    main = distributed.world().is_main
    for seed in reversed(seeds):
        path = run(replace(request, seed=seed, seeds=1))
        if path is None and main:  # cluster jobs submitted without waiting: report when they are done
            return None
    if not main:
        return None
    rows_by_seed, name = {}, ""
    for seed in seeds:
        one = replace(request, seed=seed, seeds=1)
        planned = resolve(one, quiet=True)
        rows_by_seed[seed] = collect_rows(asdict(one), one.out, planned.profile, planned.experiments,
                                          planned.settings, planned.corpus)
        name = planned.table_name or recipe_stem(asdict(one), planned.profile.resolve(request.upstream))
    summary = write_seed_summary(request.out, name, rows_by_seed)
    print(f"→ {summary}")
    return path


def run_corpora(request: RunRequest) -> Path | None:
    """`--corpora a,b,c`: the recipe on every fold of each corpus, each a run of its own into `<out>/<corpus>/`
    (`--data` holds one folder per corpus, named as the corpus), then `<out>/corpora.csv` and `.md`."""
    if request.table is not None or request.experiments:
        raise ConfigError("--corpora runs one recipe (--upstream X --downstream Y) on each corpus, not a table")
    if request.data is None:
        raise ConfigError("--corpora needs --data DIR holding one folder per corpus, named as it (DIR/ravdess, ...)")
    if request.task != "categorical":
        raise ConfigError("--corpora reports classes (WA, UA, macro-F1); run each corpus with --corpus for --task "
                          f"{request.task}")
    lines, main = [], distributed.world().is_main
    each = {name: replace(request, corpus=name, data=request.data / name, out=request.out / name, corpora=())
            for name in request.corpora}
    planned_by_corpus = {}
    for name, one in each.items():  # every corpus (and a published model's labels on it) checked before any runs
        try:
            planned_by_corpus[name] = resolve(one, quiet=True)
        except ValueError as error:
            raise type(error)(f"--corpora {name}: {error}") from None
    for name, one in each.items():
        if run(one) is None and main:  # cluster jobs submitted without waiting
            return None
        planned = planned_by_corpus[name]  # running reads no other data than this plan's
        rows = collect_rows(asdict(one), one.out, planned.profile, planned.experiments, planned.settings, planned.corpus)
        lines.append(corpus_line(name, planned.corpus.labels, list(rows[0].folds.values()), "average", StatsConfig(),
                                 planned.profile.resolve(request.upstream), request.downstream))
    if not main:
        return None
    path = write_corpora_table(request.out, lines)
    print(f"→ {path}")
    return path
