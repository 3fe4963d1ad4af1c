"""Layer featurizers: which of an upstream's hidden states the aggregator sees.

A featurizer maps the `num_layers` hidden states of one upstream, each (B, T, H), to one (B, T, H)
tensor. Three choices, named by a plain value so that experiment files can state them:

- ``"last"``: the last hidden state;
- an ``int`` k: hidden state k (negative indices count from the end, as in Python);
- ``"weighted"``: a learnable softmax-weighted sum over all layers, the SUPERB way (weights start
  uniform; read them after training with `WeightedLayerSum.layer_weights`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

LayerSpec = str | int
""""last", "weighted" or a layer index."""

FEATURIZERS: tuple[str, ...] = ("last", "weighted")


def _check_layer_count(hidden_states: Sequence[Tensor], num_layers: int) -> None:
    if len(hidden_states) != num_layers:
        raise ValueError(
            f"featurizer built for {num_layers} hidden states got {len(hidden_states)}; "
            "build the DownstreamModel from the BranchSpec of the upstream that feeds it"
        )


class LayerSelection(nn.Module):
    """Picks one hidden state: list of `num_layers` (B, T, H) → (B, T, H)."""

    def __init__(self, num_layers: int, index: int) -> None:
        super().__init__()
        if not -num_layers <= index < num_layers:
            raise ValueError(
                f"layer index {index} out of range for an upstream with {num_layers} hidden states; "
                f"use an index in [{-num_layers}, {num_layers - 1}], 'last' or 'weighted'"
            )
        self.num_layers = num_layers
        self.index = index % num_layers

    def forward(self, hidden_states: Sequence[Tensor]) -> Tensor:
        _check_layer_count(hidden_states, self.num_layers)
        return hidden_states[self.index]


class WeightedLayerSum(nn.Module):
    """Softmax-weighted sum of all hidden states: list of `num_layers` (B, T, H) → (B, T, H).

    `weights` are free logits, initialised to zero (uniform weights), as s3prl's `Featurizer`.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"a weighted featurizer needs at least one hidden state, got {num_layers}")
        self.num_layers = num_layers
        self.weights = nn.Parameter(torch.zeros(num_layers))

    @property
    def layer_weights(self) -> Tensor:
        """(num_layers,) the normalised weights, detached (sum to 1)."""
        return torch.softmax(self.weights.detach(), dim=0)

    def forward(self, hidden_states: Sequence[Tensor]) -> Tensor:
        _check_layer_count(hidden_states, self.num_layers)
        stacked = torch.stack(list(hidden_states), dim=0)  # (L, B, T, H)
        weights = torch.softmax(self.weights, dim=0).to(stacked.dtype)
        return torch.einsum("l,lbth->bth", weights, stacked)


def check_layer_spec(spec: LayerSpec) -> None:
    """Raise ValueError unless `spec` is "last", "weighted" or an int (bool is not an int here)."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise ValueError(f"featurizer must be 'last', 'weighted' or a layer index (int), got {spec!r}")
    if isinstance(spec, str) and spec not in FEATURIZERS:
        raise ValueError(f"unknown featurizer {spec!r}; expected 'last', 'weighted' or a layer index (int)")


def build_featurizer(spec: LayerSpec, num_layers: int) -> nn.Module:
    """The featurizer named by `spec` for an upstream with `num_layers` hidden states."""
    check_layer_spec(spec)
    if spec == "weighted":
        return WeightedLayerSum(num_layers)
    return LayerSelection(num_layers, -1 if spec == "last" else int(spec))
