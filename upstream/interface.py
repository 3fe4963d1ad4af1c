"""The upstream seam: every feature extractor returns all its hidden states and their lengths."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

Modality = Literal["audio", "text"]
SAMPLE_RATE = 16_000


@dataclass
class Batch:
    """One mini-batch as every model sees it.

    wavs: (B, S) float32 mono 16 kHz, zero-padded; wav_lens: (B,) valid samples per row;
    texts: transcripts (text upstreams read these instead of the audio); labels: (B,) class indices;
    targets: (B, 3) attributes on [0, 1] when the task regresses them.
    """

    ids: list[str]
    wavs: Tensor
    wav_lens: Tensor
    texts: list[str]
    labels: Tensor
    targets: Tensor | None = None  # (B, 3) arousal, valence, dominance on [0, 1] (the dimensional task)

    def to(self, device: torch.device | str) -> Batch:
        targets = self.targets.to(device) if self.targets is not None else None
        return Batch(self.ids, self.wavs.to(device), self.wav_lens.to(device), self.texts, self.labels.to(device),
                     targets)


@dataclass
class UpstreamOutput:
    """hidden_states: num_layers tensors of shape (B, T, H); lengths: (B,) valid frames per row."""

    hidden_states: list[Tensor]
    lengths: Tensor


class Upstream(nn.Module):
    """Base class of all upstreams.

    Subclasses set `name`, `num_layers`, `hidden_size`, `downsample_rate` (input samples per output
    frame; for text, 0) and `modality`, and implement `forward`: audio upstreams take
    `(wavs (B, S), wav_lens (B,))`, text upstreams take `(texts: list[str])`. Callers that hold a
    `Batch` use `extract`, the one place where the modality decides the input.
    `receptive_field` is the number of samples behind the first frame (an analysis window; 0 means
    `downsample_rate`): valid frames are about `(wav_len - receptive_field) / downsample_rate + 1`.
    `padding_invariant` is False where padding a batch changes a row's valid frames in eval mode
    (models that would leak padding, e.g. through group norm over time, should instead evaluate
    equal-length groups, as `SpeechModelUpstream` does); the contract tests read it.
    Fine-tuning hooks: `parameters()`, `train()`/`eval()` (plain nn.Module), `freeze_feature_encoder()`.
    """

    name: str = ""
    num_layers: int = 0
    hidden_size: int = 0
    downsample_rate: int = 0
    modality: Modality = "audio"
    receptive_field: int = 0
    padding_invariant: bool = True

    def extract(self, batch: Batch) -> UpstreamOutput:
        if self.modality == "text":
            return self(batch.texts)
        return self(batch.wavs, batch.wav_lens)

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the convolutional waveform encoder (no-op where there is none)."""

    @property
    def frame_rate(self) -> float:
        """Output frames per second (0 for text upstreams)."""
        return SAMPLE_RATE / self.downsample_rate if self.downsample_rate else 0.0


def frames_from_samples(wav_lens: Tensor, downsample_rate: int) -> Tensor:
    """Frame counts of a strided front-end that emits one frame per `downsample_rate` samples."""
    return torch.div(wav_lens, downsample_rate, rounding_mode="floor").clamp(min=1).long()


def output_to(output: UpstreamOutput, device: torch.device | str) -> UpstreamOutput:
    return UpstreamOutput([h.to(device) for h in output.hidden_states], output.lengths.to(device))
