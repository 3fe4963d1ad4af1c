"""Padding figures of the bench: the IEMOCAP-like duration model and the batching comparison."""
from __future__ import annotations

import numpy as np

from bench.padding import IEMOCAP_RANGE_S, IEMOCAP_UTTERANCES, compare, iemocap_like_durations


def test_iemocap_like_durations_match_the_corpus_statistics() -> None:
    durations = np.array(iemocap_like_durations())
    assert len(durations) == IEMOCAP_UTTERANCES
    assert IEMOCAP_RANGE_S[0] <= durations.min() and durations.max() <= IEMOCAP_RANGE_S[1]
    assert abs(durations.mean() - 4.5) < 0.2
    assert abs(np.median(durations) - 3.4) < 0.2
    assert durations.mean() > np.median(durations)  # right-skewed
    assert iemocap_like_durations(seed=0) == iemocap_like_durations(seed=0)


def test_duration_batching_pads_far_less_than_fixed_count() -> None:
    durations = iemocap_like_durations()
    for cap in (16.0, 100.0):
        result = compare(durations, cap)
        assert result.by_duration <= 0.15
        assert result.fixed > 3 * result.by_duration
        assert result.fixed_batch_size == round(len(durations) / result.duration_batches)


def test_equal_durations_need_no_padding() -> None:
    result = compare([2.0] * 40, 16.0)
    assert result.by_duration == 0.0 and result.fixed == 0.0
