import numpy as np
import pytest
import torch

from benchmark.data import iemocap
from benchmark.training.batching import AudioStore, duration_batches, fixed_batches, make_batch, padding_ratio


def _durations(n: int = 300, seed: int = 0) -> list[float]:
    return np.random.default_rng(seed).lognormal(mean=1.3, sigma=0.6, size=n).clip(0.6, 35).tolist()


def test_duration_batches_cover_every_utterance_once_within_the_cap():
    durations = _durations()
    batches = duration_batches(durations, 30.0, torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    for batch in batches:
        longest = max(durations[i] for i in batch)
        assert len(batch) * longest <= 30.0 or len(batch) == 1


def test_duration_batching_pads_far_less_than_fixed_count():
    durations = _durations()
    by_duration = padding_ratio(duration_batches(durations, 30.0, torch.Generator().manual_seed(0)), durations)
    fixed = padding_ratio(fixed_batches(len(durations), 6, torch.Generator().manual_seed(0)), durations)
    assert by_duration < 0.1 < fixed


def test_batches_are_deterministic_given_the_generator_and_vary_with_it():
    durations = _durations()
    first = duration_batches(durations, 30.0, torch.Generator().manual_seed(3))
    assert first == duration_batches(durations, 30.0, torch.Generator().manual_seed(3))
    assert first != duration_batches(durations, 30.0, torch.Generator().manual_seed(4))


def test_padding_ratio_by_hand():
    assert padding_ratio([[0, 1]], [1.0, 3.0]) == pytest.approx(1 - 4 / 6)


def test_make_batch_pads_with_zeros_and_keeps_lengths(tone_corpus):
    utterances = iemocap.load(tone_corpus)[:3]
    store = AudioStore()
    batch = make_batch(utterances, store)
    assert batch.wavs.shape == (3, int(batch.wav_lens.max()))
    for row, u in enumerate(utterances):
        n = int(batch.wav_lens[row])
        assert n == round(u.duration * 16000)
        assert torch.equal(batch.wavs[row, :n], store.get(u))
        assert not batch.wavs[row, n:].any()
    assert batch.labels.tolist() == [u.label_index for u in utterances]
    assert batch.texts == [u.text for u in utterances]


def test_minimum_batch_size_is_kept():
    durations = [1.0, 1.0, 1.0, 20.0, 25.0, 30.0, 2.0]
    batches = duration_batches(durations, 10.0, torch.Generator().manual_seed(0), min_batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert all(len(b) >= 2 for b in batches)
    assert len(duration_batches(durations, 10.0)) > len(batches)  # singletons exist without the minimum
