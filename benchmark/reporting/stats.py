"""How sure is a score? Bootstrap intervals, paired tests and Holm's correction on per-utterance outcomes.

Every statistic here is the table's headline: the mean over folds of each fold's WA (accuracy) or UA
(mean recall over the classes present). Both depend only on how many utterances of each (fold, class)
a model got right, so resampling utterances with replacement *within each fold* (the stratified
bootstrap) is drawn exactly as one multinomial per fold over those counts: no (resamples × utterances)
index matrix, and the same distribution.

Paired comparisons of two experiments use the same test utterances:

- WA and UA: a paired sign-flip permutation test of the difference that is shown, the fold-mean one
  (each utterance's two predictions swapped at random); only discordant utterances move the
  statistic, so the swaps of a (fold, class) group are one binomial draw. (An exact McNemar test on
  utterances pooled over folds would test another statistic: with unequal fold sizes it can favour
  the other row than the fold-mean difference beside it.)
- the interval of a difference resamples the utterance pairs within each fold.

Randomness comes from `numpy.random.default_rng` alone, seeded by the configured seed and what is
drawn: (seed, 0, experiment) for a row, (seed, 1 | 2 | 3, lower id, higher id) for a pair. Same seed, same numbers, and a
row's or pair's numbers do not depend on which other rows are in the table.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest

Seed = int | Sequence[int]
"""Anything `numpy.random.default_rng` takes as entropy: an int, or a sequence of ints."""


@dataclass(frozen=True)
class StatsConfig:
    """Settings of every statistic in a report; recorded beside the results."""

    resamples: int = 10_000  # bootstrap resamples and permutations
    seed: int = 0
    level: float = 0.95  # confidence level of the intervals
    alpha: float = 0.05  # significance level, after Holm's correction

    def __post_init__(self) -> None:
        if self.resamples < 1 or self.seed < 0:
            raise ValueError(f"resamples must be at least 1 and seed at least 0, got {self.resamples} and {self.seed}")
        if not 0 < self.level < 1 or not 0 < self.alpha < 1:
            raise ValueError(f"level and alpha must lie in (0, 1), got {self.level} and {self.alpha}")


@dataclass(frozen=True)
class Outcomes:
    """One experiment's test predictions, all folds together: arrays of shape (N,)."""

    ids: np.ndarray  # utterance ids (str)
    folds: np.ndarray  # fold of each utterance (int)
    labels: np.ndarray  # true class index
    predictions: np.ndarray  # predicted class index

    @property
    def correct(self) -> np.ndarray:
        return self.labels == self.predictions

    def take(self, index: np.ndarray) -> "Outcomes":
        return Outcomes(self.ids[index], self.folds[index], self.labels[index], self.predictions[index])


def align(a: Outcomes, b: Outcomes) -> tuple[Outcomes, Outcomes]:
    """Both experiments restricted to the (fold, utterance) pairs they share, in the same order."""
    index_b = {key: i for i, key in enumerate(zip(b.folds.tolist(), b.ids.tolist()))}
    pairs = [(i, index_b[key]) for i, key in enumerate(zip(a.folds.tolist(), a.ids.tolist())) if key in index_b]
    if not pairs:
        raise ValueError("the two experiments share no test utterance (different folds?); nothing to compare")
    ia, ib = (np.asarray(p, dtype=np.int64) for p in zip(*pairs))
    if not np.array_equal(a.labels[ia], b.labels[ib]):
        raise ValueError("the same test utterance has different labels in the two experiments; were they run on "
                         "different corpora? compare only results of one corpus")
    return a.take(ia), b.take(ib)


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Fold numbers → 0..F-1, and F."""
    _, codes = np.unique(values, return_inverse=True)
    return codes, int(codes.max()) + 1 if codes.size else 0


def stratified_counts(strata: ArrayLike, categories: ArrayLike, num_categories: int, resamples: int,
                      seed: Seed) -> np.ndarray:
    """Counts per (stratum, category) of `resamples` bootstrap samples: (resamples, S, num_categories).

    Each stratum's items are drawn with replacement as many times as it has items; only the counts
    per category matter, so each stratum is one multinomial draw with its observed frequencies.
    """
    codes, num_strata = _codes(np.asarray(strata))
    categories = np.asarray(categories, dtype=np.int64)
    rng = np.random.default_rng(seed)
    out = np.zeros((resamples, num_strata, num_categories), dtype=np.int64)
    for s in range(num_strata):
        observed = np.bincount(categories[codes == s], minlength=num_categories)
        out[:, s] = rng.multinomial(observed.sum(), observed / observed.sum(), size=resamples)
    return out


def stratified_observed(strata: ArrayLike, categories: ArrayLike, num_categories: int) -> np.ndarray:
    """Observed counts per (stratum, category): (S, num_categories)."""
    codes, num_strata = _codes(np.asarray(strata))
    flat = codes * num_categories + np.asarray(categories, dtype=np.int64)
    return np.bincount(flat, minlength=num_strata * num_categories).reshape(num_strata, num_categories)


def fold_mean_scores(hits: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WA and UA in percent, averaged over folds, from hits and support of shape (..., F, C)."""
    wa = hits.sum(-1) / support.sum(-1)
    present = support > 0
    recall = np.where(present, hits / np.maximum(support, 1), 0.0)
    ua = recall.sum(-1) / present.sum(-1)
    return 100 * wa.mean(-1), 100 * ua.mean(-1)


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


