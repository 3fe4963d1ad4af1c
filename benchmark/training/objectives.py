"""What a unit learns and how a checkpoint is chosen: categorical (cross-entropy, selected by WA),
dimensional (arousal, valence and dominance on [0, 1]: 1 − CCC or MSE, selected by mean CCC) or both
(the two losses summed, the attributes' weighted by `weight`; selected by the mean of WA and mean CCC).

The categorical loss of a micro-batch is the sum of its utterances' cross-entropies (weighted as
`schedule.utterances_per_step` says). CCC is a statistic of a whole batch, so its loss is the batch's
1 − mean CCC times its utterance count: the same scale per utterance as a summed loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..reporting.dimensional import ccc
from ..reporting.metrics import score

Task = Literal["categorical", "dimensional", "both"]


@dataclass(frozen=True)
class Objective:
    task: Task = "categorical"
    loss: Literal["ccc", "mse"] = "ccc"  # of the attributes
    weight: float = 1.0  # of the attributes' loss in "both"

    def __post_init__(self) -> None:
        if self.task not in ("categorical", "dimensional", "both") or self.loss not in ("ccc", "mse"):
            raise ValueError(f"objective: task {self.task!r} / loss {self.loss!r}; expected categorical|dimensional|"
                             "both and ccc|mse")
        if self.weight <= 0:
            raise ValueError(f"objective: the attributes' loss weight must be positive, got {self.weight}")

    @property
    def categorical(self) -> bool:
        return self.task != "dimensional"

    @property
    def dimensional(self) -> bool:
        return self.task != "categorical"


def batch_ccc(predicted: Tensor, targets: Tensor) -> Tensor:
    """Mean over attributes of the CCC of a (B, A) batch (population statistics; differentiable)."""
    mp, mt = predicted.mean(0), targets.mean(0)
    covariance = ((predicted - mp) * (targets - mt)).mean(0)
    denominator = predicted.var(0, unbiased=False) + targets.var(0, unbiased=False) + (mp - mt) ** 2
    return (2 * covariance / denominator.clamp_min(1e-8)).mean()


def loss_sum(objective: Objective, logits: Tensor | None, attributes: Tensor | None, labels: Tensor,
             targets: Tensor | None) -> Tensor:
    """The micro-batch's loss on its real rows, as a sum over utterances (see the module docstring)."""
    total = torch.zeros((), device=labels.device)
    if objective.categorical:
        assert logits is not None  # labels are checked once per unit (`loop.train_unit`): no host sync here
        total = total + nn.functional.cross_entropy(logits, labels, reduction="sum")
    if objective.dimensional:
        assert attributes is not None
        if targets is None:
            raise ValueError("the dimensional task needs arousal/valence/dominance ratings on every utterance")
        attributes, targets = attributes.float(), targets.float()
        if objective.loss == "ccc":
            # a statistic of the rows at hand: under torchrun of each rank's share (no CCC of fewer than 2 rows)
            dimensional = (1 - batch_ccc(attributes, targets)) * len(targets) if len(targets) > 1 else attributes.sum() * 0
        else:
            dimensional = ((attributes - targets) ** 2).mean(-1).sum()
        total = total + objective.weight * dimensional
    return total


def selection_score(objective: Objective, labels: np.ndarray, logits: np.ndarray | None, targets: np.ndarray | None,
                    attributes: np.ndarray | None, num_classes: int) -> tuple[float, float | None, float | None, float | None]:
    """(the score checkpoints are ranked by, WA, UA, mean CCC) on the validation set (fractions)."""
    wa = ua = mean_ccc = None
    if objective.categorical:
        assert logits is not None
        scored = score(labels, logits.argmax(-1), num_classes)
        wa, ua = scored.wa, scored.ua
    if objective.dimensional:
        assert attributes is not None and targets is not None
        mean_ccc = float(ccc(targets, attributes).mean())
    if objective.task == "categorical":
        return wa, wa, ua, None  # type: ignore[return-value]
    if objective.task == "dimensional":
        return mean_ccc, None, None, mean_ccc  # type: ignore[return-value]
    return (wa + mean_ccc) / 2, wa, ua, mean_ccc  # type: ignore[operator]
