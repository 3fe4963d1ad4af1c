"""The whole emotion model: one or more upstreams feeding one downstream."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel
from upstream.interface import Batch, Upstream


class EmotionModel(nn.Module):
    """Batch → (B, num_classes) logits; `upstreams` are the branches, in the downstream's order."""

    def __init__(
        self, upstreams: Sequence[Upstream], downstream_config: DownstreamConfig, stored_layers: Sequence[int] | None = None
    ) -> None:
        """`stored_layers`: per upstream, how many hidden states the downstream receives when they come
        from a feature cache that keeps a selection (default: all of the upstream's layers)."""
        super().__init__()
        self.upstreams = nn.ModuleList(upstreams)
        layers = stored_layers if stored_layers is not None else [u.num_layers for u in upstreams]
        branches = [BranchSpec(n, u.hidden_size, u.downsample_rate) for n, u in zip(layers, upstreams, strict=True)]
        self.downstream = DownstreamModel(downstream_config, branches)

    def forward(self, batch: Batch) -> Tensor:
        return self.downstream([upstream.extract(batch) for upstream in self.upstreams])
