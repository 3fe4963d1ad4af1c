"""Where a frozen-stage step spends its time: torch profiler table, and what-if variants timed side by side.

Usage: python -m bench.profile_step [--upstream hubert_base_random] [--downstream ecapa] [--profile paper]

The features are random tensors of the right shapes (the upstream is only built for its frame
counts), so no cache has to be computed first. Variants, each interleaved with the baseline:
  fused     AdamW(fused=True) instead of the per-parameter loop
  bf16      the downstream's forward under torch.autocast("cpu", bfloat16) (CPUs with AVX512-BF16/AMX)
  no_audio  the batch built without padding the waveforms (the cached path never reads them)
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from typing import Sequence

import torch
from torch import nn

from benchmark.common.seeding import isolated_rng
from benchmark.data.iemocap import Utterance
from benchmark.training.batching import AudioStore, make_batch
from benchmark.training.cache import FrozenFeatures
from benchmark.training.model import EmotionModel
from downstream.model import DownstreamConfig
from upstream.interface import Batch

from . import cache_vs_recompute as cvr

VARIANTS = ("baseline", "fused", "bf16", "no_audio")


def _labels_only(utterances: Sequence[Utterance]) -> Batch:
    labels = torch.tensor([u.label_index for u in utterances], dtype=torch.long)
    return Batch([u.id for u in utterances], torch.zeros(len(utterances), 1), torch.ones(len(utterances), dtype=torch.long),
                 [u.text for u in utterances], labels)


class Stepper:
    def __init__(self, model: EmotionModel, features: FrozenFeatures, store: AudioStore, settings: cvr.StepSettings,
                 variant: str) -> None:
        self.model, self.features, self.store, self.variant = model, features, store, variant
        self.clip = settings.grad_clip
        self.optimizer = torch.optim.AdamW(model.downstream.parameters(), lr=settings.head_lr,
                                           weight_decay=settings.weight_decay, fused=variant == "fused")

    def __call__(self, utterances: Sequence[Utterance]) -> None:
        batch = _labels_only(utterances) if self.variant == "no_audio" else make_batch(utterances, self.store)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.variant == "bf16" else nullcontext()
        with autocast:
            logits = cvr.logits_of(self.model, batch, [self.features])
        loss = nn.functional.cross_entropy(logits.float(), batch.labels)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def random_features(upstream, utterances: Sequence[Utterance], store: AudioStore) -> FrozenFeatures:
    """A FrozenFeatures holding random last-layer states with the upstream's frame counts."""
    features = FrozenFeatures(upstream, store, 60.0, "last", None, "float16")
    generator = torch.Generator().manual_seed(0)
    for u in utterances:
        frames = _frames(upstream, store.get(u).shape[0])
        features._features[u.id] = [torch.randn(frames, upstream.hidden_size, generator=generator).half()]
    return features


def _frames(upstream, samples: int) -> int:
    """Valid frames of `samples` (the Upstream contract's formula)."""
    field = upstream.receptive_field or upstream.downsample_rate
    return max(1, (max(samples, field) - field) // upstream.downsample_rate + 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", default=cvr.BASE_HUBERT)
    parser.add_argument("--downstream", default="ecapa")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    settings = cvr.step_settings(args.profile)
    store = AudioStore()
    batches = cvr.pick_batches(cvr.demo_fold().train, settings.max_batch_seconds, args.steps)
    upstream = cvr.make_upstream(args.upstream)
    upstream.requires_grad_(False)
    features = random_features(upstream, [u for b in batches for u in b], store)
    config = DownstreamConfig(aggregator=args.downstream, input_norm="global" if args.upstream == "fbank" else "none", ecapa=settings.ecapa)
    with isolated_rng(0):
        model = EmotionModel([upstream], config, stored_layers=[1])
    model.train()
    model.upstreams.eval()
    steppers = {v: Stepper(model, features, store, settings, v) for v in VARIANTS}
    for stepper in steppers.values():
        stepper(batches[0])  # warm-up (optimizer state, allocator)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        steppers["baseline"](batches[0])
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant, stepper in steppers.items():
            started = time.perf_counter()
            for batch in batches:
                stepper(batch)
            times[variant].append((time.perf_counter() - started) / len(batches))
    base = statistics.median(times["baseline"])
    print(f"{args.upstream} + {args.downstream} [{args.profile}], {len(batches)} steps of "
          f"{sum(u.duration for b in batches for u in b) / len(batches):.0f} s audio, median of {args.rounds} rounds:")
    for variant, values in times.items():
        median = statistics.median(values)
        print(f"  {variant:9s} {median:.3f} s/step  ({base / median:.2f}x the baseline)")


if __name__ == "__main__":
    main()
