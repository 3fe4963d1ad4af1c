"""The dimensional and multi-task runs end to end on a rated tone corpus: CCC columns, top-k by valid
CCC, resume equal to an uninterrupted run, a scatter figure, and predict printing the attributes."""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

import benchmark.training.resume as resume_module
from benchmark.data import iemocap
from benchmark.experiments.definitions import Profile
from benchmark.runner import RunRequest, run
from benchmark.training.config import TrainConfig
from corpus_builder import synthetic_turns, write_tree
from downstream.ecapa import EcapaConfig
from run_benchmark import main

FROZEN = TrainConfig(epochs=4, max_batch_seconds=8.0, top_k=2, head_lr=3e-3)
PROFILE = Profile(name="quick", frozen=FROZEN, dimensional_loss="mse",
                  ecapa=EcapaConfig(channels=16, embedding_size=8, attention_size=8, se_channels=8, res2net_scale=4))


@pytest.fixture(scope="module")
def rated_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tone corpus with per-class [V, A, D] ratings (and the frustrated / other turns rated too)."""
    return write_tree(tmp_path_factory.mktemp("rated"), synthetic_turns(per_class=4, rated=True))


def _request(corpus: Path, out: Path, task: str = "dimensional", profile: Profile = PROFILE) -> RunRequest:
    return RunRequest(upstream="fbank", downstream="mean", task=task, data=corpus, folds=(1,), out=out,
                      profile=profile, strict=False, threads=1)


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def _unit(out: Path) -> Path:
    (unit,) = (out / "runs" / "fbank").glob("mean-*/fold1")
    return unit


def test_dimensional_recipe_reports_ccc_ranks_by_it_and_uses_every_rated_turn(rated_corpus, tmp_path):
    out = tmp_path / "dim"
    csv_path = run(_request(rated_corpus, out, profile=replace(PROFILE, keep="all")))
    rows = _rows(csv_path)
    assert list(rows[0])[-6:] == ["ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean", "ccc_mean_ci_low",
                                  "ccc_mean_ci_high"]
    mean = next(r for r in rows if r["checkpoint"] == "average" and r["fold"] == "mean")
    assert float(mean["ccc_mean_ci_low"]) < float(mean["ccc_mean"]) < float(mean["ccc_mean_ci_high"])
    fold = next(r for r in rows if r["checkpoint"] == "average" and r["fold"] == "1")
    assert fold["wa"] == "" and float(fold["ccc_mean"]) > 0.3
    every = [u for u in iemocap.load(rated_corpus, strict=False, verbose=False, every_turn=True) if u.session == 1]
    assert int(fold["n_test"]) == len(every) > len([u for u in every if u.label_index >= 0])  # fru/xxx/exc turns too
    result = json.loads((_unit(out) / "result.json").read_text())
    scores = result["dimensional"]["average"]
    assert len(scores["predictions"]) == int(fold["n_test"]) and float(fold["ccc_mean"]) == pytest.approx(
        scores["ccc_mean"], abs=6e-4)
    log = [json.loads(line) for line in (_unit(out) / "log.jsonl").read_text().splitlines()][:FROZEN.epochs]
    ranked = sorted(log, key=lambda e: (-e["valid_ccc"], e["epoch"]))[: FROZEN.top_k]
    assert result["top_k_epochs"] == [e["epoch"] for e in ranked]  # top-k by validation mean CCC
    assert (out / "fbank_mean_attributes.png").is_file()

    model = tmp_path / "model"
    assert main(["export", "--run", str(out), "--experiment", "0", "--fold", "1", "--to", str(model)]) == 0
    wav = every[0].path
    table = tmp_path / "predicted.csv"
    assert main(["predict", "--model", str(model), str(wav), "--out", str(table)]) == 0
    (predicted,) = _rows(table)
    assert predicted["emotion"] == "" and {"arousal", "valence", "dominance"} <= set(predicted)
    from benchmark.predict import load_model

    direct = load_model(model, "cpu").predict(__import__("soundfile").read(str(wav), dtype="float32")[0], 16_000)
    assert float(predicted["arousal"]) == pytest.approx(direct["arousal"], abs=1e-5)


def test_a_resumed_dimensional_run_equals_an_uninterrupted_one(rated_corpus, tmp_path, monkeypatch):
    whole = run(_request(rated_corpus, tmp_path / "a"))
    original = resume_module.remove_epoch_files

    def crash(unit_dir, kept):
        original(unit_dir, kept)
        raise KeyboardInterrupt("after epoch 1")

    with monkeypatch.context() as patch:
        patch.setattr(resume_module, "remove_epoch_files", crash)
        with pytest.raises(KeyboardInterrupt):
            run(_request(rated_corpus, tmp_path / "b"))
    assert (_unit(tmp_path / "b") / "resume.pt").is_file()
    resumed = run(_request(rated_corpus, tmp_path / "b"))
    assert resumed.read_text().replace(str(tmp_path / "b"), "") == whole.read_text().replace(str(tmp_path / "a"), "")
    a, b = (json.loads((_unit(tmp_path / x) / "result.json").read_text()) for x in "ab")
    assert a["dimensional"] == b["dimensional"] and a["top_k_epochs"] == b["top_k_epochs"]


def test_both_tasks_at_once_report_classes_and_attributes(rated_corpus, tmp_path):
    rows = _rows(run(_request(rated_corpus, tmp_path / "both", task="both")))
    fold = next(r for r in rows if r["checkpoint"] == "average" and r["fold"] == "1")
    assert float(fold["wa"]) > 25.0 and float(fold["ccc_mean"]) > 0.2
    categorical = _rows(run(_request(rated_corpus, tmp_path / "cat", task="categorical")))
    assert "ccc_mean" not in categorical[0]
    # the same data: "both" tests the 4-class utterances only (it needs a class for every one)
    assert fold["n_test"] == next(r for r in categorical if r["fold"] == "1")["n_test"]


def test_epochs_from_the_command_line_win_and_labels_are_refused_for_the_dimensional_task(rated_corpus, tmp_path):
    from benchmark.request import resolve_profile

    profile = resolve_profile(RunRequest(epochs=2, profile=replace(PROFILE, dimensional_epochs=7), device="cpu"))
    assert profile.for_task(profile.frozen, "dimensional").epochs == 2
    assert main(["--data", str(rated_corpus), "--task", "dimensional", "--labels", "neu,hap", "--no-strict",
                 "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_a_table_of_both_tasks_has_ccc_columns_and_dimensional_tables_are_refused(rated_corpus, tmp_path, capsys):
    request = RunRequest(table=1, experiments=(9,), task="both", data=rated_corpus, folds=(1,), out=tmp_path / "t",
                         profile=PROFILE, strict=False, threads=1)
    (row,) = _rows(run(request))
    assert float(row["ccc_mean"]) > 0.2 and float(row["wa_mean"]) > 25.0
    assert float(row["ccc_mean_ci_low"]) < float(row["ccc_mean"]) < float(row["ccc_mean_ci_high"])
    unit = next((tmp_path / "t" / "runs" / "fbank").glob("ecapa-*/fold1"))
    scores = json.loads((unit / "result.json").read_text())["dimensional"]["average"]
    assert float(row["ccc_arousal"]) == pytest.approx(scores["ccc"][0], abs=6e-4)
    assert main(["--table", "1", "--experiment", "9", "--task", "dimensional", "--data", str(rated_corpus),
                 "--out", str(tmp_path / "d")]) == 2
    assert "tables report classes" in capsys.readouterr().err and not (tmp_path / "d").exists()
