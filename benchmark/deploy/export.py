"""Export one fold's trained model from a run folder into a self-contained model folder (`bundle`).

The run's record (`run.json` of a table run, `<upstream>_<downstream>.json` of a one-recipe run)
gives the profile, seed, split and experiments; `plan.unit_for` then names the unit directory that
holds the experiment's row for the fold, and `stages.build_unit_model` rebuilds the model exactly as
it was trained before its averaged (or best) weights are loaded.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from upstream import build_upstream
from upstream.interface import Upstream

from ..common.config import ConfigError, from_dict
from ..data.iemocap import LABELS
from ..experiments.definitions import ExperimentConfig, Profile, load_table, select
from ..experiments.plan import RunSettings, Unit, unit_for
from ..experiments.published import PREFIX, is_published
from ..experiments.stages import build_unit_model, checkpoint_file, unit_layers
from ..reporting.results import UnitResult, load_result
from ..training.cache import LayerSelection
from ..training.checkpoints import load_weights
from ..training.model import EmotionModel
from ..training.resume import load_model_state
from .bundle import DEFAULT_WINDOW_SECONDS, BundleConfig, save_bundle

Checkpoint = Literal["average", "best"]
TABLE_RECORD = "run.json"


@dataclass(frozen=True)
class RunRecord:
    """What a run folder says about how its units were trained."""

    path: Path
    settings: RunSettings
    experiments: list[ExperimentConfig]
    trust_checkpoint: bool


@dataclass
class TrainedModel:
    """A finished unit's model with the chosen checkpoint loaded (eval mode), and where it came from."""

    model: EmotionModel
    layers: LayerSelection
    unit: Unit
    result: UnitResult
    experiment: ExperimentConfig
    checkpoint: Checkpoint
    record: RunRecord


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _is_record(data: Any) -> bool:
    return isinstance(data, dict) and {"profile", "experiments", "request"} <= data.keys()


def read_record(path: Path) -> RunRecord:
    data = _read_json(path)
    if not _is_record(data):
        raise ConfigError(f"{path}: not a run record (expected the run.json or <upstream>_<downstream>.json "
                          "that run_benchmark.py writes)")
    profile = from_dict(Profile, data["profile"], f"{path.name}: profile")
    experiments = [from_dict(ExperimentConfig, e, f"{path.name}: experiments") for e in data["experiments"]]
    request = data["request"]
    if not isinstance(data.get("fold_data"), dict):
        raise ConfigError(f"{path}: the record names no data fingerprint per fold (written by an older version); "
                          "run the benchmark again into this folder, then export")
    fold_data = {int(k): str(v) for k, v in data["fold_data"].items()}
    labels = tuple(data.get("labels") or LABELS)  # records before other corpora: IEMOCAP's
    settings = RunSettings(profile, int(request["seed"]), str(request["split"]), request.get("upstream_ckpt"), fold_data,
                           labels)
    return RunRecord(path, settings, experiments, bool(request.get("trust_checkpoint")))


def find_experiment(run: Path, experiment_id: int) -> tuple[RunRecord, ExperimentConfig]:
    """The record of `run` (a run folder or a record file) that trained experiment `experiment_id`.

    Id 0 is a one-recipe run (`--upstream X --downstream Y`); ids 1–11 are Table 1 rows, read from
    `run.json`, or from the table's files when that record lists other rows of the same run.
    """
    if not run.exists():
        raise FileNotFoundError(f"--run: {run} does not exist; pass the --out folder of a finished run")
    if run.is_file():
        paths = [run]
    else:
        paths = sorted(p for p in run.glob("*.json") if _is_record(_read_json(p)))
    records = [read_record(p) for p in paths]
    matching = [(r, e) for r in records for e in r.experiments if e.id == experiment_id]
    if experiment_id != 0 and not matching:
        table = [r for r in records if r.path.name == TABLE_RECORD]
        if table:
            return table[0], select(load_table(1), (experiment_id,))[0]
    if len(matching) == 1:
        published = next((b for b in matching[0][1].branches if is_published(b)), None)
        if published:
            raise ConfigError(f"experiment {experiment_id} is the published model {published}, scored as it is: "
                              f"nothing was trained here to export; use {published[len(PREFIX):]} itself")
        return matching[0]
    if not matching:
        what = "one-recipe run (experiment 0)" if experiment_id == 0 else f"table run with experiment {experiment_id}"
        raise FileNotFoundError(f"--run: no record of a {what} in {run} (looked for run.json and "
                                "<upstream>_<downstream>.json); pass the --out folder of that run")
    names = ", ".join(str(r.path) for r, _ in matching)
    raise ConfigError(f"--run: {len(matching)} runs of experiment {experiment_id} in {run} ({names}); "
                      "pass one of these files as --run")


