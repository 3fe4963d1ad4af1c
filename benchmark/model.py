"""The whole emotion model: one or more upstreams feeding one downstream."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel
from upstream.interface import Batch, Upstream


class EmotionModel(nn.Module):
    """Batch → (B, num_classes) logits; `upstreams` are the branches, in the downstream's order."""

    def __init__(self, upstreams: Sequence[Upstream], downstream_config: DownstreamConfig) -> None:
        super().__init__()
        self.upstreams = nn.ModuleList(upstreams)
        branches = [BranchSpec(u.num_layers, u.hidden_size, u.downsample_rate) for u in upstreams]
        self.downstream = DownstreamModel(downstream_config, branches)

    def forward(self, batch: Batch) -> Tensor:
        return self.downstream([upstream.extract(batch) for upstream in self.upstreams])
