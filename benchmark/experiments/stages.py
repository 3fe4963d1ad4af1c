"""The two kinds of training unit of the paper, each resumable and skipped once finished.

Stage 1 (fine-tuning): upstream + featurizer + mean pooling + linear trained jointly; the best
checkpoint and the average of the top-k are both tested. Stage 2 (frozen): an upstream (the
averaged fine-tuned one of stage 1, or a fixed one such as fbank) runs once over the fold into the
feature cache; an aggregator (e.g. ECAPA) + classifier train from the cache, again top-k averaged.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from downstream.model import DownstreamConfig
from upstream import build_upstream
from upstream.interface import Upstream

from ..common.io import atomic_write_text
from ..common.seeding import isolated_rng
from ..data.iemocap import LABELS
from ..data.splits import Fold
from ..reporting.results import CHECKPOINT_KINDS, RESULT_FILE, UnitResult, load_result
from ..training import distributed
from ..training.averaging import average_state_dicts
from ..training.batching import AudioStore
from ..training.cache import FrozenFeatures, LayerSelection
from ..training.checkpoints import load_weights, save_weights
from ..training.config import TrainConfig
from ..training.device import Precision, default_device
from ..training.loop import train_unit
from ..training.model import EmotionModel
from ..training.objectives import Objective
from ..training.resume import RESUME_FILE, EpochLog, epoch_file, load_model_state, remove_epoch_files, write_log
from .definitions import Profile
from .plan import FinetuneUnit, Unit, cache_id, unit_layers
from .published import PublishedUnit, run_published
from .scoring import unit_scores

AVERAGE_FILE = "average.safetensors"
CACHES_FILE = "caches.json"  # a frozen unit's feature-cache files, by `plan.cache_id`


def checkpoint_file(unit_dir: Path, result: UnitResult, kind: str) -> Path:
    """The weights file behind checkpoint `kind` ("best" | "average") of a finished unit."""
    if kind == "average":
        return unit_dir / AVERAGE_FILE
    if kind == "best":
        return unit_dir / epoch_file(result.best_epoch)
    raise ValueError(f"unknown checkpoint kind {kind!r}; expected 'best' or 'average'")


def apply_retention(unit_dir: Path, result: UnitResult, keep: str,
                    reported: frozenset[str] = frozenset(CHECKPOINT_KINDS)) -> None:
    """Delete what a finished unit no longer needs under the profile's `keep` (see `Profile.keep`):
    "reported" keeps the checkpoint kinds in `reported` (what the run's rows report or export; the
    average is always written, as it is what later runs read), "average" the average, "all" every
    top-k checkpoint. The resume state never outlives the result."""
    (unit_dir / RESUME_FILE).unlink(missing_ok=True)
    if keep == "all":
        remove_epoch_files(unit_dir, {epoch_file(e) for e in result.top_k_epochs})
        return
    remove_epoch_files(unit_dir, {epoch_file(result.best_epoch)} if keep == "reported" and "best" in reported else set())


def run_unit(
    unit_dir: Path,
    build_model: Callable[[], EmotionModel],
    fold: Fold,
    config: TrainConfig,
    seed: int,
    store: AudioStore,
    features_for: Callable[[EmotionModel], list[FrozenFeatures]] | None = None,
    desc: str = "unit",
    identity: str = "",
    keep: str = "all",
    reported: frozenset[str] = frozenset(CHECKPOINT_KINDS),
    labels: Sequence[str] = LABELS,
    objective: Objective = Objective(),
) -> UnitResult:
    """Train (or resume) one unit in `unit_dir`, test its best and averaged checkpoints, record both.

    The average is also scored on the validation set (the best checkpoint was, at its epoch), so an
    average that lost accuracy (e.g. through averaged BatchNorm statistics) shows beside the best's. `identity` (the unit's
    key) is recorded in the resume state and the result. `keep` and `reported`: the retention policy
    applied once the result is written (`apply_retention`).
    """
    finished = load_result(unit_dir)
    if finished is not None:
        print(f"{desc}: already finished ({unit_dir}), skipped")
        if distributed.world().is_main and (unit_dir / RESUME_FILE).exists():  # it stopped before its retention
            apply_retention(unit_dir, finished, keep, reported)
        return finished
    unit_dir.mkdir(parents=True, exist_ok=True)
    with isolated_rng(seed) as generator:
        model = build_model().to(default_device())
        features = features_for(model) if features_for is not None else None
        with distributed.main_first():  # rank 0 fills the feature cache, the other ranks read it
            for feature_store in features or []:
                feature_store.precompute([*fold.train, *fold.valid, *fold.test])
        rank = distributed.world().rank
        # each data-parallel rank its own dropout stream; rank 0 keeps the single process's
        with isolated_rng(seed + 1_000_003 * rank) if rank else contextlib.nullcontext():
            outcome = train_unit(model, fold.train, fold.valid, config, unit_dir, generator, store, features, desc,
                                 identity, objective)
    states = [load_weights(unit_dir / e.file, e.sha256) for e in outcome.top_k]
    averaged = average_state_dicts(states)
    if distributed.world().is_main:
        save_weights(unit_dir / AVERAGE_FILE, averaged)
    best_epoch = next(e for e in outcome.history if e.epoch == outcome.top_k[0].epoch)
    valid = {"best": _valid_entry(best_epoch)}  # scored at its epoch
    scores, dimensional = {}, {}
    for kind, state in (("best", states[0]), ("average", averaged)):
        load_model_state(model, state)
        if kind == "average":
            checked, checked_attributes = unit_scores(model, fold.valid, store, config, features, objective)
            valid[kind] = {"wa": checked.wa, "ua": checked.ua} | (
                {"ccc": checked_attributes["ccc_mean"]} if checked_attributes else {})
        scores[kind], attributes = unit_scores(model, fold.test, store, config, features, objective)
        if attributes:
            dimensional[kind] = attributes
    result = UnitResult(fold.index, fold.split, fold.split_hash, len(fold.train), len(fold.valid), len(fold.test),
                        outcome.top_k[0].epoch, [e.epoch for e in outcome.top_k], scores,
                        [u.id for u in fold.test], [u.label_index for u in fold.test], valid, identity, list(labels),
                        dimensional)
    if distributed.world().is_main:
        write_log(unit_dir, outcome.history, [
            {"checkpoint": "best", "epoch": outcome.top_k[0].epoch, **{f"valid_{k}": v for k, v in valid["best"].items()}},
            {"checkpoint": "average", "epochs": [e.epoch for e in outcome.top_k],
             **{f"valid_{k}": v for k, v in valid["average"].items()}}])
        atomic_write_text(unit_dir / RESULT_FILE, json.dumps(asdict(result)) + "\n")
        apply_retention(unit_dir, result, keep, reported)
    distributed.barrier()  # no rank goes on before the result (and averaged weights) are on disk
    for kind in CHECKPOINT_KINDS:
        shown = (f"valid WA {valid[kind]['wa']:.2f}  test WA {scores[kind].wa:.2f}  UA {scores[kind].ua:.2f}"
                 if objective.categorical else "")
        if kind in dimensional:
            shown += f"{'  ' if shown else ''}test CCC {dimensional[kind]['ccc_mean']:.3f}"
        print(f"{desc} [{kind}]: {shown}")
    return result


def _valid_entry(epoch: EpochLog) -> dict[str, float]:
    """The validation scores of an epoch's log, in % (CCC as it is)."""
    entry = {"wa": 100 * epoch.valid_wa, "ua": 100 * epoch.valid_ua} if epoch.valid_wa is not None else {
        "wa": math.nan, "ua": math.nan}
    return entry | ({"ccc": epoch.valid_ccc} if epoch.valid_ccc is not None else {})


