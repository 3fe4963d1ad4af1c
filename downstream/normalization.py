"""Input normalisation of a branch's features, one of the modes the field uses (`INPUT_NORMS`):

- "none": features as the upstream gives them (SSL and text models: their own layer norms);
- "global": each feature standardised with running mean/variance of valid frames (`MaskedFeatureNorm`,
  BatchNorm-like statistics over the training set), as for raw log-mel energies before a linear head;
- "sentence": per-utterance mean and variance normalisation, and "sentence_mean": per-utterance mean
  only, as speechbrain's `InputNormalization(norm_type="sentence", std_norm=False)` in its ECAPA
  recipes (speechbrain's module, statistics over valid frames, padding left at zero).

Per-utterance normalisation before *mean pooling* would make every pooled vector zero (the
constant-classifier trap of s3prl's `fbank`); it suits aggregators that keep the frames' spread
(ECAPA's attentive statistics pooling).
"""
from __future__ import annotations

import torch
from speechbrain.processing.features import InputNormalization
from torch import Tensor, nn

from .pooling import length_mask

INPUT_NORMS: tuple[str, ...] = ("none", "global", "sentence", "sentence_mean")


class MaskedFeatureNorm(nn.Module):
    """(B, T, H) → (B, T, H): each feature standardised with running mean/variance of valid frames.

    BatchNorm1d applied to the valid frames alone, so padding never enters the statistics; padding
    frames come out as zeros. In eval mode it is a fixed per-feature affine map (padding-invariant).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(size, affine=False)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, features.shape[1])
        output = torch.zeros_like(features)
        output[mask] = self.norm(features[mask])
        return output


class SentenceNorm(nn.Module):
    """(B, T, H) → (B, T, H): per-utterance normalisation by speechbrain's `InputNormalization`.

    Statistics of each utterance's valid frames only; padding frames come out as zeros, so the
    result does not depend on the batch (no running statistics, the same in train and eval mode).
    """

    def __init__(self, std_norm: bool) -> None:
        super().__init__()
        self.norm = InputNormalization(norm_type="sentence", std_norm=std_norm, avoid_padding_norm=True)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        max_len = features.shape[1]
        # speechbrain rebuilds the mask from relative lengths as arange(T) < rel·T: half a frame below n
        relative = (lengths.clamp(min=1).to(torch.float32) - 0.5) / max_len
        mask = length_mask(lengths, max_len).unsqueeze(-1)
        return self.norm(features * mask, relative.to(features.device)) * mask


def build_input_norm(mode: str, size: int) -> nn.Module | None:
    """The module of normalisation `mode` for `size`-dimensional features (None for "none")."""
    if mode not in INPUT_NORMS:
        raise ValueError(f"input_norm: unknown mode {mode!r}; expected one of {', '.join(INPUT_NORMS)}")
    if mode == "global":
        return MaskedFeatureNorm(size)
    if mode in ("sentence", "sentence_mean"):
        return SentenceNorm(std_norm=mode == "sentence")
    return None
