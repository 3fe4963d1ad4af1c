"""Frozen-stage training step: hidden states from the feature cache vs. the upstream recomputed every step.

Recomputing is what s3prl's runner does with a frozen upstream (`torch.no_grad()` forward at every
step); our frozen stage reads the features that `FrozenFeatures.precompute` stored once per fold.
Both variants run the same inner loop as `benchmark.training.loop.train_unit` (batch assembly, logits,
cross-entropy, backward, gradient clipping, AdamW step) on the same duration batches of fold 1,
under a profile's batch size and ECAPA size, in one process, one after the other.

Usage: python -m bench.cache_vs_recompute [UPSTREAM ...]   (default: tiny_hubert hubert_base_random)
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import yaml
from torch import nn

from benchmark.common.seeding import isolated_rng
from benchmark.data import iemocap, splits
from benchmark.data.demo import ensure_demo_corpus
from benchmark.data.iemocap import Utterance
from benchmark.training.batching import AudioStore, duration_batches, make_batch
from benchmark.training.cache import FrozenFeatures
from benchmark.training.loop import logits_of
from benchmark.training.model import EmotionModel
from downstream.ecapa import EcapaConfig
from downstream.model import DownstreamConfig
from upstream import build_upstream
from upstream.interface import Upstream

REPO = Path(__file__).resolve().parents[1]
PROFILES_DIR = REPO / "benchmark" / "experiments" / "profiles"
BASE_HUBERT = "hubert_base_random"


@dataclass(frozen=True)
class StepSettings:
    """What a frozen-stage step depends on, read from a run profile (benchmark/experiments/profiles)."""

    profile: str
    max_batch_seconds: float
    eval_batch_seconds: float
    head_lr: float
    weight_decay: float
    grad_clip: float
    ecapa: EcapaConfig


def step_settings(profile: str) -> StepSettings:
    """The frozen-stage settings of `profile`; the paper's values where the file or a key is missing."""
    path = PROFILES_DIR / f"{profile}.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text()) if path.is_file() else {}
    frozen = data.get("frozen") or {}
    known = {f.name for f in dataclasses.fields(EcapaConfig)}
    ecapa = EcapaConfig(**{k: v for k, v in (data.get("ecapa") or {}).items() if k in known})
    return StepSettings(profile, float(frozen.get("max_batch_seconds", 100.0)),
                        float(frozen.get("eval_batch_seconds", 200.0)), float(frozen.get("head_lr", 1e-3)),
                        float(frozen.get("weight_decay", 0.01)), float(frozen.get("grad_clip", 1.0)), ecapa)


def build_base_hubert(seed: int = 0) -> Upstream:
    """HuBERT Base (transformers `HubertConfig()` defaults: 12 layers, 768 wide, 94.4M parameters),
    randomly initialised (nothing is downloaded), wrapped like the registered HuBERT upstreams."""
    from transformers import HubertConfig, HubertModel

    from upstream.hf_speech import SpeechModelUpstream

    with isolated_rng(seed):
        model = HubertModel(HubertConfig()).eval()
    upstream = SpeechModelUpstream(model)
    upstream.name = BASE_HUBERT
    return upstream


UPSTREAMS: dict[str, Callable[[], Upstream]] = {BASE_HUBERT: build_base_hubert}


def make_upstream(name: str) -> Upstream:
    return UPSTREAMS[name]() if name in UPSTREAMS else build_upstream(name)


@dataclass(frozen=True)
class StepTimes:
    upstream: str
    downstream: str
    profile: str
    cached_s: float  # seconds per step, features from the cache
    recompute_s: float  # seconds per step, upstream forward at every step
    cache_build_s: float  # FrozenFeatures.precompute over the measured utterances
    audio_s: float  # seconds of audio per measured step
    steps: int
    parameters_m: float

    @property
    def speedup(self) -> float:
        return self.recompute_s / self.cached_s


def pick_batches(utterances: Sequence[Utterance], max_batch_seconds: float, count: int) -> list[list[Utterance]]:
    """`count` training batches (seed-0 duration batching) that are at least 80 % full, largest first
    if there are too few such; full batches are what dominates an epoch's time."""
    durations = [u.duration for u in utterances]
    batches = duration_batches(durations, max_batch_seconds, torch.Generator().manual_seed(0), min_batch_size=2)
    padded = [len(b) * max(durations[i] for i in b) for b in batches]
    full = [b for b, p in zip(batches, padded) if p >= 0.8 * max_batch_seconds]
    if len(full) < count:
        full = [b for _, b in sorted(zip(padded, batches), key=lambda pair: -pair[0])]
    return [[utterances[i] for i in b] for b in full[:count]]


