"""Frozen-stage epoch time: features from the cache vs. the upstream recomputed at every step.

Usage: python bench/cache_vs_recompute.py [UPSTREAM ...]   (default: tiny_hubert fbank; demo corpus)
Prints one line per upstream with both times and their ratio (measured in the same process).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmark.batching import AudioStore, duration_batches, fixed_batches, padding_ratio
from benchmark.data import iemocap, splits
from benchmark.data.demo import ensure_demo_corpus
from benchmark.model import EmotionModel
from benchmark.seeding import isolated_rng
from benchmark.stages import frozen_feature_stores
from benchmark.train import TrainConfig, train_unit
from downstream.model import DownstreamConfig
from upstream import build_upstream

CONFIG = TrainConfig(epochs=1, head_lr=1e-3, max_batch_seconds=16.0, top_k=1)


def epoch_seconds(name: str, fold: splits.Fold, store: AudioStore, cached: bool) -> float:
    with isolated_rng(0) as generator, tempfile.TemporaryDirectory() as tmp:
        upstream = build_upstream(name)
        model = EmotionModel([upstream], DownstreamConfig(input_norm=name == "fbank"))
        features = frozen_feature_stores([upstream], store, Path(tmp), "all", "float16", 60.0) if cached else None
        for feature_store in features or []:
            feature_store.precompute([*fold.train, *fold.valid])  # once per fold, before any epoch
        started = time.perf_counter()
        train_unit(model, fold.train, fold.valid, CONFIG, Path(tmp), generator, store, features, desc=name)
        return time.perf_counter() - started


def main(names: list[str]) -> None:
    utterances = iemocap.load(ensure_demo_corpus(Path("data")))
    fold = splits.folds(utterances, "superb", (1,))[0]
    store = AudioStore()
    durations = [u.duration for u in fold.train]
    by_duration = padding_ratio(duration_batches(durations, CONFIG.max_batch_seconds, None, 2), durations)
    mean_batch = len(durations) / len(duration_batches(durations, CONFIG.max_batch_seconds, None, 2))
    fixed = padding_ratio(fixed_batches(len(durations), round(mean_batch)), durations)
    print(f"padding ratio on fold 1 train: duration batching {100 * by_duration:.1f} %, "
          f"fixed {round(mean_batch)} per batch {100 * fixed:.1f} %")
    for name in names:
        recompute = epoch_seconds(name, fold, store, cached=False)
        cache = epoch_seconds(name, fold, store, cached=True)
        print(f"{name}: epoch with cache {cache:.2f} s, recomputing the upstream {recompute:.2f} s, "
              f"ratio {recompute / cache:.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or ["tiny_hubert", "fbank"])
