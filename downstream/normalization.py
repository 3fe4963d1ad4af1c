"""Feature-wise standardisation of hidden states, with statistics of valid frames only."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .pooling import length_mask


class MaskedFeatureNorm(nn.Module):
    """(B, T, H) → (B, T, H): each feature standardised with running mean/variance of valid frames.

    BatchNorm1d applied to the valid frames alone, so padding never enters the statistics; padding
    frames come out as zeros. In eval mode it is a fixed per-feature affine map (padding-invariant).
    Raw log-mel energies (tens of dB, very different scales per bin) need this before a linear head;
    per-utterance normalisation would instead erase what mean pooling keeps (s3prl's fbank trap).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(size, affine=False)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, features.shape[1])
        output = torch.zeros_like(features)
        output[mask] = self.norm(features[mask])
        return output
