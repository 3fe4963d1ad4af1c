"""A ready check for a GPU (≤ 5 min): randomly initialised HuBERT Large fine-tuned as stage 1 does, then
the stage-2 ECAPA-512 step from cached features.

Measures, on this machine's device and precision: stage-1 step time and throughput (seconds of audio
per second), model FLOP utilisation (achieved training FLOP/s over the device's peak: 6 FLOPs per
trainable-parameter token for the transformer, 2 per frozen conv multiply-add forward only, plus
attention's 12·T·H per token and layer), peak GPU memory beside `--estimate`'s figure for the same
batch, and the stage-2 step time. `--size tiny` runs the same code with the tiny stand-in (CPU, tests).

    python -m bench.gpu_check                     # HuBERT Large, bf16 on CUDA
    python -m bench.gpu_check --size tiny --steps 2
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import torch

from benchmark.common.seeding import isolated_rng
from benchmark.experiments.estimate import finetune_activations
from benchmark.training.cache import pad_outputs
from benchmark.training.device import autocast, default_device
from benchmark.training.model import EmotionModel
from downstream.ecapa import EcapaConfig
from downstream.model import DownstreamConfig
from upstream.architecture import measure as measure_architecture
from upstream.hf_speech import SpeechModelUpstream
from upstream.interface import Batch

from .stage2_host import cached_feature_ecapa

LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, layerdrop=0.0,
             apply_spec_augment=False)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
SAMPLE_RATE, FRAME_RATE = 16_000, 50


@dataclass(frozen=True)
class GpuCheck:
    device: str
    precision: str
    parameters_m: float
    batch_seconds: float
    stage1_step_s: float
    audio_seconds_per_second: float
    achieved_tflops: float
    peak_tflops: float | None
    mfu: float | None
    peak_memory_gb: float | None
    estimated_memory_gb: float
    stage2_step_s: float


def _model(size: str) -> torch.nn.Module:
    from transformers import HubertConfig, HubertModel

    from upstream.tiny import tiny_config

    config = HubertConfig(**LARGE) if size == "large" else tiny_config("hubert")
    with isolated_rng(0):
        return SpeechModelUpstream(HubertModel(config))


def _training_flops(upstream: SpeechModelUpstream, samples_per_row: int, rows: int) -> float:
    """FLOPs of one training step (see the module docstring)."""
    config = upstream.model.config
    tokens = rows * (samples_per_row // 320)
    trainable = sum(p.numel() for p in upstream.parameters() if p.requires_grad)
    attention = 12 * (samples_per_row // 320) * config.hidden_size * config.num_hidden_layers
    conv, length = 0.0, samples_per_row
    channels_in = 1
    for dim, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride):
        length = (length - kernel) // stride + 1
        conv += 2 * channels_in * dim * kernel * length * rows
        channels_in = dim
    return 6 * trainable * tokens + attention * tokens + conv


def _peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)


def run_check(size: str = "large", steps: int = 8, batch_seconds: float = 100.0, utterance_seconds: float = 5.0,
              precision: str = "bf16", device: torch.device | None = None) -> GpuCheck:
    device = device or default_device()
    upstream = _model(size)
    model = EmotionModel([upstream], DownstreamConfig(featurizer="weighted", aggregator="mean")).to(device)
    upstream.requires_grad_(True)
    upstream.freeze_feature_encoder()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rows, samples = max(1, int(batch_seconds / utterance_seconds)), int(utterance_seconds * SAMPLE_RATE)
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(rows, samples, generator=generator) * 0.1
    batch = Batch([f"u{i}" for i in range(rows)], wavs, torch.full((rows,), samples), [""] * rows,
                  torch.zeros(rows, dtype=torch.long)).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    times = []
    for _ in range(steps + 1):  # the first step warms up (kernels, allocator)
        started = time.perf_counter()
        with autocast(device, precision):  # type: ignore[arg-type]
            loss = torch.nn.functional.cross_entropy(model(batch).float(), batch.labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    step = sorted(times[1:])[len(times[1:]) // 2]
    flops = _training_flops(upstream, samples, rows) / step
    peak = _peak_tflops(device)
    size_info = measure_architecture(lambda: _model(size))
    trainable = size_info.trainable_when_finetuned
    estimate = (size_info.state_bytes + 4 * trainable + 8 * trainable
                + finetune_activations(size_info, rows * utterance_seconds, utterance_seconds, precision == "bf16"))
    memory = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
    return GpuCheck(device.type, precision, size_info.parameters / 1e6, rows * utterance_seconds, step,
                    rows * utterance_seconds / step, flops / 1e12, peak, flops / 1e12 / peak if peak else None,
                    memory, estimate / 1e9, _stage2_step(size_info.hidden_size, batch_seconds, size, device, precision))


def _stage2_step(hidden: int, batch_seconds: float, size: str, device: torch.device, precision: str) -> float:
    """ECAPA-512 (tiny: 16 channels) forward + backward + step on one batch of cached float16 features."""
    ecapa = EcapaConfig() if size == "large" else EcapaConfig(channels=16, embedding_size=8, attention_size=8,
                                                             se_channels=8, res2net_scale=4)
    downstream = cached_feature_ecapa(hidden, ecapa, device)
    optimizer = torch.optim.AdamW(downstream.parameters(), lr=1e-3)
    rows, frames = max(2, int(batch_seconds / 5)), 5 * FRAME_RATE
    generator = torch.Generator().manual_seed(1)
    features = [[torch.randn(frames, hidden, generator=generator).half()] for _ in range(rows)]
    labels = torch.zeros(rows, dtype=torch.long, device=device)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with autocast(device, precision):  # type: ignore[arg-type]
            logits = downstream([pad_outputs(features, device=device)])
        torch.nn.functional.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return min(times[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("large", "tiny"), default="large")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-seconds", type=float, default=100.0, help="audio per step (paper profile: 100)")
    parser.add_argument("--precision", choices=("bf16", "float32"), default="bf16")
    args = parser.parse_args(argv)
    check = run_check(args.size, args.steps, args.batch_seconds, precision=args.precision)
    print(json.dumps(asdict(check), indent=1))


if __name__ == "__main__":
    main()