def averaged_upstream(unit_dir: Path, upstream: Upstream, branch: int = 0) -> Upstream:
    """Load a finished stage-1 unit's averaged weights of upstream `branch` into `upstream`."""
    prefix = f"upstreams.{branch}."
    state = load_weights(unit_dir / AVERAGE_FILE)
    upstream.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return upstream.eval()


def frozen_feature_stores(
    upstreams: Sequence[Upstream], store: AudioStore, cache_dir: Path | None, layers: LayerSelection,
    dtype: str, max_batch_seconds: float, precision: Precision = "auto",
) -> list[FrozenFeatures]:
    return [FrozenFeatures(u, store, max_batch_seconds, layers, cache_dir, dtype, precision) for u in upstreams]


@dataclass
class RunContext:
    """What every unit of one run shares."""

    out: Path
    profile: Profile
    folds: dict[int, Fold]
    store: AudioStore
    upstream_ckpt: str | None = None
    trust_checkpoint: bool = False
    reported: Mapping[str, frozenset[str]] = field(default_factory=dict)  # `plan.reported_checkpoints`
    labels: tuple[str, ...] = LABELS  # the corpus' label set

    def objective(self, unit: Unit) -> Objective:
        return Objective(unit.task, self.profile.dimensional_loss, self.profile.dimensional_weight)  # type: ignore[arg-type]

    def kept_kinds(self, unit: Unit) -> frozenset[str]:
        return self.reported.get(unit.key, frozenset(CHECKPOINT_KINDS))

    def build(self, name: str) -> Upstream:
        return build_upstream(name, ckpt=self.upstream_ckpt, trust_checkpoint=self.trust_checkpoint or None)


