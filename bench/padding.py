"""Padding ratio (padded / all frames) of duration batching vs fixed-count batching.

Both batchings hold the same number of utterances per batch on average: the fixed batch size is
the mean size of the duration batches. Fixed-count batches take utterances in random order, as
s3prl's recipe does (a shuffled DataLoader); duration batches are what our trainer uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from benchmark.training.batching import duration_batches, fixed_batches, padding_ratio

# IEMOCAP's 5531 four-class utterances: mean ≈ 4.5 s, median ≈ 3.4 s, 0.6–35 s, right-skewed.
IEMOCAP_UTTERANCES = 5531
IEMOCAP_MEAN_S = 4.5
IEMOCAP_MEDIAN_S = 3.4
IEMOCAP_RANGE_S = (0.6, 35.0)


def iemocap_like_durations(n: int = IEMOCAP_UTTERANCES, seed: int = 0) -> list[float]:
    """Log-normal durations with IEMOCAP's mean and median, redrawn until inside its range."""
    sigma = float(np.sqrt(2.0 * np.log(IEMOCAP_MEAN_S / IEMOCAP_MEDIAN_S)))  # mean / median = exp(σ² / 2)
    rng = np.random.default_rng(seed)
    low, high = IEMOCAP_RANGE_S
    values = np.empty(0)
    while values.size < n:
        draw = rng.lognormal(np.log(IEMOCAP_MEDIAN_S), sigma, size=2 * n)
        values = np.concatenate([values, draw[(draw >= low) & (draw <= high)]])
    return values[:n].round(3).tolist()


@dataclass(frozen=True)
class PaddingResult:
    by_duration: float  # padded share of all frames, 0..1
    fixed: float
    fixed_batch_size: int
    duration_batches: int


def compare(durations: Sequence[float], max_batch_seconds: float, seed: int = 0) -> PaddingResult:
    """Padding of duration batches (cap `max_batch_seconds`, ≥ 2 per batch, as in training) and of
    fixed-count batches of the same mean size in random order."""
    generator = torch.Generator().manual_seed(seed)
    batches = duration_batches(durations, max_batch_seconds, generator, min_batch_size=2)
    size = max(1, round(len(durations) / len(batches)))
    fixed = fixed_batches(len(durations), size, torch.Generator().manual_seed(seed))
    return PaddingResult(padding_ratio(batches, durations), padding_ratio(fixed, durations), size, len(batches))
