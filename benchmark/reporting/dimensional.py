"""Scores of dimensional emotion (arousal, valence, dominance): the concordance correlation coefficient
(CCC, Lin 1989), Pearson's r and RMSE per attribute, their fold means and bootstrap intervals.

CCC = 2 cov(x, y) / (var x + var y + (mean x − mean y)²), with population (co)variances, as the
MSP-Podcast challenges and audEERING's models report it. Written here because neither scipy nor
scikit-learn has it; tested against a direct formula and against Pearson's r from scipy (CCC = r ·
2 σx σy / (σx² + σy² + (μx − μy)²)). The intervals resample utterances within each fold, as for WA/UA
(`stats`), and compare two rows by the bootstrap of their paired CCC difference.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

ATTRIBUTES = ("arousal", "valence", "dominance")
CHUNK = 50  # bootstrap resamples drawn at once


def ccc(truth: ArrayLike, predicted: ArrayLike) -> np.ndarray:
    """CCC along the last-but-one axis: (..., N, A) arrays → (..., A); 0 where both are constant."""
    x, y = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    mx, my = x.mean(-2), y.mean(-2)
    covariance = ((x - mx[..., None, :]) * (y - my[..., None, :])).mean(-2)
    denominator = x.var(-2) + y.var(-2) + (mx - my) ** 2
    return np.where(denominator > 0, 2 * covariance / np.where(denominator > 0, denominator, 1.0), 0.0)


def pearson(truth: ArrayLike, predicted: ArrayLike) -> np.ndarray:
    x, y = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    xc, yc = x - x.mean(-2, keepdims=True), y - y.mean(-2, keepdims=True)
    scale = np.sqrt((xc**2).sum(-2) * (yc**2).sum(-2))
    return np.where(scale > 0, (xc * yc).sum(-2) / np.where(scale > 0, scale, 1.0), 0.0)


def rmse(truth: ArrayLike, predicted: ArrayLike) -> np.ndarray:
    x, y = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    return np.sqrt(((x - y) ** 2).mean(-2))


@dataclass(frozen=True)
class DimensionalScores:
    """Per attribute (arousal, valence, dominance) of one fold."""

    ccc: tuple[float, ...]
    pearson: tuple[float, ...]
    rmse: tuple[float, ...]

    @property
    def ccc_mean(self) -> float:
        return float(np.mean(self.ccc))


def score_dimensional(truth: ArrayLike, predicted: ArrayLike) -> DimensionalScores:
    """(N, 3) true and predicted attributes (on one scale) → their scores."""
    return DimensionalScores(tuple(ccc(truth, predicted).tolist()), tuple(pearson(truth, predicted).tolist()),
                             tuple(rmse(truth, predicted).tolist()))


def _resampled_fold_means(folds: Sequence[tuple[np.ndarray, np.ndarray]], resamples: int,
                          rng: np.random.Generator, paired: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """(resamples, A) fold-mean CCC with utterances drawn with replacement within each fold; with
    `paired` (a second row's predictions per fold, same utterances), the difference first − second."""
    total = 0.0
    for index, (truth, predicted) in enumerate(folds):
        parts = []
        for start in range(0, resamples, CHUNK):  # (chunk, N, A) at a time: memory stays bounded for large folds
            draws = rng.integers(0, len(truth), size=(min(CHUNK, resamples - start), len(truth)))
            value = ccc(truth[draws], predicted[draws])
            if paired is not None:
                value = value - ccc(truth[draws], paired[index][draws])
            parts.append(value)
        total = total + np.concatenate(parts)
    return total / len(folds)


def fold_mean_interval(folds: Sequence[tuple[ArrayLike, ArrayLike]], resamples: int = 2_000, seed: int = 0,
                       level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold-mean CCC per attribute, then their mean, with percentile bootstrap intervals: (mean, low,
    high), each (A + 1,)."""
    arrays = [(np.asarray(t, dtype=np.float64), np.asarray(p, dtype=np.float64)) for t, p in folds]
    observed = np.mean([ccc(t, p) for t, p in arrays], axis=0)
    draws = _resampled_fold_means(arrays, resamples, np.random.default_rng(seed))
    draws = np.concatenate([draws, draws.mean(-1, keepdims=True)], -1)
    low, high = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return np.append(observed, observed.mean()), low, high


def paired_difference(folds: Sequence[tuple[ArrayLike, ArrayLike, ArrayLike]], resamples: int = 2_000,
                      seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two rows on the same utterances, per fold (truth, predicted by A, predicted by B): the fold-mean
    CCC difference A − B per attribute and of their mean (A + 1 values), its bootstrap interval, and a
    two-sided bootstrap p-value (twice the share of resampled differences on the other side of 0)."""
    arrays = [tuple(np.asarray(v, dtype=np.float64) for v in fold) for fold in folds]
    observed = np.mean([ccc(t, a) - ccc(t, b) for t, a, b in arrays], axis=0)
    observed = np.append(observed, observed.mean())
    draws = _resampled_fold_means([(t, a) for t, a, _ in arrays], resamples, np.random.default_rng(seed),
                                  paired=[b for _, _, b in arrays])
    draws = np.concatenate([draws, draws.mean(-1, keepdims=True)], -1)
    low, high = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)], axis=0)
    other_side = np.where(observed >= 0, (draws <= 0).mean(0), (draws >= 0).mean(0))
    return observed, low, high, np.minimum(1.0, 2 * other_side)