def _train_step(model: EmotionModel, batch_utterances: Sequence[Utterance], store: AudioStore,
                features: Sequence[FrozenFeatures] | None, optimizer: torch.optim.Optimizer, clip: float,
                precision: str = "auto") -> None:
    """One step of `train_unit`'s inner loop (no gradient accumulation)."""
    batch = make_batch(batch_utterances, store)
    logits = logits_of(model, batch, features, precision)
    loss = nn.functional.cross_entropy(logits, batch.labels)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _seconds_per_step(model: EmotionModel, batches: Sequence[Sequence[Utterance]], store: AudioStore,
                      features: Sequence[FrozenFeatures] | None, settings: StepSettings, passes: int,
                      warmup: bool, precision: str = "auto") -> float:
    """Median over `passes` of the mean step time over `batches` (after one unmeasured step if `warmup`)."""
    optimizer = torch.optim.AdamW(model.downstream.parameters(), lr=settings.head_lr, weight_decay=settings.weight_decay)
    model.train()
    model.upstreams.eval()  # a frozen upstream always runs as at inference
    if warmup:
        _train_step(model, batches[0], store, features, optimizer, settings.grad_clip, precision)
    per_pass = []
    for _ in range(passes):
        started = time.perf_counter()
        for batch in batches:
            _train_step(model, batch, store, features, optimizer, settings.grad_clip, precision)
        per_pass.append((time.perf_counter() - started) / len(batches))
    return statistics.median(per_pass)


def measure(upstream_name: str, downstreams: Sequence[str], settings: StepSettings, fold: splits.Fold,
            store: AudioStore, steps: int, cached_passes: int = 3, recompute_passes: int = 1,
            bf16_for: Sequence[str] = ()) -> list[StepTimes]:
    """Per-step seconds of the frozen stage with and without the cache, on the same `steps` batches,
    for each downstream (the cache is built once per upstream, as in a run). Downstreams in `bf16_for`
    are also timed from the cache under bf16 autocast (profile `precision: bf16`), as "<name>_bf16",
    against the same float32 recomputation."""
    upstream = make_upstream(upstream_name)
    upstream.requires_grad_(False)
    batches = pick_batches(fold.train, settings.max_batch_seconds, steps)
    utterances = [u for b in batches for u in b]
    for u in utterances:
        store.get(u)  # audio read before any timing, as after the first epoch of training
    features = FrozenFeatures(upstream, store, settings.eval_batch_seconds, "last", None, "float16")
    started = time.perf_counter()
    features.precompute(utterances)
    cache_build = time.perf_counter() - started
    audio = sum(u.duration for u in utterances) / len(batches)
    parameters = sum(p.numel() for p in upstream.parameters()) / 1e6
    results = []
    for downstream in downstreams:
        config = DownstreamConfig(aggregator=downstream, input_norm="global" if upstream_name == "fbank" else "none", ecapa=settings.ecapa)
        with isolated_rng(0):
            cached_model = EmotionModel([upstream], config, stored_layers=[1])  # the cache keeps the last layer
        with isolated_rng(0):
            recompute_model = EmotionModel([upstream], config)
            cached = _seconds_per_step(cached_model, batches, store, [features], settings, cached_passes, warmup=True)
            recompute = _seconds_per_step(recompute_model, batches, store, None, settings, recompute_passes,
                                          warmup=recompute_passes > 1)
        results.append(StepTimes(upstream_name, downstream, settings.profile, cached, recompute, cache_build, audio,
                                 len(batches), parameters))
        if downstream in bf16_for:
            with isolated_rng(0):
                bf16_model = EmotionModel([upstream], config, stored_layers=[1])
                bf16 = _seconds_per_step(bf16_model, batches, store, [features], settings, cached_passes, warmup=True,
                                         precision="bf16")
            results.append(StepTimes(upstream_name, f"{downstream}_bf16", settings.profile, bf16, recompute,
                                     cache_build, audio, len(batches), parameters))
    return results


def demo_corpus(data_root: Path = REPO / "data") -> Path:
    """The demo corpus that run_benchmark.py uses by default (generated under `data_root` when missing)."""
    return ensure_demo_corpus(data_root)


def demo_fold(corpus: Path | None = None) -> splits.Fold:
    """Fold 1 (SUPERB split, the runner's default) of `corpus` (default: the demo corpus)."""
    return splits.folds(iemocap.load(corpus or demo_corpus()), "superb", (1,))[0]


# Upstream → (profile, steps, cached passes, recompute passes): the tiny model runs the demo's
# settings, the base-sized one the paper's (100 s batches, ECAPA with 512 channels).
PLAN: dict[str, tuple[str, int, int, int]] = {"tiny_hubert": ("demo", 8, 3, 3), BASE_HUBERT: ("paper", 2, 3, 1)}


def main(names: list[str]) -> None:
    fold, store = demo_fold(), AudioStore()
    for name in names:
        profile, steps, cached_passes, recompute_passes = PLAN.get(name, ("demo", 8, 3, 3))
        for t in measure(name, ("mean", "ecapa"), step_settings(profile), fold, store, steps, cached_passes,
                         recompute_passes):
            print(f"{name} ({t.parameters_m:.2f}M) + {t.downstream} [{profile}]: step with cache {t.cached_s:.3f} s, "
                  f"recomputing the upstream {t.recompute_s:.3f} s, {t.speedup:.1f}x "
                  f"({t.steps} steps of {t.audio_s:.0f} s audio; cache built in {t.cache_build_s:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:] or ["tiny_hubert", BASE_HUBERT])
