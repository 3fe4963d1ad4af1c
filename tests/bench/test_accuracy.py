"""bench.accuracy: the plain speechbrain loop and ours on the same folds, side by side."""
from __future__ import annotations

import pytest

from bench import accuracy


def test_plain_loop_and_ours_learn_the_tone_corpus_on_the_same_folds(tone_corpus, tmp_path):
    table, results = accuracy.compare(tone_corpus, "demo", (1, 2), tmp_path, epochs=10, seeds=2)
    assert len(results["plain"]) == len(results["default"]) == 2  # seeds
    assert all(set(run) == {1, 2} for run in (*results["plain"], *results["default"]))
    for fold in (1, 2):
        assert results["plain"][0][fold]["ua"] > 40.0  # chance is 25 %: separable tones
        assert results["default"][0][fold]["ua_average"] > 40.0
    assert results["plain"][0] != results["plain"][1]  # the seed reaches the plain loop
    lines = table.splitlines()
    assert lines[0] == "| UA % | fold 1 | fold 2 | mean | std over seeds |" and len(lines) == 5
    plain = [float(c) for c in lines[2].strip("| ").split(" | ")[1:]]
    by_seed = [(r[1]["ua"] + r[2]["ua"]) / 2 for r in results["plain"]]
    assert plain[2] == pytest.approx(sum(by_seed) / 2, abs=0.01)
    assert plain[3] == pytest.approx(abs(by_seed[0] - by_seed[1]) / 2, abs=0.01)
    assert (tmp_path / "accuracy.json").is_file() and (tmp_path / "accuracy.md").read_text().strip() == table
