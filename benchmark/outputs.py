"""What a finished run writes: the table (`table1.csv` and companions) or the one-recipe CSV and JSON,
each with the provenance that says what produced it.

Every result is checked against the corpus the run points at before it is reported: a unit's
recorded split hash and test utterances must be those of the current fold.
"""
from __future__ import annotations

import json
import math
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from upstream import get_spec

from .common.io import atomic_write_text, path_label
from .data.iemocap import LABELS
from .data.splits import Fold
from .experiments.definitions import ExperimentConfig, Profile
from .experiments.plan import RunSettings, Unit, unit_for
from .experiments.published import PREFIX, PublishedModel, is_published
from .experiments.stages import checkpoint_file
from .reporting.dimensional import fold_mean_interval, unit_folds, write_scatter
from .reporting.metrics import mean_and_std
from .reporting.results import CHECKPOINT_KINDS, UnitResult, load_result
from .reporting.rows import Row
from .reporting.sections import comparison_text
from .reporting.tables import write_table
from .training import distributed

DIMENSIONAL_COLUMNS = ("ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean", "ccc_mean_ci_low",
                       "ccc_mean_ci_high")
RECIPE_COLUMNS = ("upstream", "downstream", "stage", "checkpoint", "fold", "split", "split_hash", "n_train",
                  "n_valid", "n_test", "best_epoch", "wa", "ua", "macro_f1", "valid_wa", "valid_ua", "upstreams_run",
                  "profile")


@dataclass(frozen=True)
class CorpusRead:
    """The data a run reports on: per fold the fingerprint its units are keyed by, the folds themselves
    when the corpus was read (None: `--report-only` on the record of a previous run, see
    `recorded_corpus`), and the fingerprint of the corpus' files."""

    fold_data: dict[int, str]
    folds: dict[int, Fold] | None
    fingerprint: str
    labels: tuple[str, ...] = LABELS  # the corpus' label set
    mapping: dict[str, str] = field(default_factory=dict)  # cross-corpus: "corpus:label" → shared class


def recipe_stem(request: dict[str, Any], upstream: str) -> str:
    """The file stem of a one-recipe run: `<upstream>_<downstream>`, or `cross_<A>_<B>` for a cross-corpus test."""
    if request.get("test_corpus"):
        return f"cross_{path_label(request['corpus'])}_{path_label(request['test_corpus'])}"
    if is_published(upstream):  # no downstream of ours
        return path_label(upstream)
    return f"{path_label(upstream)}_{request['downstream']}"


def record_path(out: Path, table_name: str, recipe_stem: str) -> Path:
    return out / ("run.json" if table_name else f"{recipe_stem}.json")


