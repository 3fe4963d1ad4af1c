"""The optimisation settings of one training unit, checked completely when built (e.g. from a profile)."""
from __future__ import annotations

from dataclasses import dataclass

from .device import Precision


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training unit (defaults: frozen upstream, head only).

    `batch_jitter`: training batches are cut from durations times a random factor in
    [1 − batch_jitter, 1 + batch_jitter], so batch-mates change every epoch (`batching.duration_batches`).
    """

    epochs: int = 20
    head_lr: float = 1e-3
    upstream_lr: float = 5e-5
    finetune_upstream: bool = False
    freeze_feature_encoder: bool = True
    max_batch_seconds: float = 60.0
    eval_batch_seconds: float = 120.0
    grad_clip: float = 1.0
    grad_accumulation: int = 1
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    top_k: int = 5
    precision: Precision = "auto"
    batch_jitter: float = 0.03

    def __post_init__(self) -> None:
        at_least_one = {"epochs": self.epochs, "grad_accumulation": self.grad_accumulation, "top_k": self.top_k}
        for name, value in at_least_one.items():
            if value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value}")
        positive = {"head_lr": self.head_lr, "upstream_lr": self.upstream_lr, "grad_clip": self.grad_clip,
                    "max_batch_seconds": self.max_batch_seconds, "eval_batch_seconds": self.eval_batch_seconds}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name}: expected a number > 0, got {value}")
        for name, value in {"warmup_fraction": self.warmup_fraction, "batch_jitter": self.batch_jitter}.items():
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}: expected a fraction in [0, 1), got {value}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: expected a number >= 0, got {self.weight_decay}")
