"""Masked mean pooling over time: padding frames never count."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, max_len) bool mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class MeanPooling(nn.Module):
    """(B, T, H) features + (B,) lengths → (B, H) mean over each row's valid frames."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.output_size = input_size

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, features.shape[1]).unsqueeze(-1).to(features.dtype)
        total = (features * mask).sum(dim=1)
        return total / lengths.clamp(min=1).unsqueeze(-1).to(features.dtype)
