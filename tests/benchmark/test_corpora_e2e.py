"""Another corpus end to end: RAVDESS (8 classes, 6 actor-disjoint folds, 48 kHz) as its zip unpacks,
through training, tables, export and predict with its own label names."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from acted_builder import write_acted_tree

from benchmark.data.acted import RAVDESS
from benchmark.data.partitioned import read_partition
from run_benchmark import main


@pytest.fixture(scope="module")
def ravdess_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every actor, every class: normal intensity, first statement and repetition (192 of the 1440 files)."""
    names = [n for n in sorted(read_partition("ravdess")) if n.split("-")[3:6] == ["01", "01", "01"]]
    return write_acted_tree(tmp_path_factory.mktemp("ravdess"), "ravdess", names, seconds=0.4)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """`run_benchmark.py ARGS` in this process (a subprocess would pay torch's import each time), its
    output captured; torch's thread count is restored afterwards."""
    import contextlib
    import io

    import torch

    import run_benchmark

    out, err, threads = io.StringIO(), io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_benchmark.main(list(args))
    finally:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def test_every_ravdess_fold_trains_and_reports_its_classes(ravdess_tree, tmp_path):
    out = tmp_path / "out"
    done = _cli("--corpus", "ravdess", "--data", str(ravdess_tree), "--upstream", "fbank", "--downstream", "ecapa",
                "--profile", "demo", "--epochs", "1", "--no-strict", "--out", str(out), "--threads", "1")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((out / "fbank_ecapa.csv").open()))
    assert [r["fold"] for r in rows if r["checkpoint"] == "best"][:6] == ["1", "2", "3", "4", "5", "6"]
    assert {int(r["n_test"]) for r in rows if r["fold"].isdigit()} == {32}  # 4 actors × 8 classes per fold
    record = json.loads((out / "fbank_ecapa.json").read_text())
    assert record["corpus"] == "ravdess" and record["labels"] == list(RAVDESS.classes)
    for fold in range(1, 7):
        (result,) = (out / "runs" / "fbank").glob(f"ecapa-*/fold{fold}/result.json")
        data = json.loads(result.read_text())
        assert data["labels"] == list(RAVDESS.classes) and len(data["scores"]["best"]["confusion"]) == 8
        assert data["split"] == "emobox_valid20_speaker_disjoint"

    model = tmp_path / "model"
    assert main(["export", "--run", str(out), "--experiment", "0", "--fold", "2", "--to", str(model)]) == 0
    assert json.loads((model / "config.json").read_text())["labels"] == list(RAVDESS.classes)
    predictions = tmp_path / "predictions.csv"
    wav = next(ravdess_tree.glob("Actor_03/*.wav"))
    assert main(["predict", "--model", str(model), str(wav), "--out", str(predictions)]) == 0
    header = next(csv.reader(predictions.open()))
    assert header[2:10] == list(RAVDESS.classes)


