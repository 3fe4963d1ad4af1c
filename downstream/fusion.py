"""Fusion of several upstream branches: early (`+`, one aggregator) and late (`&`, one per branch).

Early fusion concatenates the branches' features frame by frame, so their frames must line up:

1. Frame rate. Each audio branch emits one frame per `downsample_rate` input samples (160 = 10 ms,
   320 = 20 ms). All branches are brought to one target rate, chosen by `frame_rate`:
   - ``"coarsest"`` (default): the largest downsample rate R. A branch with rate r = R / k is
     average-pooled over consecutive, non-overlapping windows of k frames; a window that straddles
     the end of the utterance averages only its valid frames. Valid lengths become ceil(n / k).
   - ``"finest"``: the smallest rate R. A branch with rate r = k · R repeats each frame k times.
     Valid lengths become n · k.
   Rates must be integer multiples of each other; text branches (rate 0) have no time axis shared
   with audio and can only be fused late.
2. Length. Front-ends round differently at the edges (e.g. Kaldi fbank vs a wav2vec 2.0 CNN), so
   aligned lengths may differ by a frame or two. Each utterance keeps the frames that every branch
   has: its fused length is the minimum of its aligned lengths, trailing frames of longer branches
   are dropped. A difference above `MAX_FRAME_MISMATCH` frames means a wrong downsample rate and is
   an error.

Late fusion runs one aggregator per branch on that branch's own frames (audio frames or text
tokens) and concatenates the utterance embeddings.

Both are padding-invariant: a frame's value depends only on the valid frames of its own utterance.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .catalog import output_size
from .pooling import length_mask

FRAME_RATES: tuple[str, ...] = ("coarsest", "finest")
MAX_FRAME_MISMATCH = 2
"""Largest per-utterance difference of aligned lengths (in target frames) that early fusion trims."""


def pool_frames(features: Tensor, lengths: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Masked mean over windows of `factor` frames: (B, T, H), (B,) → (B, ceil(T/k), H), (B,)."""
    if factor == 1:
        return features, lengths
    batch, frames, size = features.shape
    mask = length_mask(lengths, frames).unsqueeze(-1).to(features.dtype)  # (B, T, 1)
    pad = -frames % factor
    summed = F.pad(features * mask, (0, 0, 0, pad)).reshape(batch, -1, factor, size).sum(dim=2)
    counts = F.pad(mask, (0, 0, 0, pad)).reshape(batch, -1, factor, 1).sum(dim=2)
    pooled = summed / counts.clamp(min=1)
    return pooled, torch.div(lengths + factor - 1, factor, rounding_mode="floor")


def repeat_frames(features: Tensor, lengths: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Each frame repeated `factor` times: (B, T, H), (B,) → (B, T·k, H), (B,) lengths · k."""
    if factor == 1:
        return features, lengths
    return features.repeat_interleave(factor, dim=1), lengths * factor


def target_rate(downsample_rates: Sequence[int], frame_rate: str) -> int:
    """The common downsample rate early fusion aligns to; checks that alignment is possible."""
    if frame_rate not in FRAME_RATES:
        raise ValueError(f"unknown fusion frame_rate {frame_rate!r}; expected one of {', '.join(FRAME_RATES)}")
    if not downsample_rates:
        raise ValueError("early fusion needs at least one branch")
    if any(rate <= 0 for rate in downsample_rates):
        raise ValueError(
            f"early fusion needs audio branches with a frame rate, got downsample rates {list(downsample_rates)}; "
            "text branches (rate 0) have no common time axis with audio: use fusion: late"
        )
    target = max(downsample_rates) if frame_rate == "coarsest" else min(downsample_rates)
    for rate in downsample_rates:
        if max(rate, target) % min(rate, target):
            raise ValueError(
                f"early fusion needs downsample rates that are integer multiples of each other, "
                f"got {list(downsample_rates)}; use fusion: late for these branches"
            )
    return target


class EarlyFusion(nn.Module):
    """Frame-aligned concatenation: per branch (B, T_i, H_i), (B,) → (B, T, ΣH_i), (B,) lengths.

    See the module docstring for the alignment rules. No parameters.
    """

    def __init__(self, downsample_rates: Sequence[int], frame_rate: str = "coarsest") -> None:
        super().__init__()
        self.downsample_rates = tuple(downsample_rates)
        self.frame_rate = frame_rate
        self.target_rate = target_rate(self.downsample_rates, frame_rate)

    def align(self, features: Tensor, lengths: Tensor, downsample_rate: int) -> tuple[Tensor, Tensor]:
        """One branch at `downsample_rate` → the target rate: (B, T', H), (B,)."""
        if downsample_rate <= self.target_rate:
            return pool_frames(features, lengths, self.target_rate // downsample_rate)
        return repeat_frames(features, lengths, downsample_rate // self.target_rate)

    def forward(self, features: Sequence[Tensor], lengths: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        if not len(features) == len(lengths) == len(self.downsample_rates):
            raise ValueError(
                f"early fusion built for {len(self.downsample_rates)} branches got "
                f"{len(features)} feature tensors and {len(lengths)} length tensors"
            )
        aligned = [self.align(f, n, r) for f, n, r in zip(features, lengths, self.downsample_rates, strict=True)]
        if len(aligned) == 1:
            return aligned[0]
        all_lengths = torch.stack([n.to(aligned[0][1].device) for _, n in aligned])  # (branches, B)
        fused_lengths = all_lengths.min(dim=0).values
        mismatch = int((all_lengths.max(dim=0).values - fused_lengths).max())
        if mismatch > MAX_FRAME_MISMATCH:
            raise ValueError(
                f"early fusion: aligned branch lengths differ by {mismatch} frames (at most "
                f"{MAX_FRAME_MISMATCH} allowed); check each branch's downsample_rate "
                f"(got {list(self.downsample_rates)} samples per frame)"
            )
        frames = int(fused_lengths.max())
        fused = torch.cat([f[:, :frames] for f, _ in aligned], dim=-1)
        return fused, fused_lengths


class LateFusion(nn.Module):
    """One aggregator per branch: per branch (B, T_i, H_i), (B,) → (B, ΣE_i) concatenated embeddings."""

    def __init__(self, aggregators: Sequence[nn.Module]) -> None:
        super().__init__()
        self.aggregators = nn.ModuleList(aggregators)
        self.output_size = sum(output_size(a) for a in aggregators)

    def forward(self, features: Sequence[Tensor], lengths: Sequence[Tensor]) -> Tensor:
        if not len(features) == len(lengths) == len(self.aggregators):
            raise ValueError(
                f"late fusion built for {len(self.aggregators)} branches got "
                f"{len(features)} feature tensors and {len(lengths)} length tensors"
            )
        return torch.cat([agg(f, n) for agg, f, n in zip(self.aggregators, features, lengths, strict=True)], dim=-1)
