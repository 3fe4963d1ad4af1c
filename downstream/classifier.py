"""Utterance classifier: linear by default, optionally a small MLP with dropout."""
from __future__ import annotations

from torch import Tensor, nn


class Classifier(nn.Module):
    """(B, E) utterance embeddings → (B, num_classes) logits."""

    def __init__(self, input_size: int, num_classes: int, hidden_size: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        if hidden_size > 0:
            layers += [nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            input_size = hidden_size
        layers.append(nn.Linear(input_size, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.net(embeddings)
