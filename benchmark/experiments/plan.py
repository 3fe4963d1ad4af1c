"""Which training units a set of experiments needs, each once, in dependency order.

A unit is one model trained on one fold. Fine-tuning units (stage 1) are shared by every row that
uses the same upstream on the same fold (rows 1 and 3; the sources of 5, 7, 8); frozen units
(stage 2) depend on the fine-tuning units whose averaged upstreams feed them. A unit's key hashes
everything that determines its result, so changed settings never reuse a stale unit.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .definitions import ExperimentConfig, Profile


@dataclass(frozen=True)
class FinetuneUnit:
    upstream: str  # registered name (profile-resolved)
    fold: int
    featurizer: str | int
    key: str

    @property
    def label(self) -> str:
        return self.upstream

    def directory(self, out: Path) -> Path:
        return out / "runs" / self.label.replace(":", "_") / f"finetune-{self.key}" / f"fold{self.fold}"


@dataclass(frozen=True)
class FrozenUnit:
    upstreams: tuple[str, ...]
    sources: tuple[FinetuneUnit | None, ...]  # per branch: whose averaged upstream, or None (as it is)
    aggregator: str
    fusion: str
    featurizer: str | int
    input_norm: bool
    fold: int
    key: str

    @property
    def label(self) -> str:
        joiner = {"early": "+", "late": "&"}.get(self.fusion, "")
        return joiner.join(self.upstreams)

    def directory(self, out: Path) -> Path:
        return out / "runs" / self.label.replace(":", "_") / f"{self.aggregator}-{self.key}" / f"fold{self.fold}"


Unit = FinetuneUnit | FrozenUnit


@dataclass(frozen=True)
class RunSettings:
    """What, besides the experiment, decides a unit's result."""

    profile: Profile
    seed: int
    split: str
    upstream_ckpt: str | None = None


# Settings added after results existed: at these values they stay out of a unit's identity, so that
# upgrading keeps finished units (their results were computed exactly so).
LATER_DEFAULTS = {"precision": "auto"}


def _key(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _settings(config: object) -> dict:
    """A training config as part of a unit's identity."""
    return {k: v for k, v in asdict(config).items() if LATER_DEFAULTS.get(k, object()) != v}


def finetune_unit(upstream: str, fold: int, experiment: ExperimentConfig, settings: RunSettings) -> FinetuneUnit:
    identity = ["finetune", upstream, settings.upstream_ckpt, experiment.featurizer,
                _settings(settings.profile.finetune), settings.seed, settings.split]
    return FinetuneUnit(upstream, fold, experiment.featurizer, _key(identity))


def unit_for(experiment: ExperimentConfig, fold: int, settings: RunSettings) -> Unit:
    """The unit whose test scores are this experiment's row on `fold`."""
    names = tuple(settings.profile.resolve(b) for b in experiment.branches)
    if experiment.is_finetune_row:
        return finetune_unit(names[0], fold, experiment, settings)
    sources = tuple(finetune_unit(n, fold, experiment, settings) if ft else None
                    for n, ft in zip(names, experiment.finetune, strict=True))
    identity = ["frozen", names, [s.key if s else None for s in sources], experiment.aggregator, experiment.fusion,
                experiment.featurizer, experiment.input_norm, _settings(settings.profile.frozen),
                asdict(settings.profile.ecapa), settings.profile.cache_dtype, settings.seed, settings.split,
                settings.upstream_ckpt]
    return FrozenUnit(names, sources, experiment.aggregator, experiment.fusion, experiment.featurizer,
                      experiment.input_norm, fold, _key(identity))


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
