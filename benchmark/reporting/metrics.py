"""Emotion recognition metrics: WA, UA, macro-F1, the confusion matrix, and fold mean/std."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike


def confusion_matrix(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    y, p = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in shape")
    for name, values in (("labels", y), ("predictions", p)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}); got {values.min()}..{values.max()}")
    return np.bincount(y * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class Scores:
    """WA: accuracy over utterances; UA: mean recall over the classes present in the labels."""

    wa: float
    ua: float
    macro_f1: float
    confusion: np.ndarray
    num_utterances: int


def score(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> Scores:
    cm = confusion_matrix(labels, predictions, num_classes)
    total = int(cm.sum())
    if total == 0:
        raise ValueError("cannot score an empty set of predictions")
    support, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    present = support > 0
    recall = hits[present] / support[present]
    # F1 over the classes present in labels or predictions (scikit-learn's label set), 0 where undefined
    used = present | (predicted > 0)
    denominators = support[used] + predicted[used]
    f1 = np.where(denominators > 0, 2 * hits[used] / np.maximum(denominators, 1), 0.0)
    return Scores(
        wa=float(hits.sum() / total),
        ua=float(recall.mean()),
        macro_f1=float(f1.mean()),
        confusion=cm,
        num_utterances=total,
    )


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for a single value) of per-fold scores."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std()) if len(array) > 1 else 0.0