def scatter_figure(truth: ArrayLike, predicted: ArrayLike, title: str) -> Any:
    """Predicted against true value per attribute (on [0, 1]), with each attribute's CCC: one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    values = ccc(x, y)
    figure, axes = plt.subplots(1, len(ATTRIBUTES), figsize=(9.0, 3.3), sharex=True, sharey=True)
    for a, (axis, name) in enumerate(zip(axes, ATTRIBUTES)):
        axis.scatter(x[:, a], y[:, a], s=6, alpha=0.4)
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
        axis.set_title(f"{name}: CCC {values[a]:.3f}", fontsize=9)
        axis.set_xlabel("true")
    axes[0].set_ylabel("predicted")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def write_scatter(path: Path, results: Sequence[Any], kind: str, title: str) -> None:
    """`path` (PNG): the attributes of every fold's test utterances (pooled) of checkpoint `kind`."""
    from ..common.io import atomic_write_figure

    truth = np.concatenate([r.dimensional[kind]["targets"] for r in results])
    predicted = np.concatenate([r.dimensional[kind]["predictions"] for r in results])
    atomic_write_figure(path, scatter_figure(truth, predicted, title))


def unit_folds(results: Sequence[Any], kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(targets, predictions) per fold of finished units' attribute scores (`UnitResult.dimensional`)."""
    return [(np.asarray(r.dimensional[kind]["targets"]), np.asarray(r.dimensional[kind]["predictions"]))
            for r in results]


PAIRWISE_CCC_COLUMNS = ["a", "b", "n", "ccc_mean_diff", "diff_low", "diff_high", "p", "resamples", "seed"]


def pairwise_ccc_rows(rows: Sequence[Any], resamples: int = 2_000, seed: int = 0) -> list[list[object]]:
    """Every pair of rated table rows (a < b): fold-mean mean-CCC difference a − b on the same test
    utterances, its paired bootstrap interval and p-value (seeded per pair)."""
    lines: list[list[object]] = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            folds = []
            for k in sorted(set(a.folds) & set(b.folds)):
                ra, rb = a.folds[k], b.folds[k]
                if ra.test_ids != rb.test_ids:
                    raise ValueError(f"rows {a.experiment.id} and {b.experiment.id} tested other utterances in fold {k}")
                da, db = ra.dimensional[a.experiment.checkpoint], rb.dimensional[b.experiment.checkpoint]
                folds.append((da["targets"], da["predictions"], db["predictions"]))
            difference, low, high, p = paired_difference(folds, resamples, seed + 1000 * a.experiment.id + b.experiment.id)
            lines.append([a.experiment.id, b.experiment.id, sum(len(f[0]) for f in folds), f"{difference[-1]:+.3f}",
                          f"{low[-1]:+.3f}", f"{high[-1]:+.3f}", f"{p[-1]:.4f}", resamples, seed])
    return lines