def recorded_corpus(path: Path, folds: tuple[int, ...]) -> CorpusRead:
    """The data that the run recorded in `path` was trained on, for `--report-only` without the corpus."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        fold_data = {int(k): str(v) for k, v in record["fold_data"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise FileNotFoundError(f"{path}: no record of a run with its data fingerprints; pass --data (the corpus "
                                "the units were trained on) to report them") from None
    folds = folds or tuple(sorted(fold_data))
    missing = [k for k in folds if k not in fold_data]
    if missing:
        raise FileNotFoundError(f"{path}: records folds {','.join(map(str, sorted(fold_data)))}, not fold {missing[0]}; "
                                "pass --data to report other folds")
    labels = tuple(record.get("labels") or LABELS)
    return CorpusRead({k: fold_data[k] for k in folds}, None, str(record.get("data_fingerprint", "")), labels)


def ran_as(branch: str, profile: Profile, ckpt: str | None = None, published: PublishedModel | None = None) -> str:
    """What actually ran for a paper branch name: `facebook/hubert-large-ll60k`, or a stand-in spelled out,
    e.g. `tiny_hubert (random init (seed 0), transformers hubert architecture; demo stand-in for hubert)`."""
    name = profile.resolve(branch)
    if is_published(name):
        mapping = f"; labels {published.mapping.describe()}" if published else ""
        return f"{name[len(PREFIX):]} (published audio-classification model, scored as it is{mapping})"
    spec = get_spec(name)
    if ckpt:
        base = f"{name} from {ckpt}"
    else:
        base = spec.source if spec.backend == "transformers" and spec.source else name
    details = [spec.source] if base == name and spec.source else []
    if name != branch:
        details.append(f"{profile.name} stand-in for {branch}")
    return f"{base} ({'; '.join(details)})" if details else base


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}"


def _ccc_cells(result: UnitResult | None, kind: str, values: list[float] | None = None) -> list[str]:
    """ccc_arousal, ccc_valence, ccc_dominance, ccc_mean of one fold (or the given four values)."""
    if values is None:
        assert result is not None
        scores = result.dimensional[kind]
        values = [*scores["ccc"], scores["ccc_mean"]]
    return [f"{v:.3f}" for v in values] + [""] * (len(DIMENSIONAL_COLUMNS) - len(values))


def recipe_csv(experiment: ExperimentConfig, upstream: str, results: list[UnitResult], ran: str, profile: str) -> str:
    """One line per (checkpoint, fold), then mean and std (ddof 0) over folds; the attributes' CCC
    columns when the task regresses them."""
    stage = "published" if is_published(upstream) else "finetune" if experiment.is_finetune_row else "frozen"
    dimensional = experiment.task != "categorical"
    lines = [",".join([*RECIPE_COLUMNS, *(DIMENSIONAL_COLUMNS if dimensional else ())])]
    quoted = '"' + ran.replace('"', '""') + '"' if "," in ran or '"' in ran else ran
    for kind in CHECKPOINT_KINDS:
        for r in results:
            s, valid = r.scores[kind], r.valid.get(kind, {})
            lines.append(",".join(str(v) for v in (
                upstream, experiment.aggregator, stage, kind, r.fold, r.split, r.split_hash, r.n_train, r.n_valid,
                r.n_test, r.best_epoch, _number(s.wa), _number(s.ua), _number(s.macro_f1),
                _number(valid.get('wa', math.nan)), _number(valid.get('ua', math.nan)), quoted, profile,
                *(_ccc_cells(r, kind) if dimensional else ()))))
    for kind in CHECKPOINT_KINDS:
        stats = [mean_and_std([getattr(r.scores[kind], m) for r in results]) if experiment.task != "dimensional"
                 else (math.nan, math.nan) for m in ("wa", "ua", "macro_f1")]
        ccc_stats = [mean_and_std([[*r.dimensional[kind]["ccc"], r.dimensional[kind]["ccc_mean"]][a] for r in results])
                     for a in range(4)] if dimensional else []
        interval = fold_mean_interval(unit_folds(results, kind))[1:] if dimensional else None  # of the mean CCC
        for name, index in (("mean", 0), ("std", 1)):
            cells = [s[index] for s in ccc_stats] + ([interval[0][-1], interval[1][-1]] if interval and index == 0 else [])
            lines.append(",".join([upstream, experiment.aggregator, stage, kind, name, *[""] * 6,
                                   *(_number(stat[index]) for stat in stats), "", "", quoted, profile,
                                   *(_ccc_cells(None, kind, cells) if dimensional else ())]))
    return "\n".join(lines) + "\n"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(request: dict[str, Any], out: Path, profile: Profile, experiments: list[ExperimentConfig],
               settings: RunSettings, units: list[Unit], corpus: CorpusRead) -> dict:
    import numpy
    import speechbrain
    import transformers

    return {
        "request": json.loads(json.dumps(request, default=str)),
        "profile": asdict(profile),
        "experiments": [asdict(e) for e in experiments],
        "units": {str(unit.directory(out).relative_to(out)): unit.key for unit in units},
        "data_fingerprint": corpus.fingerprint,
        "corpus": request.get("corpus", "iemocap"),
        "labels": list(settings.labels),
        **({"label_mapping": corpus.mapping} if corpus.mapping else {}),
        **({"published": {name: m.record() for name, m in settings.published.items()}} if settings.published else {}),
        "fold_data": {str(k): v for k, v in settings.fold_data.items()},
        "git_commit": _git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
                     "transformers": transformers.__version__, "speechbrain": speechbrain.__version__},
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})",
        "data_parallel_processes": distributed.world().size,
        "torch_threads": torch.get_num_threads(),
        "worker_processes": int(request.get("jobs") or 1),  # --jobs: units ran in workers of --threads (or 1) threads
    }


def checked_result(unit_dir: Path, experiment: ExperimentConfig, index: int, fold: Fold | None) -> UnitResult:
    """The finished result in `unit_dir`, which must have been computed on `fold` as the corpus has it now."""
    result = load_result(unit_dir)
    if result is None:
        raise FileNotFoundError(f"{unit_dir}: no finished result for experiment {experiment.id} fold {index} "
                                "on this corpus; run without --report-only first")
    if fold is not None and (result.split_hash != fold.split_hash or result.test_ids != [u.id for u in fold.test]):
        raise ValueError(f"{unit_dir}: its result was computed on other data (split hash {result.split_hash}, "
                         f"this corpus' fold {fold.index}: {fold.split_hash}); delete the folder to retrain it")
    return result


def experiment_task(experiments: list[ExperimentConfig]) -> str:
    return experiments[0].task if experiments else "categorical"


def collect_rows(request: dict[str, Any], out: Path, profile: Profile, experiments: list[ExperimentConfig],
                 settings: RunSettings, corpus: CorpusRead) -> list[Row]:
    """The finished units of each experiment, fold by fold (each checked against the corpus read)."""
    rows = []
    ckpt = request.get("upstream_ckpt")
    for experiment in experiments:
        results = {}
        for k in corpus.fold_data:
            fold = corpus.folds[k] if corpus.folds is not None else None
            results[k] = checked_result(unit_for(experiment, k, settings).directory(out), experiment, k, fold)
        checkpoints = {k: checkpoint_file(unit_for(experiment, k, settings).directory(out), result,
                                          experiment.checkpoint) for k, result in results.items()}
        ran = " + ".join(ran_as(b, profile, ckpt, settings.published.get(b)) for b in experiment.branches)
        rows.append(Row(experiment, results, checkpoints, ran))
    return rows


def row_summary(row: Row) -> str:
    """`WA … UA …` (fold means) of a row with classes, then `CCC …` (the mean CCC's fold mean) of a rated one."""
    shown = [f"{m.upper()} {row.fold_mean(m):6.2f}" for m in ("wa", "ua")] if row.classified else []
    return "  ".join(shown + ([f"CCC {row.fold_mean('ccc_mean'):.3f}"] if row.rated else []))


def report(request: dict[str, Any], out: Path, profile: Profile, table_name: str,
           experiments: list[ExperimentConfig], settings: RunSettings, units: list[Unit], corpus: CorpusRead,
           compare: tuple[int, ...] = ()) -> Path:
    """Write the table (or the one-recipe CSV + JSON) of the finished units; returns the main CSV."""
    rows = collect_rows(request, out, profile, experiments, settings, corpus)
    record = provenance(request, out, profile, experiments, settings, units, corpus)
    if not table_name:
        upstream = profile.resolve(request["upstream"])
        stem = recipe_stem(request, upstream)
        path = out / f"{stem}.csv"
        folds = list(rows[0].folds.values())
        atomic_write_text(out / f"{stem}.json", json.dumps(record | {"folds": [asdict(r) for r in folds]},
                                                           indent=1, default=str) + "\n")
        atomic_write_text(path, recipe_csv(experiments[0], upstream, folds, rows[0].ran, profile.name))
        if experiment_task(experiments) != "categorical":  # predicted vs true attributes, pooled over folds
            write_scatter(out / f"{stem}_attributes.png", folds, "average",
                          f"{stem}: top-k average, {len(folds)} fold(s) pooled")
        for kind in ("average",) if is_published(upstream) else CHECKPOINT_KINDS:  # a published model is one
            wa, ua = (mean_and_std([getattr(r.scores[kind], m) for r in folds])[0] for m in ("wa", "ua"))
            shown = f"WA {wa:.2f}  UA {ua:.2f}" if experiment_task(experiments) != "dimensional" else ""
            if experiment_task(experiments) != "categorical":
                mean_ccc = mean_and_std([r.dimensional[kind]["ccc_mean"] for r in folds])[0]
                shown += f"{'  ' if shown else ''}CCC {mean_ccc:.3f}"
            print(f"{stem} [{'as published' if is_published(upstream) else kind}]: mean over {len(folds)} fold(s): {shown}")
    else:
        path = write_table(out, table_name, rows, record, profile=profile.name, note=profile.note)
        for row in rows:
            print(f"exp {row.experiment.id:2d}: {row_summary(row)}  {row.experiment.description}")
        if compare:
            print(comparison_text([next(r for r in rows if r.experiment.id == i) for i in compare]))
    print(f"→ {path}")
    return path
