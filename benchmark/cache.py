"""Hidden states of frozen upstreams, computed once per utterance instead of at every step."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from upstream.interface import Upstream, UpstreamOutput

from .batching import AudioStore, duration_batches, make_batch
from .data.iemocap import Utterance


def pad_outputs(per_utterance: Sequence[list[Tensor]]) -> UpstreamOutput:
    """Stack per-utterance hidden states (each a list of (T_i, H) layers) into one padded output."""
    lengths = torch.tensor([layers[0].shape[0] for layers in per_utterance], dtype=torch.long)
    num_layers, hidden = len(per_utterance[0]), per_utterance[0][0].shape[-1]
    hidden_states = []
    for layer in range(num_layers):
        padded = per_utterance[0][layer].new_zeros(len(per_utterance), int(lengths.max()), hidden)
        for row, layers in enumerate(per_utterance):
            padded[row, : layers[layer].shape[0]] = layers[layer]
        hidden_states.append(padded)
    return UpstreamOutput(hidden_states, lengths)


class FrozenFeatures:
    """In-memory store of a frozen upstream's hidden states (valid frames only), by utterance id."""

    def __init__(self, upstream: Upstream, store: AudioStore, max_batch_seconds: float = 60.0) -> None:
        self.upstream = upstream
        self.store = store
        self.max_batch_seconds = max_batch_seconds
        self._features: dict[str, list[Tensor]] = {}

    @torch.no_grad()
    def precompute(self, utterances: Sequence[Utterance]) -> None:
        missing = [u for u in utterances if u.id not in self._features]
        self.upstream.eval()
        for indices in duration_batches([u.duration for u in missing], self.max_batch_seconds):
            batch = make_batch([missing[i] for i in indices], self.store)
            output = self.upstream.extract(batch)
            for row, uid in enumerate(batch.ids):
                n = int(output.lengths[row])
                self._features[uid] = [layer[row, :n].clone() for layer in output.hidden_states]

    def outputs(self, utterance_ids: Sequence[str]) -> UpstreamOutput:
        return pad_outputs([self._features[uid] for uid in utterance_ids])
