"""The frozen-stage step measurement (no timing assertions: only that both paths run and report)."""
from __future__ import annotations

from pathlib import Path

from bench import cache_vs_recompute as cvr
from benchmark.training.batching import AudioStore


def test_profiles_give_the_step_settings() -> None:
    demo, paper = cvr.step_settings("demo"), cvr.step_settings("paper")
    assert paper.max_batch_seconds >= demo.max_batch_seconds > 0
    assert paper.ecapa.channels == 512
    missing = cvr.step_settings("no-such-profile")
    assert missing.max_batch_seconds == 100.0 and missing.ecapa.channels == 512


def test_batches_are_full_and_distinct(tone_corpus: Path) -> None:
    fold = cvr.demo_fold(tone_corpus)
    batches = cvr.pick_batches(fold.train, 4.0, 3)
    assert len(batches) == 3
    ids = [u.id for b in batches for u in b]
    assert len(ids) == len(set(ids))
    assert all(len(b) >= 2 for b in batches)


def test_measure_reports_both_paths(tone_corpus: Path) -> None:
    fold = cvr.demo_fold(tone_corpus)
    settings = cvr.step_settings("demo")
    results = cvr.measure("tiny_hubert", ("mean",), settings, fold, AudioStore(), steps=2, cached_passes=1,
                          recompute_passes=1)
    (t,) = results
    assert t.upstream == "tiny_hubert" and t.downstream == "mean" and t.steps == 2
    assert t.cached_s > 0 and t.recompute_s > 0 and t.cache_build_s > 0 and t.audio_s > 0


def test_base_hubert_is_base_sized() -> None:
    upstream = cvr.build_base_hubert()
    assert upstream.num_layers == 13 and upstream.hidden_size == 768
    assert 94e6 < sum(p.numel() for p in upstream.parameters()) < 96e6
