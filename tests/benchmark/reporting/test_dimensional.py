"""CCC, Pearson r and RMSE against direct formulas and scipy; fold-mean intervals and paired differences."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from benchmark.reporting.dimensional import ccc, fold_mean_interval, paired_difference, pearson, rmse, score_dimensional


def _direct_ccc(x: np.ndarray, y: np.ndarray) -> float:
    return 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_ccc_perfect_shifted_scaled_and_anti_correlated():
    x = np.linspace(1, 5, 50)
    cases = {"perfect": x, "shifted": x + 1.0, "scaled": 2 * x, "anti": -x + 6}
    for name, y in cases.items():
        assert ccc(x[:, None], y[:, None])[0] == pytest.approx(_direct_ccc(x, y)), name
    assert ccc(x[:, None], x[:, None])[0] == pytest.approx(1.0)
    assert ccc(x[:, None], (x + 1.0)[:, None])[0] < 1.0  # a shift costs concordance, not correlation
    assert pearson(x[:, None], (x + 1.0)[:, None])[0] == pytest.approx(1.0)
    assert ccc(x[:, None], (-x + 6)[:, None])[0] == pytest.approx(-1.0)
    assert ccc(np.ones((5, 1)), np.ones((5, 1)))[0] == 0.0  # undefined: both constant


def test_ccc_is_pearson_times_the_bias_correction_on_random_data():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 1, (200, 3))
    y = 0.6 * x + rng.normal(0.5, 0.8, (200, 3))
    got = ccc(x, y)
    for a in range(3):
        r = stats.pearsonr(x[:, a], y[:, a]).statistic
        sx, sy = x[:, a].std(), y[:, a].std()
        expected = r * 2 * sx * sy / (sx**2 + sy**2 + (x[:, a].mean() - y[:, a].mean()) ** 2)
        assert got[a] == pytest.approx(expected, rel=1e-10) and got[a] == pytest.approx(_direct_ccc(x[:, a], y[:, a]))
        assert pearson(x, y)[a] == pytest.approx(r, rel=1e-10)
    assert rmse(x, y) == pytest.approx(np.sqrt(((x - y) ** 2).mean(0)))
    scores = score_dimensional(x, y)
    assert scores.ccc_mean == pytest.approx(got.mean())


def test_fold_mean_interval_and_paired_difference():
    rng = np.random.default_rng(1)
    folds = []
    for size in (60, 140):
        truth = rng.normal(3, 1, (size, 3))
        folds.append((truth, truth + rng.normal(0, 0.5, truth.shape), truth + rng.normal(0, 1.5, truth.shape)))
    mean, low, high = fold_mean_interval([(t, a) for t, a, _ in folds], resamples=500)
    per_attribute = np.mean([ccc(t, a) for t, a, _ in folds], axis=0)
    assert mean == pytest.approx([*per_attribute, per_attribute.mean()]) and len(low) == 4
    assert np.all(low < mean) and np.all(mean < high)
    difference, d_low, d_high, p = paired_difference(folds, resamples=500)
    assert np.all(difference > 0) and np.all(d_low > 0) and np.all(p < 0.01)  # A predicts far better than B
    same, s_low, s_high, p_same = paired_difference([(t, a, a) for t, a, _ in folds], resamples=200)
    assert np.all(same == 0) and np.all(p_same == 1.0)
    again = fold_mean_interval([(t, a) for t, a, _ in folds], resamples=500)
    assert np.array_equal(again[1], low)  # seeded: the same draws


def test_pairwise_ccc_rows_compare_table_rows_on_their_shared_utterances():
    from types import SimpleNamespace

    from benchmark.reporting.dimensional import pairwise_ccc_rows

    rng = np.random.default_rng(4)
    truth = rng.uniform(0, 1, (80, 3))

    def row(ident: int, noise: float) -> SimpleNamespace:
        predicted = truth + rng.normal(0, noise, truth.shape)
        result = SimpleNamespace(test_ids=[f"u{i}" for i in range(80)],
                                 dimensional={"average": {"targets": truth.tolist(), "predictions": predicted.tolist()}})
        return SimpleNamespace(experiment=SimpleNamespace(id=ident, checkpoint="average"), folds={1: result})

    (line,) = pairwise_ccc_rows([row(3, 0.05), row(5, 0.6)], resamples=300)
    assert line[:3] == [3, 5, 80] and float(line[3]) > 0 and float(line[4]) > 0 and float(line[6]) < 0.01
