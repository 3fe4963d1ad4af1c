"""The across-corpora metrics from confusion counts equal scikit-learn's per fold, averaged."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from benchmark.reporting.corpora import fold_mean_metrics


def test_fold_mean_wa_ua_and_macro_f1_match_scikit_learn():
    rng = np.random.default_rng(3)
    confusions, expected = [], []
    for size in (40, 90, 25):
        labels = rng.integers(0, 5, size)
        predictions = np.where(rng.random(size) < 0.5, labels, rng.integers(0, 5, size))
        confusions.append(confusion_matrix(labels, predictions, labels=range(5)))
        expected.append([accuracy_score(labels, predictions), balanced_accuracy_score(labels, predictions),
                         f1_score(labels, predictions, average="macro")])
    got = fold_mean_metrics(np.stack(confusions))
    assert got == pytest.approx(100 * np.mean(expected, axis=0), abs=1e-9)
