"""--seeds N: the spread over training seeds beside the test-set interval."""
from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.experiments.definitions import load_profile
from benchmark.reporting.seeds import seed_interval
from benchmark.runner import RunRequest, run


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {row["exp"]: row for row in csv.DictReader(path.open())}


def test_student_t_interval_of_the_mean_over_seeds():
    values = [61.0, 64.5, 58.25, 66.0]
    low, high = seed_interval(values, 0.95)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected)
    assert all(math.isnan(v) for v in seed_interval([61.0], 0.95))


def test_two_seeds_of_rows_9_and_11_report_their_spread(tone_corpus, tmp_path):
    profile = load_profile("demo").with_training(lambda c: replace(c, epochs=2))
    request = RunRequest(table=1, experiments=(9, 11), folds=(1,), data=tone_corpus, out=tmp_path, profile=profile,
                         strict=False, threads=1, seeds=2)
    table = run(request)
    assert table == tmp_path / "table1.csv"
    spread = _rows(tmp_path / "table1_seeds.csv")
    first = _rows(table)  # the table on disk is the first seed's
    second = _rows(run(replace(request, seed=1, seeds=1, report_only=True)))  # seed 1's units, reported alone
    assert set(spread) == {"9", "11"}
    for exp, row in spread.items():
        assert row["seeds"] == "0 1"
        for metric in ("wa", "ua"):
            a, b = float(row[f"{metric}_seed0"]), float(row[f"{metric}_seed1"])
            assert a == float(first[exp][f"{metric}_mean"]) and b == float(second[exp][f"{metric}_mean"])
            assert float(row[f"{metric}_mean_over_seeds"]) == pytest.approx((a + b) / 2, abs=0.006)
            assert float(row[f"{metric}_std_over_seeds"]) == pytest.approx(abs(a - b) / math.sqrt(2), abs=0.006)
            half = stats.t.ppf(0.975, 1) * abs(a - b) / 2
            assert float(row[f"{metric}_seeds_ci_low"]) == pytest.approx((a + b) / 2 - half, abs=0.02)
            assert float(row[f"{metric}_seeds_ci_high"]) == pytest.approx((a + b) / 2 + half, abs=0.02)
            # beside it, the test-set interval of the first seed's model, as the table gives it
            assert row[f"{metric}_test_ci_low"] == first[exp][f"{metric}_ci_low"]
            assert row[f"{metric}_test_ci_high"] == first[exp][f"{metric}_ci_high"]
    assert any(spread[e]["wa_seed0"] != spread[e]["wa_seed1"] for e in spread)  # the seeds trained differently
    assert "Student-t" in (tmp_path / "table1_seeds.md").read_text()
