import numpy as np
import pytest
import torch

from bench.padding import iemocap_like_durations
from benchmark.data import iemocap
from benchmark.experiments.definitions import Profile
from benchmark.runner import RunRequest, run
from benchmark.training import loop
from benchmark.training.batching import AudioStore, duration_batches, fixed_batches, make_batch, padding_ratio
from benchmark.training.config import TrainConfig


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


@pytest.mark.parametrize("max_seconds", [48.0, 100.0])
def test_jittered_batches_change_between_epochs_and_stay_tight(max_seconds):
    """IEMOCAP-like durations: sorted batches repeat epoch after epoch (most batches identical);
    ±3 % jitter of the sort key changes almost every batch while padding stays under 5 % of frames."""
    durations = list(iemocap_like_durations())
    default_jitter = TrainConfig().batch_jitter

    def two_epochs(jitter: float) -> tuple[list[list[int]], list[list[int]]]:
        generator = torch.Generator().manual_seed(0)
        return tuple(duration_batches(durations, max_seconds, generator, 2, jitter) for _ in range(2))

    def unchanged(first, second) -> float:
        members = {frozenset(b) for b in first}
        return sum(frozenset(b) in members for b in second) / len(second)

    sorted_only = two_epochs(0.0)
    assert unchanged(*sorted_only) > 0.7  # what duration batching did before: the same batch-mates every epoch
    first, second = two_epochs(default_jitter)
    assert unchanged(first, second) < 0.02
    for batches in (first, second):
        assert sorted(i for b in batches for i in b) == list(range(len(durations)))
        assert padding_ratio(batches, durations) <= 0.05
        over = [b for b in batches if len(b) * max(durations[i] for i in b) > max_seconds and len(b) > 2]
        assert len(over) <= 1  # only the batch that a last, short remainder joins


def test_the_training_loop_draws_new_batches_every_epoch(tone_corpus, tmp_path, monkeypatch):
    drawn: list[list[list[int]]] = []

    def recording(*args, **kwargs):
        batches = duration_batches(*args, **kwargs)
        if len(args) > 2 and args[2] is not None:  # with a generator: the training plan of an epoch
            drawn.append(batches)
        return batches

    monkeypatch.setattr(loop, "duration_batches", recording)
    run(RunRequest(data=tone_corpus, folds=(1,), out=tmp_path, profile=Profile(
        name="quick", frozen=TrainConfig(epochs=3, max_batch_seconds=6.0, top_k=1))))
    assert len(drawn) == 3 and drawn[0] != drawn[1] != drawn[2]
    assert {frozenset(b) for b in drawn[0]} != {frozenset(b) for b in drawn[1]}
