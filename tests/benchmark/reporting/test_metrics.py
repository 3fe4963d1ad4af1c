import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from benchmark.reporting.metrics import score


def _check_against_sklearn(labels: np.ndarray, predictions: np.ndarray) -> None:
    scores = score(labels, predictions, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes absent from y_true
        assert scores.wa == pytest.approx(accuracy_score(labels, predictions))
        assert scores.ua == pytest.approx(balanced_accuracy_score(labels, predictions))
        assert scores.macro_f1 == pytest.approx(f1_score(labels, predictions, average="macro", zero_division=0))
    np.testing.assert_array_equal(scores.confusion, confusion_matrix(labels, predictions, labels=range(4)))
    assert scores.num_utterances == len(labels)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn_with_a_never_predicted_class(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=200)
    predictions = rng.integers(0, 3, size=200)  # class 3 is never predicted
    correct = (rng.random(200) < 0.5) & (labels < 3)
    predictions[correct] = labels[correct]
    assert 3 not in predictions
    _check_against_sklearn(labels, predictions)


def test_ua_averages_only_classes_present_in_labels():
    rng = np.random.default_rng(7)
    labels = rng.choice([0, 1, 3], size=120)  # class 2 absent from the labels, but predicted
    predictions = rng.integers(0, 4, size=120)
    assert 2 in predictions
    _check_against_sklearn(labels, predictions)
    by_hand = np.mean([np.mean(predictions[labels == c] == c) for c in (0, 1, 3)])
    assert score(labels, predictions, 4).ua == pytest.approx(by_hand)


def test_known_values():
    scores = score([0, 0, 0, 1], [0, 0, 1, 1], 4)
    assert scores.wa == pytest.approx(0.75)
    assert scores.ua == pytest.approx((2 / 3 + 1) / 2)


@pytest.mark.parametrize(
    "labels, predictions, message",
    [([0, 1], [0], "differ in shape"), ([0, 4], [0, 1], "must lie in"), ([], [], "empty")],
)
def test_bad_inputs_are_rejected(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        score(labels, predictions, 4)