def trained_model(run: Path, experiment_id: int, fold: int, checkpoint: Checkpoint = "average") -> TrainedModel:
    """The model of experiment `experiment_id` on `fold` as trained in `run`, with its weights loaded."""
    record, experiment = find_experiment(run, experiment_id)
    out = record.path.parent
    if fold not in record.settings.fold_data:
        raise FileNotFoundError(f"--fold: {record.path} records no run of fold {fold} (folds: "
                                f"{', '.join(map(str, sorted(record.settings.fold_data)))})")
    unit = unit_for(experiment, fold, record.settings)
    unit_dir = unit.directory(out)
    result = load_result(unit_dir)
    if result is None:
        raise FileNotFoundError(f"{unit_dir}: no finished result for experiment {experiment_id} fold {fold}; "
                                f"train it first (run_benchmark.py ... --folds {fold} --out {out})")
    weights = checkpoint_file(unit_dir, result, checkpoint)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: the {checkpoint} checkpoint of experiment {experiment_id} fold {fold} was "
                                f"not kept (retention keep: {record.settings.profile.keep} keeps what the run's rows "
                                "report); export --checkpoint average, or retrain with keep: all in the profile")
    ckpt, trust = record.settings.upstream_ckpt, record.trust_checkpoint or None

    def build(name: str) -> Upstream:
        return build_upstream(name, ckpt=ckpt, trust_checkpoint=trust)

    model = build_unit_model(unit, out, record.settings.profile, build)
    load_model_state(model, load_weights(weights))
    return TrainedModel(model.eval(), unit_layers(unit), unit, result, experiment, checkpoint, record)


def reference(trained: TrainedModel) -> dict[str, object]:
    """Provenance and the fold's test scores of the exported checkpoint (percent), for the config."""
    scores = trained.result.scores[trained.checkpoint]
    out = trained.record.path.parent
    return {
        "run_record": str(trained.record.path), "unit": str(trained.unit.directory(out).relative_to(out)),
        "experiment": asdict(trained.experiment), "fold": trained.unit.fold, "checkpoint": trained.checkpoint,
        "profile": trained.record.settings.profile.name, "seed": trained.record.settings.seed,
        "split": trained.result.split, "split_hash": trained.result.split_hash,
        "test": {"wa": scores.wa, "ua": scores.ua, "macro_f1": scores.macro_f1, "n_test": trained.result.n_test},
    }


def export_fold(run: Path, experiment_id: int, fold: int, to: Path, checkpoint: Checkpoint = "average",
                window_seconds: float = DEFAULT_WINDOW_SECONDS) -> BundleConfig:
    """Write the model of experiment `experiment_id` on `fold` of `run` into model folder `to`."""
    if window_seconds <= 0:
        raise ValueError(f"--window: must be positive, got {window_seconds}")
    trained = trained_model(run, experiment_id, fold, checkpoint)
    return save_bundle(to, trained.model, trained.layers, tuple(trained.result.labels), ckpt=trained.record.settings.upstream_ckpt,
                       window_seconds=window_seconds, reference=reference(trained))
