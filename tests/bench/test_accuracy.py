"""bench.accuracy: the plain speechbrain loop and ours on the same folds, side by side."""
from __future__ import annotations

from bench import accuracy


def test_plain_loop_and_ours_learn_the_tone_corpus_on_the_same_folds(tone_corpus, tmp_path):
    table, results = accuracy.compare(tone_corpus, "demo", (1, 2), tmp_path, epochs=10)
    assert set(results["plain"]) == set(results["default"]) == {1, 2}
    for fold in (1, 2):
        assert results["plain"][fold]["ua"] > 40.0  # chance is 25 %: separable tones
        assert results["default"][fold]["ua_average"] > 40.0
    lines = table.splitlines()
    assert lines[0] == "| UA % | fold 1 | fold 2 | mean |" and len(lines) == 5
    assert (tmp_path / "accuracy.json").is_file() and (tmp_path / "accuracy.md").read_text().strip() == table
