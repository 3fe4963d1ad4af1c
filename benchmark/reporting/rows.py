"""A table row: one experiment's finished units, fold by fold, and what is computed from them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .dimensional import fold_mean_interval, unit_folds
from .metrics import score
from .results import UnitResult
from .stats import Outcomes, StatsConfig

CCC_RESAMPLES = 2_000  # at most, for the CCC bootstrap (each resample scores every attribute of every fold)


class ReportedExperiment(Protocol):
    """What a table needs to know of an experiment (`benchmark.experiments.ExperimentConfig` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def description(self) -> str: ...
    @property
    def set(self) -> str: ...
    @property
    def branches(self) -> tuple[str, ...]: ...
    @property
    def checkpoint(self) -> str: ...  # "best" | "average": which checkpoint's scores the row reports
    @property
    def featurizer(self) -> str | int: ...


@dataclass(frozen=True)
class Row:
    experiment: ReportedExperiment
    folds: dict[int, UnitResult]
    checkpoints: dict[int, Path] = field(default_factory=dict)  # fold → weights file of the reported checkpoint
    ran: str = ""  # the upstreams that actually ran, e.g. a demo stand-in spelled out (`outputs.ran_as`)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set of the row's results (the corpus' classes, in the classifier's order)."""
        return tuple(next(iter(self.folds.values())).labels)

    def scores(self, fold: int):
        return self.folds[fold].scores[self.experiment.checkpoint]

    @property
    def classified(self) -> bool:
        """Whether the row predicts classes (a dimensional-only row has attribute scores alone)."""
        return all(self.scores(k).predictions for k in self.folds)

    @property
    def rated(self) -> bool:
        """Whether the row's reported checkpoint has attribute (CCC) scores on every fold."""
        return all(self.folds[k].dimensional.get(self.experiment.checkpoint) for k in self.folds)

    def fold_mean(self, metric: str) -> float:
        """The mean over folds of the reported checkpoint's "wa", "ua" (%) or "ccc_mean"."""
        if metric == "ccc_mean":
            return float(np.mean([self.folds[k].dimensional[self.experiment.checkpoint]["ccc_mean"] for k in self.folds]))
        return float(np.mean([getattr(self.scores(k), metric) for k in self.folds]))

    def ccc_interval(self, stats: StatsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fold-mean CCC per attribute and their mean (the last entry), with the bootstrap interval's bounds."""
        results = [self.folds[k] for k in sorted(self.folds)]
        return fold_mean_interval(unit_folds(results, self.experiment.checkpoint), min(stats.resamples, CCC_RESAMPLES),
                                  stats.seed, stats.level)

    def outcomes(self) -> Outcomes:
        """Per-utterance test outcomes of the reported checkpoint, all folds together."""
        folds = sorted(self.folds)
        return Outcomes(np.array([i for k in folds for i in self.folds[k].test_ids], dtype=str),
                        np.concatenate([np.full(len(self.folds[k].test_ids), k) for k in folds]),
                        np.concatenate([np.asarray(self.folds[k].test_labels, dtype=np.int64) for k in folds]),
                        np.concatenate([np.asarray(self.scores(k).predictions, dtype=np.int64) for k in folds]))

    def pooled(self) -> tuple[float, float, np.ndarray]:
        labels = np.concatenate([r.test_labels for r in self.folds.values()])
        predictions = np.concatenate([self.scores(k).predictions for k in self.folds])
        pooled = score(labels, predictions, len(self.labels))
        return 100 * pooled.wa, 100 * pooled.ua, pooled.confusion
