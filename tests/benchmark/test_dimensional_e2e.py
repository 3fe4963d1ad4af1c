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


def test_a_table_of_both_tasks_has_ccc_columns(rated_corpus, tmp_path):
    request = RunRequest(table=1, experiments=(9,), task="both", data=rated_corpus, folds=(1,), out=tmp_path / "t",
                         profile=PROFILE, strict=False, threads=1)
    (row,) = _rows(run(request))
    assert float(row["ccc_mean"]) > 0.2 and float(row["wa_mean"]) > 25.0
    assert float(row["ccc_mean_ci_low"]) < float(row["ccc_mean"]) < float(row["ccc_mean_ci_high"])
    unit = next((tmp_path / "t" / "runs" / "fbank").glob("ecapa-*/fold1"))
    scores = json.loads((unit / "result.json").read_text())["dimensional"]["average"]
    assert float(row["ccc_arousal"]) == pytest.approx(scores["ccc"][0], abs=6e-4)


@pytest.fixture
def two_row_table(tmp_path, monkeypatch) -> Path:
    """Table 1 as a folder of two fbank rows: row 9 (ECAPA, top-k average) and row 12 (mean pooling, best)."""
    from benchmark.experiments import definitions

    folder = tmp_path / "experiments" / "table1"
    folder.mkdir(parents=True)
    row9 = (definitions.EXPERIMENTS_DIR / "table1" / "exp09.yaml").read_text()
    (folder / "exp09.yaml").write_text(row9)
    (folder / "exp12.yaml").write_text(row9.replace("id: 9", "id: 12").replace("aggregator: ecapa", "aggregator: mean")
                                       .replace("checkpoint: average", "checkpoint: best"))
    monkeypatch.setattr(definitions, "EXPERIMENTS_DIR", tmp_path / "experiments")
    return folder


def test_a_dimensional_table_reports_ccc_with_its_statistics_and_no_class_scores(rated_corpus, tmp_path,
                                                                                 two_row_table, capsys):
    from benchmark.reporting.dimensional import paired_difference

    out = tmp_path / "d"
    request = RunRequest(table=1, task="dimensional", data=rated_corpus, folds=(1,), out=out, profile=PROFILE,
                         strict=False, threads=1)
    rows = {r["exp"]: r for r in _rows(run(request))}
    printed = capsys.readouterr().out
    assert "exp  9: CCC 0." in printed and "WA" not in printed.split("exp  9:")[1].splitlines()[0]
    every = [u for u in iemocap.load(rated_corpus, strict=False, verbose=False, every_turn=True) if u.session == 1]
    results = {}
    for exp, aggregator in (("9", "ecapa"), ("12", "mean")):
        row = rows[exp]
        assert row["wa_mean"] == row["ua_std"] == row["wa_ci_low"] == row["wa_pooled"] == row["paper_wacc"] == ""
        assert float(row["ccc_mean_ci_low"]) < float(row["ccc_mean"]) < float(row["ccc_mean_ci_high"])
        (unit,) = (out / "runs" / "fbank").glob(f"{aggregator}-*/fold1")
        results[exp] = json.loads((unit / "result.json").read_text())
        kind = row["checkpoint"]
        scores = results[exp]["dimensional"][kind]
        assert len(scores["targets"]) == len(every)  # every rated turn, not only the four classes'
        assert [float(row[f"ccc_{a}"]) for a in ("arousal", "valence", "dominance")] == pytest.approx(scores["ccc"],
                                                                                                       abs=6e-4)
    folds = {r["exp"]: r for r in _rows(out / "table1_folds.csv")}
    assert folds["12"]["wa"] == folds["12"]["confusion"] == "" and int(folds["12"]["n_test"]) == len(every)
    assert float(folds["12"]["ccc_mean"]) == pytest.approx(results["12"]["dimensional"]["best"]["ccc_mean"], abs=6e-4)
    assert float(folds["12"]["valid_ccc_best"]) == pytest.approx(results["12"]["valid"]["best"]["ccc"], abs=6e-4)
    (pair,) = _rows(out / "table1_pairwise_ccc.csv")
    a, b = results["9"]["dimensional"]["average"], results["12"]["dimensional"]["best"]
    difference, low, high, p = paired_difference([(a["targets"], a["predictions"], b["predictions"])], 2_000,
                                                 1000 * 9 + 12)
    assert (pair["a"], pair["b"], float(pair["ccc_mean_diff"])) == ("9", "12", pytest.approx(difference[-1], abs=6e-4))
    assert float(pair["diff_low"]) <= float(pair["ccc_mean_diff"]) <= float(pair["diff_high"])
    markdown = (out / "table1.md").read_text()
    assert "CCC mean 95% CI" in markdown and "## Paired CCC comparisons" in markdown
    assert "WA mean" not in markdown and "WA/UA in %" not in markdown  # no row has classes: no empty columns
    assert "## Recall per class" not in markdown and not (out / "table1_confusion").exists()
    assert (out / "table1_pairwise.csv").read_text().count("\n") == 1  # WA/UA pairs: none, only the header
    assert {p.name for p in (out / "table1_attributes").iterdir()} == {"exp09.png", "exp12.png"}


def test_a_table_mixing_dimensional_rows_with_others_and_compare_on_them_are_one_line(rated_corpus, tmp_path,
                                                                                    two_row_table, capsys):
    row9 = two_row_table / "exp09.yaml"
    row9.write_text(row9.read_text() + "task: dimensional\n")
    assert main(["--table", "1", "--data", str(rated_corpus), "--out", str(tmp_path / "m"), "--no-strict"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "experiment 9: task dimensional" in error[0] and "experiment 12" in error[0]
    assert main(["--table", "1", "--task", "dimensional", "--compare", "9,12", "--data", str(rated_corpus),
                 "--out", str(tmp_path / "c"), "--no-strict"]) == 2
    assert "--compare tests WA/UA" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() and not (tmp_path / "c").exists()


def test_seeds_of_a_dimensional_table_report_the_spread_of_the_mean_ccc(rated_corpus, tmp_path, two_row_table):
    request = RunRequest(table=1, experiments=(12,), task="dimensional", data=rated_corpus, folds=(1,),
                         out=tmp_path, profile=PROFILE, strict=False, threads=1, seeds=2)
    first = _rows(run(request))[0]  # the table on disk is the first seed's
    second = _rows(run(replace(request, seed=1, seeds=1, report_only=True)))[0]
    (row,) = _rows(tmp_path / "table1_seeds.csv")
    assert "wa_seed0" not in row  # no classes in the table: no WA/UA columns
    a, b = float(row["ccc_mean_seed0"]), float(row["ccc_mean_seed1"])
    assert a == float(first["ccc_mean"]) and b == float(second["ccc_mean"]) and a != b
    assert float(row["ccc_mean_std_over_seeds"]) == pytest.approx(abs(a - b) / 2 ** 0.5, abs=1e-3)
    assert (row["ccc_mean_test_ci_low"], row["ccc_mean_test_ci_high"]) == (first["ccc_mean_ci_low"],
                                                                           first["ccc_mean_ci_high"])
    assert "CCC mean mean ± std over seeds" in (tmp_path / "table1_seeds.md").read_text()
