"""Walking skeleton end to end: fbank → masked mean → linear on a generated IEMOCAP-layout corpus."""
import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.experiments.definitions import Profile
from benchmark.runner import RunRequest, run
from benchmark.training.config import TrainConfig
from corpus_builder import synthetic_turns, write_tree

ROOT = Path(__file__).resolve().parents[2]
QUICK = TrainConfig(epochs=6, max_batch_seconds=8.0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_fbank_mean_learns_the_tone_corpus_and_is_deterministic(tone_corpus, tmp_path):
    request = RunRequest(data=tone_corpus, folds=(1, 2), out=tmp_path / "a",
                         profile=Profile(name="quick", frozen=QUICK))
    first = run(request)
    rows = _rows(first)
    assert [(r["checkpoint"], r["fold"]) for r in rows] == [
        ("best", "1"), ("best", "2"), ("average", "1"), ("average", "2"),
        ("best", "mean"), ("best", "std"), ("average", "mean"), ("average", "std")]
    for row in rows[:4]:
        assert float(row["wa"]) > 50.0 and float(row["ua"]) > 50.0  # chance is 25 %
        assert row["split"] == "superb_procedure" and len(row["split_hash"]) == 16
        assert int(row["n_test"]) == 34
    mean_wa = (float(rows[0]["wa"]) + float(rows[1]["wa"])) / 2
    assert float(rows[4]["wa"]) == pytest.approx(mean_wa, abs=0.01)
    second = run(replace(request, out=tmp_path / "b"))
    assert second.read_text() == first.read_text()
    assert (tmp_path / "a" / "fbank_mean.json").is_file()


def test_cli_writes_the_csv(tone_corpus, tmp_path):
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_benchmark.py"), "--upstream", "fbank", "--downstream", "mean",
         "--data", str(tone_corpus), "--folds", "3", "--out", str(out), "--epochs", "2", "--seed", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = _rows(out / "fbank_mean.csv")
    assert rows[0]["fold"] == "3" and 0.0 <= float(rows[0]["wa"]) <= 100.0
    assert "WA" in result.stdout and "UA" in result.stdout


def test_two_corpora_into_one_out_never_report_each_others_numbers(tone_corpus, tmp_path):
    """A partial copy first, then the full corpus, into the same --out: the second run trains its own
    units and reports its own data's numbers; the first run's units stay reportable under their keys."""
    partial = write_tree(tmp_path / "partial", [t for i, t in enumerate(synthetic_turns(per_class=4)) if i % 3])
    profile = Profile(name="quick", frozen=replace(QUICK, epochs=2))
    shared = RunRequest(data=partial, folds=(1,), out=tmp_path / "shared", profile=profile)
    first = run(shared).read_text()
    second = run(replace(shared, data=tone_corpus)).read_text()
    alone = run(replace(shared, data=tone_corpus, out=tmp_path / "alone")).read_text()
    assert second == alone and second != first
    assert len(list((tmp_path / "shared" / "runs" / "fbank").glob("mean-*/fold1/result.json"))) == 2
    assert run(replace(shared, report_only=True)).read_text() == first
    n_test = {int(_rows(tmp_path / "shared" / "fbank_mean.csv")[0]["n_test"]), int(_rows(tmp_path / "alone" /
                                                                                      "fbank_mean.csv")[0]["n_test"])}
    assert len(n_test) == 2


def test_an_identical_copy_with_new_timestamps_trains_anew_to_the_same_numbers(tone_corpus, tmp_path):
    """Files' modification times are part of a unit's key (a copy is other data until proven equal), not
    of its training seed: the copy's units are new, their results those of the original."""
    copy = tmp_path / "copy"
    shutil.copytree(tone_corpus, copy)  # new modification times
    for path in copy.rglob("*.wav"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    request = RunRequest(data=tone_corpus, folds=(1,), out=tmp_path / "out",
                         profile=Profile(name="quick", frozen=replace(QUICK, epochs=2)))
    original = run(request).read_text()
    again = run(replace(request, data=copy)).read_text()
    assert again == original
    results = sorted((tmp_path / "out" / "runs" / "fbank").glob("mean-*/fold1/result.json"))
    assert len(results) == 2
    first, second = (json.loads(p.read_text()) for p in results)
    assert first["identity"] != second["identity"] and first["scores"] == second["scores"]