def test_a_table_row_on_ravdess_names_its_classes_in_recall_and_confusion(ravdess_tree, tmp_path):
    out = tmp_path / "table"
    done = _cli("--corpus", "ravdess", "--data", str(ravdess_tree), "--table", "1", "--experiment", "9",
                "--folds", "1,6", "--profile", "demo", "--epochs", "1", "--no-strict", "--out", str(out),
                "--threads", "1")
    assert done.returncode == 0, done.stderr
    recall = list(csv.DictReader((out / "table1_recall.csv").open()))
    assert [r["class"] for r in recall if r["fold"] == "pooled"] == list(RAVDESS.classes)
    assert (out / "table1_confusion" / "exp09.png").is_file()
    assert "| exp 9 |" in (out / "table1.md").read_text() and "surprise" in (out / "table1.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--corpus", "voxceleb", "--data", "DATA"], "unknown corpus 'voxceleb'"),
    (["--corpus", "ravdess", "--data", "DATA"], "of the 1440 files that ravdess's partition lists are not there"),
    (["--corpus", "ravdess"], "--corpus ravdess needs --data DIR"),
    (["--corpus", "ravdess", "--data", "DATA", "--folds", "7", "--no-strict"], "fold 7 does not exist; it has folds 1, 2"),
    (["--corpus", "ravdess", "--data", "DATA", "--no-strict", "--labels", "angry,joy"], "'joy' is not a class of ravdess"),
    (["--corpus", "ravdess", "--data", "DATA", "--no-strict", "--task", "dimensional"],
     "have no arousal/valence/dominance ratings"),
    (["--corpora", "ravdess", "--data", "DATA", "--task", "dimensional"], "--corpora reports classes"),
    (["--corpora", "ravdess", "--data", "DATA", "--seeds", "2"], "--seeds repeats one table or recipe"),
])
def test_bad_corpus_input_is_one_line_and_nothing_is_written(args, message, ravdess_tree, tmp_path):
    out = tmp_path / "out"
    done = _cli(*[str(ravdess_tree) if a == "DATA" else a for a in args], "--upstream", "fbank", "--out", str(out))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_one_recipe_across_corpora_writes_one_line_per_corpus(tmp_path):
    data = tmp_path / "corpora"
    write_acted_tree(data / "emodb", "emodb", seconds=0.05)
    write_acted_tree(data / "savee", "savee", seconds=0.05)
    out = tmp_path / "out"
    done = _cli("--corpora", "emodb,savee", "--data", str(data), "--upstream", "fbank", "--downstream", "mean",
                "--profile", "demo", "--epochs", "1", "--out", str(out), "--threads", "1")
    assert done.returncode == 0, done.stderr
    lines = list(csv.DictReader((out / "corpora.csv").open()))
    assert [(r["corpus"], r["classes"], r["folds"], r["n_test"]) for r in lines] == [("emodb", "7", "5", "535"),
                                                                                     ("savee", "7", "4", "480")]
    for line in lines:
        per_fold = [r for r in csv.DictReader((out / line["corpus"] / "fbank_mean.csv").open())
                    if r["checkpoint"] == "average" and r["fold"].isdigit()]
        for metric in ("wa", "ua", "macro_f1"):
            values = [float(r[metric]) for r in per_fold]
            assert float(line[f"{metric}_mean"]) == pytest.approx(sum(values) / len(values), abs=0.006)
            assert float(line[f"{metric}_ci_low"]) <= float(line[f"{metric}_mean"]) <= float(line[f"{metric}_ci_high"])
    assert "| emodb | 7 | 5 | 535 |" in (out / "corpora.md").read_text()
    # a later corpus that cannot be read stops the run before the first one is trained (it ran first before)
    late = tmp_path / "late"
    done = _cli("--corpora", "emodb,tess", "--data", str(data), "--upstream", "fbank", "--out", str(late))
    assert done.returncode == 2 and done.stderr.strip().startswith("error: --corpora tess: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not late.exists()


def test_train_on_one_corpus_test_on_another_over_their_shared_classes(tmp_path):
    data = tmp_path / "corpora"
    write_acted_tree(data / "emodb", "emodb", seconds=0.05)
    tess = sorted(read_partition("tess"))[::10]  # 280 of TESS's 2800 files
    write_acted_tree(data / "tess", "tess", tess, seconds=0.05)
    out = tmp_path / "out"
    done = _cli("--train-corpus", "emodb", "--test-corpus", "tess", "--data", str(data), "--upstream", "fbank",
                "--downstream", "mean", "--profile", "demo", "--epochs", "1", "--no-strict", "--out", str(out),
                "--threads", "1")
    assert done.returncode == 0, done.stderr
    shared = ["angry", "disgust", "fear", "happy", "neutral", "sad"]  # emodb's boredom and tess' surprise dropped
    assert f"classes {', '.join(shared)}" in done.stdout and "tess:ps" not in done.stdout
    rows = [r for r in csv.DictReader((out / "cross_emodb_tess.csv").open()) if r["fold"].isdigit()]
    tested = sum(1 for name in tess if "_ps." not in name)
    assert {r["fold"] for r in rows} == {"1", "2", "3", "4", "5"} and {int(r["n_test"]) for r in rows} == {tested}
    record = json.loads((out / "cross_emodb_tess.json").read_text())
    assert record["labels"] == shared and record["label_mapping"]["emodb:angry"] == "angry"
    assert "emodb:boredom" not in record["label_mapping"]
    (result,) = (out / "runs" / "fbank").glob("mean-*/fold3/result.json")
    assert len(json.loads(result.read_text())["test_ids"]) == tested