@dataclass(frozen=True)
class Interval:
    """Fold-mean WA and UA (%), and recall per class (%) pooled over folds, with bootstrap intervals.

    Recall arrays are (C,), nan for a class without test utterances.
    """

    wa: float
    wa_low: float
    wa_high: float
    ua: float
    ua_low: float
    ua_high: float
    recall: np.ndarray
    recall_low: np.ndarray
    recall_high: np.ndarray


def bootstrap_interval(o: Outcomes, num_classes: int, config: StatsConfig, seed: Seed | None = None) -> Interval:
    """Percentile intervals from resampling utterances within each fold (`seed`, default config.seed)."""
    categories = o.labels.astype(np.int64) * 2 + o.correct
    counts = stratified_counts(o.folds, categories, 2 * num_classes, config.resamples,
                               config.seed if seed is None else seed).reshape(config.resamples, -1, num_classes, 2)
    observed = stratified_observed(o.folds, categories, 2 * num_classes).reshape(-1, num_classes, 2)
    wa, ua = fold_mean_scores(counts[..., 1], counts.sum(-1))
    wa0, ua0 = fold_mean_scores(observed[..., 1], observed.sum(-1))
    pooled, pooled0 = counts.sum(1), observed.sum(0)  # (R, C, 2), (C, 2)
    support = pooled0.sum(-1)
    recall = np.where(support > 0, 100 * pooled0[:, 1] / np.maximum(support, 1), np.nan)
    low, high = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    for c in np.flatnonzero(support > 0):
        low[c], high[c] = _interval(100 * pooled[:, c, 1] / np.maximum(pooled[:, c].sum(-1), 1), config.level)
    return Interval(float(wa0), *_interval(wa, config.level), float(ua0), *_interval(ua, config.level),
                    recall, low, high)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (A right & B wrong, A wrong & B right)."""
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the order given (reject where adjusted < alpha)."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled) if len(p) else scaled
    return adjusted


def sign_flip_test(a: Outcomes, b: Outcomes, num_classes: int, resamples: int, seed: Seed,
                   metric: str = "ua") -> float:
    """Two-sided p-value of the fold-mean `metric` ("ua" | "wa") difference, pairs aligned beforehand.

    Null: per utterance, A's and B's predictions are exchangeable. p = (1 + #{|T*| ≥ |T|}) / (1 + resamples).
    """
    fold_codes, num_folds = _codes(a.folds)
    group = fold_codes * num_classes + a.labels.astype(np.int64)
    size = num_folds * num_classes
    support = np.bincount(group, minlength=size).reshape(num_folds, num_classes).astype(np.float64)
    if metric == "ua":
        weights = 1 / (num_folds * (support > 0).sum(1, keepdims=True) * np.maximum(support, 1))
    elif metric == "wa":
        weights = np.broadcast_to(1 / (num_folds * support.sum(1, keepdims=True)), support.shape)
    else:
        raise ValueError(f"metric must be 'ua' or 'wa', got {metric!r}")
    weights = weights.ravel()
    a_only = np.bincount(group[a.correct & ~b.correct], minlength=size)
    b_only = np.bincount(group[~a.correct & b.correct], minlength=size)
    observed = float(weights @ (a_only - b_only))
    discordant = a_only + b_only
    draws = 2 * np.random.default_rng(seed).binomial(discordant, 0.5, size=(resamples, size)) - discordant
    null = draws @ weights
    return float((1 + np.count_nonzero(np.abs(null) >= abs(observed) - 1e-12)) / (1 + resamples))


@dataclass(frozen=True)
class Comparison:
    """Experiment `a` against `b` on their shared test utterances; differences are a − b in points."""

    a: int
    b: int
    n: int  # shared test utterances
    wa_diff: float
    wa_low: float
    wa_high: float
    a_only: int  # utterances a got right and b wrong
    b_only: int
    p_wa: float  # sign-flip permutation of the fold-mean WA difference
    ua_diff: float
    ua_low: float
    ua_high: float
    p_ua: float  # sign-flip permutation
    p_wa_holm: float = float("nan")
    p_ua_holm: float = float("nan")

    def significant(self, metric: str, alpha: float) -> bool:
        return bool(getattr(self, f"p_{metric}_holm") < alpha)

    def swapped(self) -> "Comparison":
        """The same comparison seen from `b`: differences negated, intervals mirrored."""
        return replace(self, a=self.b, b=self.a, wa_diff=-self.wa_diff, wa_low=-self.wa_high, wa_high=-self.wa_low,
                       a_only=self.b_only, b_only=self.a_only, ua_diff=-self.ua_diff, ua_low=-self.ua_high,
                       ua_high=-self.ua_low)


def compare(a_id: int, a: Outcomes, b_id: int, b: Outcomes, num_classes: int, config: StatsConfig) -> Comparison:
    """Paired difference of two experiments: bootstrap intervals of ΔWA/ΔUA and their p-values (no Holm).

    Seeded by (config.seed, 1 | 2, lower id, higher id), so a pair's numbers do not depend on the other rows
    compared, nor on the order of the two.
    """
    if a_id > b_id:
        return compare(b_id, b, a_id, a, num_classes, config).swapped()
    a, b = align(a, b)
    # A difference of fold-mean scores needs, per (fold, class), only the support and the discordant counts.
    outcome = np.where(a.correct == b.correct, 0, np.where(a.correct, 1, 2))
    categories = a.labels.astype(np.int64) * 3 + outcome
    shape = (-1, num_classes, 3)
    counts = stratified_counts(a.folds, categories, 3 * num_classes, config.resamples, [config.seed, 1, a_id, b_id])
    counts = counts.reshape(config.resamples, *shape)
    observed = stratified_observed(a.folds, categories, 3 * num_classes).reshape(shape)
    # fold_mean_scores is linear in the hits: the scores of (a's hits − b's hits) are the differences
    wa_draws, ua_draws = fold_mean_scores(counts[..., 1] - counts[..., 2], counts.sum(-1))
    wa_diff, ua_diff = fold_mean_scores(observed[..., 1] - observed[..., 2], observed.sum(-1))
    a_only = int(np.count_nonzero(a.correct & ~b.correct))
    b_only = int(np.count_nonzero(~a.correct & b.correct))
    return Comparison(a_id, b_id, len(a.ids), float(wa_diff), *_interval(wa_draws, config.level), a_only, b_only,
                      sign_flip_test(a, b, num_classes, config.resamples, [config.seed, 3, a_id, b_id], metric="wa"),
                      float(ua_diff), *_interval(ua_draws, config.level),
                      sign_flip_test(a, b, num_classes, config.resamples, [config.seed, 2, a_id, b_id]))


def compare_all(outcomes: dict[int, Outcomes], num_classes: int, config: StatsConfig) -> list[Comparison]:
    """Every pair (in the order given), with Holm's correction over the pairs, separately for WA and UA."""
    ids = list(outcomes)
    raw = [compare(a, outcomes[a], b, outcomes[b], num_classes, config)
           for i, a in enumerate(ids) for b in ids[i + 1:]]
    if not raw:
        return []
    wa, ua = holm([c.p_wa for c in raw]), holm([c.p_ua for c in raw])
    return [replace(c, p_wa_holm=float(w), p_ua_holm=float(u)) for c, w, u in zip(raw, wa, ua)]
