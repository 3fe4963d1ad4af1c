"""Host time per stage-2 step (batch assembly + copy) before/after, beside the model step it feeds.

Base HuBERT features (768-dim, last layer, float16 cache, 50 frames/s) of IEMOCAP-like durations,
batches of the paper profile's `max_batch_seconds`. "Before" is the loop as it was: the waveform
batch built and padded although the features come from the cache, then the features padded row by
row in Python into float32. "After" is `FrozenFeatures.outputs`: `pad_sequence` in the stored dtype,
no waveform (and, towards a GPU, pinned memory and a non-blocking copy). The model step is ECAPA-512
forward + backward + AdamW on one such batch, on this machine's device.

    python -m bench.stage2_host
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.data.iemocap import Utterance
from benchmark.training.batching import AudioStore, duration_batches, make_batch
from benchmark.training.cache import pad_outputs
from benchmark.training.device import default_device
from downstream.ecapa import EcapaConfig
from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel

from .cache_vs_recompute import step_settings
from .padding import iemocap_like_durations

FRAME_RATE, HIDDEN, SAMPLE_RATE = 50, 768, 16_000


@dataclass(frozen=True)
class HostTimes:
    batches: int
    before_ms: float  # per step: waveform batch + Python row-by-row feature padding (float32)
    after_ms: float  # per step: FrozenFeatures.outputs path, no waveform
    model_step_ms: float  # ECAPA-512 forward + backward + optimizer step on `device`
    device: str

    @property
    def speedup(self) -> float:
        return self.before_ms / self.after_ms


class _InMemoryStore(AudioStore):
    """Waveforms held as int16 without files: what AudioStore keeps after reading them."""

    def __init__(self, utterances: list[Utterance], seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        for u in utterances:
            n = round(u.duration * SAMPLE_RATE)
            self._wavs[u.id] = (torch.randn(n, generator=generator) * 3000).to(torch.int16)


def cached_feature_ecapa(hidden: int, ecapa: EcapaConfig, device: torch.device) -> DownstreamModel:
    """The stage-2 downstream (ECAPA + linear) on one stored layer of `hidden`-dim, 50 frames/s features."""
    return DownstreamModel(DownstreamConfig(aggregator="ecapa", ecapa=ecapa),
                           [BranchSpec(1, hidden, SAMPLE_RATE // FRAME_RATE)]).to(device)


def _old_pad(per_utterance: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    lengths = [layers[0].shape[0] for layers in per_utterance]
    padded = torch.zeros(len(per_utterance), max(lengths), per_utterance[0][0].shape[-1])
    for row, layers in enumerate(per_utterance):
        padded[row, : layers[0].shape[0]] = layers[0]
    return [padded]


def measure(batches_to_time: int = 20, model_steps: int = 2, seed: int = 0, utterances_total: int = 1200) -> HostTimes:
    settings = step_settings("paper")
    durations = iemocap_like_durations(utterances_total, seed)
    utterances = [Utterance(f"u{i:05d}", Path(f"u{i:05d}.wav"), "neu", 1, "Ses01F", "F", "", d)
                  for i, d in enumerate(durations)]
    generator = torch.Generator().manual_seed(seed)
    features = {u.id: [torch.randn(max(1, int(u.duration * FRAME_RATE)), HIDDEN, generator=generator).half()]
                for u in utterances}
    store = _InMemoryStore(utterances, seed)
    plan = duration_batches(durations, settings.max_batch_seconds, generator, min_batch_size=2)[:batches_to_time]
    device = default_device()

    def before(indices: list[int]) -> torch.Tensor:
        batch = make_batch([utterances[i] for i in indices], store)
        return _old_pad([features[uid] for uid in batch.ids])[0].to(device)

    def after(indices: list[int]) -> torch.Tensor:
        batch = make_batch([utterances[i] for i in indices], store, audio=False)
        return pad_outputs([features[uid] for uid in batch.ids], device=device).hidden_states[0]

    timings = {}
    for name, assemble in (("before", before), ("after", after)):
        assemble(plan[0])  # warm-up
        started = time.perf_counter()
        for indices in plan:
            assemble(indices)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = 1000 * (time.perf_counter() - started) / len(plan)
    downstream = cached_feature_ecapa(HIDDEN, settings.ecapa, device)
    optimizer = torch.optim.AdamW(downstream.parameters(), lr=settings.head_lr)
    largest = max(plan, key=len)
    step_times = []
    for _ in range(model_steps + 1):
        output = pad_outputs([features[utterances[i].id] for i in largest], device=device)
        labels = torch.zeros(len(largest), dtype=torch.long, device=device)
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(downstream([output]), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_times.append(1000 * (time.perf_counter() - started))
    return HostTimes(len(plan), timings["before"], timings["after"], min(step_times[1:]), device.type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--model-steps", type=int, default=2)
    t = measure(parser.parse_args().batches, parser.parse_args().model_steps)
    print(f"{t.batches} batches on {t.device}: host {t.before_ms:.1f} ms before, {t.after_ms:.1f} ms after "
          f"({t.speedup:.1f}x); model step {t.model_step_ms:.0f} ms")


if __name__ == "__main__":
    main()