def downstream_config(unit: Unit, profile: Profile) -> DownstreamConfig:
    """The downstream of `unit`: mean pooling over all layers when fine-tuning, else the row's aggregator
    on the stored layers (shared by training, export and `estimate`)."""
    if isinstance(unit, FinetuneUnit):
        return DownstreamConfig(featurizer=unit.featurizer, aggregator="mean", num_classes=unit.num_classes,
                                task=unit.task)
    return DownstreamConfig(featurizer="weighted" if unit_layers(unit) == "all" else "last", aggregator=unit.aggregator,
                            fusion=unit.fusion, input_norm=unit.input_norm, ecapa=profile.ecapa,
                            num_classes=unit.num_classes, task=unit.task)


def build_unit_model(unit: Unit, out: Path, profile: Profile, build: Callable[[str], Upstream]) -> EmotionModel:
    """The model of `unit` before its own training (a frozen unit's sources' averaged upstreams loaded).

    Shared by training (`execute`) and export, so an exported model is built exactly as it was trained.
    """
    config = downstream_config(unit, profile)
    if isinstance(unit, FinetuneUnit):
        return EmotionModel([build(unit.upstream)], config)
    layers = unit_layers(unit)
    upstreams = [averaged_upstream(source.directory(out), build(name)) if source else build(name)
                 for name, source in zip(unit.upstreams, unit.sources, strict=True)]
    stored = [u.num_layers if layers == "all" else 1 for u in upstreams]
    return EmotionModel(upstreams, config, stored_layers=stored)


def execute(unit: Unit, ctx: RunContext) -> UnitResult:
    """Run (or resume, or skip when finished) one planned unit."""
    fold = ctx.folds[unit.fold]
    if isinstance(unit, PublishedUnit):  # nothing to train: the model scores the test set as it is
        return run_published(unit, fold, ctx.store, ctx.labels, ctx.out, default_device())

    def build_model() -> EmotionModel:
        return build_unit_model(unit, ctx.out, ctx.profile, ctx.build)

    if isinstance(unit, FinetuneUnit):
        return run_unit(unit.directory(ctx.out), build_model, fold,
                        ctx.profile.for_task(ctx.profile.finetune_for(unit.upstream), unit.task),
                        unit.seed, ctx.store,
                        desc=f"fold {unit.fold} fine-tune {unit.label}", identity=unit.key, keep=ctx.profile.keep,
                        reported=ctx.kept_kinds(unit), labels=ctx.labels, objective=ctx.objective(unit))
    layers = unit_layers(unit)
    stores: list[FrozenFeatures] = []

    def features(model: EmotionModel) -> list[FrozenFeatures]:
        stores.extend(frozen_feature_stores(list(model.upstreams), ctx.store, ctx.out / "cache", layers,
                                            ctx.profile.cache_dtype, ctx.profile.frozen.eval_batch_seconds,
                                            ctx.profile.frozen.precision))
        return stores

    result = run_unit(unit.directory(ctx.out), build_model, fold, ctx.profile.for_task(ctx.profile.frozen, unit.task),
                      unit.seed, ctx.store,
                      features, desc=f"fold {unit.fold} {unit.aggregator} {unit.label}", identity=unit.key,
                      keep=ctx.profile.keep, reported=ctx.kept_kinds(unit), labels=ctx.labels,
                      objective=ctx.objective(unit))
    if stores and distributed.world().is_main:  # which cache files it read, for `retention.CacheJanitor`
        record = {cache_id(unit, i): [str(p) for p in s.files] for i, s in enumerate(stores)}
        atomic_write_text(unit.directory(ctx.out) / CACHES_FILE, json.dumps(record) + "\n")
    return result
