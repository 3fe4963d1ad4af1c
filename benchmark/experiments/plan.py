"""Which training units a set of experiments needs, each once, in dependency order.

A unit is one model trained on one fold. Fine-tuning units (stage 1) are shared by every row that
uses the same upstream on the same fold (rows 1 and 3; the sources of 5, 7, 8); frozen units
(stage 2) depend on the fine-tuning units whose averaged upstreams feed them. A unit's key hashes
everything that determines its result (experiment, settings, seed, split, the fold's data and each
upstream's input pipeline), so changed settings or another copy of the corpus never reuse a stale unit.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from upstream import get_spec

from ..common.io import path_label
from ..data.iemocap import LABELS
from ..training.cache import LayerSelection
from .definitions import ExperimentConfig, Profile
from .published import PublishedModel, PublishedUnit, is_published


@dataclass(frozen=True)
class FinetuneUnit:
    upstream: str  # registered name (profile-resolved)
    fold: int
    featurizer: str | int
    key: str  # everything that decides the result (`finetune_unit`)
    seed: int  # of the training randomness: the recipe alone, not the data's file metadata
    num_classes: int = len(LABELS)  # the corpus' label set (`RunSettings.labels`)
    task: str = "categorical"  # `training.objectives.Objective.task`

    @property
    def label(self) -> str:
        return self.upstream

    def directory(self, out: Path) -> Path:
        return out / "runs" / path_label(self.label) / f"finetune-{self.key}" / f"fold{self.fold}"


@dataclass(frozen=True)
class FrozenUnit:
    upstreams: tuple[str, ...]
    sources: tuple[FinetuneUnit | None, ...]  # per branch: whose averaged upstream, or None (as it is)
    aggregator: str
    fusion: str
    featurizer: str | int
    input_norm: tuple[str, ...]  # per branch, resolved (`branch_norms`)
    fold: int
    key: str
    seed: int
    num_classes: int = len(LABELS)
    task: str = "categorical"

    @property
    def label(self) -> str:
        joiner = {"early": "+", "late": "&"}.get(self.fusion, "")
        return joiner.join(self.upstreams)

    def directory(self, out: Path) -> Path:
        return out / "runs" / path_label(self.label) / f"{self.aggregator}-{self.key}" / f"fold{self.fold}"


Unit = FinetuneUnit | FrozenUnit | PublishedUnit  # the last: a published model scored as it is


@dataclass(frozen=True)
class RunSettings:
    """What, besides the experiment, decides a unit's result.

    `fold_data`: fold → `benchmark.data.fingerprint.fold_fingerprint` of the corpus the run reads, so
    units trained on another copy of the corpus (or another split) live under other keys. The profile's
    precisions are resolved ("auto" → "bf16" or "float32" for the device the units run on).
    """

    profile: Profile
    seed: int
    split: str
    upstream_ckpt: str | None = None
    fold_data: dict[int, str] = field(default_factory=dict)
    labels: tuple[str, ...] = LABELS  # the corpus' label set, in the classifier's output order
    published: dict[str, PublishedModel] = field(default_factory=dict)  # `hfcls:` names, resolved (`published`)

    def label_key(self) -> list:
        """What the label set adds to a unit's identity (nothing for IEMOCAP's, so its keys stay as they were)."""
        return [] if self.labels == LABELS else [list(self.labels)]

    def data_key(self, fold: int) -> str:
        if fold not in self.fold_data:
            raise ValueError(f"fold {fold}: the run settings carry no fingerprint of its data; read the corpus first")
        return self.fold_data[fold]


def _key(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _pipeline(name: str) -> list:
    """How the upstream registered as `name` prepares its input (see `upstream.hub.UpstreamSpec`)."""
    return [list(pair) for pair in get_spec(name).input_pipeline]


def branch_norms(experiment: ExperimentConfig, names: tuple[str, ...]) -> tuple[str, ...]:
    """The input normalisation of each branch, "auto" resolved from what the upstream's features need:
    fbank's raw log-mel energies are standardised ("global"); SSL and text models' hidden states are
    layer-normalised already and stay as they are ("none")."""
    spec = experiment.input_norm
    if isinstance(spec, bool):
        return ("global" if spec else "none",) * len(names)
    modes = spec if isinstance(spec, tuple) else (spec,) * len(names)
    return tuple(("global" if get_spec(n).backend == "fbank" else "none") if m == "auto" else m
                 for m, n in zip(modes, names, strict=True))


def _seed(recipe: list) -> int:
    """The training seed of a unit: a hash of its recipe (what to train, how, with which run seed), so
    that the same recipe on identical data trains identically even where the files' modification
    times (part of the unit's key) differ, e.g. a regenerated demo corpus."""
    return int(_key(recipe)[:8], 16)


def finetune_unit(upstream: str, fold: int, experiment: ExperimentConfig, settings: RunSettings) -> FinetuneUnit:
    recipe = ["finetune", upstream, settings.upstream_ckpt, experiment.featurizer,
              asdict(settings.profile.finetune_for(upstream)), settings.seed, settings.split]
    identity = [*recipe, settings.data_key(fold), _pipeline(upstream), *settings.label_key(),
                *_task_key(experiment, settings.profile)]
    return FinetuneUnit(upstream, fold, experiment.featurizer, _key(identity), _seed(recipe), len(settings.labels),
                        experiment.task)


def _task_key(experiment: ExperimentConfig, profile: Profile) -> list:
    """What the task adds to a unit's identity (nothing for the categorical task: keys stay as they were)."""
    if experiment.task == "categorical":
        return []
    return [experiment.task, profile.dimensional_loss, profile.dimensional_weight if experiment.task == "both" else None,
            profile.dimensional_epochs]


def unit_for(experiment: ExperimentConfig, fold: int, settings: RunSettings) -> Unit:
    """The unit whose test scores are this experiment's row on `fold`."""
    names = tuple(settings.profile.resolve(b) for b in experiment.branches)
    if is_published(names[0]):
        if names[0] not in settings.published:
            raise ValueError(f"{names[0]}: the run settings carry no resolved model; resolve it first (`published`)")
        model = settings.published[names[0]]
        # the files' contents, not the path they were named by: ./m and /abs/m are one model
        identity = ["published", model.fingerprint, model.mapping.pairs, settings.data_key(fold), list(settings.labels)]
        return PublishedUnit(model, fold, _key(identity), len(settings.labels))
    if experiment.is_finetune_row:
        return finetune_unit(names[0], fold, experiment, settings)
    sources = tuple(finetune_unit(n, fold, experiment, settings) if ft else None
                    for n, ft in zip(names, experiment.finetune, strict=True))
    recipe = ["frozen", names, [s.seed if s else None for s in sources], experiment.aggregator, experiment.fusion,
              experiment.featurizer, branch_norms(experiment, names), asdict(settings.profile.frozen),
              asdict(settings.profile.ecapa), settings.profile.cache_dtype, settings.seed, settings.split,
              settings.upstream_ckpt]
    identity = [*recipe, [s.key if s else None for s in sources], settings.data_key(fold),
                [_pipeline(n) for n in names], *settings.label_key(), *_task_key(experiment, settings.profile)]
    return FrozenUnit(names, sources, experiment.aggregator, experiment.fusion, experiment.featurizer,
                      branch_norms(experiment, names), fold, _key(identity), _seed(recipe), len(settings.labels),
                      experiment.task)


def cache_id(unit: FrozenUnit, branch: int) -> str:
    """Which feature cache branch `branch` of a frozen unit reads: the same source weights, layers and
    fold read the same file (rows 5, 7 and 8 share their fine-tuned upstreams' caches)."""
    source = unit.sources[branch]
    weights = source.key if source is not None else unit.upstreams[branch]
    return f"{weights}|{unit_layers(unit)}|fold{unit.fold}"


def unit_layers(unit: Unit) -> LayerSelection:
    """Which hidden states of each upstream the unit's downstream receives ("all" when fine-tuned)."""
    if isinstance(unit, FinetuneUnit):
        return "all"
    return "all" if unit.featurizer == "weighted" else unit.featurizer  # type: ignore[return-value]


def plan(experiments: list[ExperimentConfig], folds: tuple[int, ...], settings: RunSettings) -> list[Unit]:
    """Every unit the experiments need, once each; a unit's sources come before it."""
    ordered: dict[Unit, None] = {}
    for fold in folds:
        for experiment in experiments:
            unit = unit_for(experiment, fold, settings)
            if isinstance(unit, FrozenUnit):
                for source in unit.sources:
                    if source is not None:
                        ordered.setdefault(source, None)
            ordered.setdefault(unit, None)
    return list(ordered)


def reported_checkpoints(experiments: list[ExperimentConfig], folds: tuple[int, ...], settings: RunSettings,
                         every_kind: bool = False) -> dict[str, frozenset[str]]:
    """Unit key → the checkpoint kinds ("best", "average") that the run reports or exports from it: a
    row's unit its row's `checkpoint` (both with `every_kind`, as a one-recipe CSV shows both), a frozen
    unit's fine-tuned sources their average (it feeds the frozen unit). `Profile.keep: reported` keeps these."""
    kinds: dict[str, set[str]] = {}
    for fold in folds:
        for experiment in experiments:
            unit = unit_for(experiment, fold, settings)
            kinds.setdefault(unit.key, set()).update({"best", "average"} if every_kind else {experiment.checkpoint})
            for source in unit.sources if isinstance(unit, FrozenUnit) else ():
                if source is not None:
                    kinds.setdefault(source.key, set()).add("average")
    return {key: frozenset(value) for key, value in kinds.items()}
