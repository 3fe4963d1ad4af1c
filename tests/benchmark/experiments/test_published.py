"""`--upstream hfcls:<dir>`: a published transformers audio-classification model scored as it is on our
folds, its labels mapped by name, as a recipe and as a row of a table, equal to the pipeline's answers."""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from benchmark.common.config import ConfigError
from benchmark.data import iemocap
from benchmark.experiments.definitions import Profile
from benchmark.experiments.published import map_labels
from benchmark.runner import RunRequest, run
from benchmark.training.config import TrainConfig
from downstream.ecapa import EcapaConfig
from run_benchmark import main
from upstream.tiny import tiny_config

MODEL_LABELS = {0: "Anger", 1: "calm", 2: "happiness", 3: "neutral", 4: "sad"}  # as published models spell them
PROFILE = Profile(name="quick", frozen=TrainConfig(epochs=2, max_batch_seconds=8.0, top_k=1, head_lr=3e-3),
                  ecapa=EcapaConfig(channels=16, embedding_size=8, attention_size=8, se_channels=8, res2net_scale=4))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec 2.0 audio classifier saved as a Hub model folder is."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    folder = tmp_path_factory.mktemp("published") / "ser-model"
    config = tiny_config("wav2vec2", num_labels=5, id2label=MODEL_LABELS,
                         label2id={v: k for k, v in MODEL_LABELS.items()}, classifier_proj_size=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = Wav2Vec2ForSequenceClassification(config).eval()
        with torch.no_grad():  # logits that depend on the input strongly enough to differ between utterances
            model.classifier.weight.mul_(40.0)
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True, return_attention_mask=False).save_pretrained(folder)
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_labels_map_by_name_and_by_the_label_map():
    mapping = map_labels(list(MODEL_LABELS.values()), ["neu", "hap", "ang", "sad"], source="m")
    assert mapping.pairs == (("Anger", "ang"), ("happiness", "hap"), ("neutral", "neu"), ("sad", "sad"))
    assert mapping.ignored == ("calm",) and mapping.unpredicted == ()
    explicit = map_labels(["pos", "neg", "neutral"], ["neu", "hap", "ang", "sad"], "pos=hap, neg=sad", "m")
    assert explicit.pairs == (("pos", "hap"), ("neg", "sad"), ("neutral", "neu")) and explicit.unpredicted == ("ang",)
    assert "no model label for (never predicted): ang" in explicit.describe()
    for spec, message in (("pos", "is not model_label=class"), ("joy=hap", "m has no label 'joy'"),
                          ("pos=happy", "'happy' is not a class of the corpus"), ("pos=hap,pos=neu", "mapped twice")):
        with pytest.raises(ConfigError, match=message):
            map_labels(["pos", "neg"], ["neu", "hap"], spec, "m")
    with pytest.raises(ConfigError, match="none of its labels"):
        map_labels(["pos", "neg"], ["neu", "hap"], "", "m")


def _pipeline_predictions(folder: Path, utterances: list) -> list[int]:
    """What `pipeline("audio-classification")` answers, mapped onto IEMOCAP's classes by hand."""
    from transformers import pipeline

    classify = pipeline("audio-classification", model=str(folder), device="cpu", top_k=None)
    onto = {"Anger": "ang", "happiness": "hap", "neutral": "neu", "sad": "sad"}
    predictions = []
    for u in utterances:
        wav, rate = soundfile.read(str(u.path), dtype="float32")
        scores = {s["label"]: s["score"] for s in classify({"raw": wav, "sampling_rate": rate})}
        by_class = {c: sum(v for k, v in scores.items() if onto.get(k) == c) for c in iemocap.LABELS}
        predictions.append(iemocap.LABELS.index(max(by_class, key=by_class.__getitem__)))
    return predictions


def test_a_published_model_scores_each_fold_as_the_pipeline_does(published, tone_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--upstream", f"hfcls:{published}", "--data", str(tone_corpus), "--folds", "1,2", "--no-strict",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "labels Anger → ang, happiness → hap, neutral → neu, sad → sad; not mapped (left out): calm" in printed
    (table,) = out.glob("hfcls_*ser-model.csv")  # the stem: the name as a path label, no downstream of ours
    rows = _rows(table)
    utterances = iemocap.load(tone_corpus, strict=False, verbose=False)
    for fold in (1, 2):
        (unit,) = (out / "runs").glob(f"hfcls_*/published-*/fold{fold}")
        result = json.loads((unit / "result.json").read_text())
        test = [next(u for u in utterances if u.id == i) for i in result["test_ids"]]
        expected = _pipeline_predictions(published, test)
        assert result["scores"]["best"]["predictions"] == expected == result["scores"]["average"]["predictions"]
        assert len(set(expected)) > 1  # the model does not answer one class for everything
        wa = 100 * np.mean(np.array(expected) == np.array([u.label_index for u in test]))
        for kind in ("best", "average"):
            row = next(r for r in rows if r["fold"] == str(fold) and r["checkpoint"] == kind)
            assert float(row["wa"]) == pytest.approx(wa, abs=0.006) and row["n_train"] == "0"
        assert json.loads((unit / "published.json").read_text())["ignored"] == ["calm"]
    # finished units are read back, not scored again; export has nothing to export
    written = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("result.json")}
    assert main(["--upstream", f"hfcls:{published}", "--data", str(tone_corpus), "--folds", "1,2", "--no-strict",
                 "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("result.json")} == written
    capsys.readouterr()
    assert main(["export", "--run", str(out), "--experiment", "0", "--fold", "1", "--to", str(tmp_path / "x")]) == 2
    assert "nothing was trained here to export" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_published_model_is_row_0_of_a_table_with_the_same_statistics(published, tone_corpus, tmp_path, capsys):
    request = RunRequest(table=1, experiments=(9,), upstream=f"hfcls:{published}", data=tone_corpus, folds=(1,),
                         out=tmp_path, profile=PROFILE, strict=False, threads=1)
    rows = {r["exp"]: r for r in _rows(run(request))}
    assert set(rows) == {"0", "9"} and rows["0"]["description"].startswith("published ")
    assert float(rows["0"]["wa_ci_low"]) <= float(rows["0"]["wa_mean"]) <= float(rows["0"]["wa_ci_high"])
    assert rows["0"]["paper_wacc"] == "" and "scored as it is" in rows["0"]["upstreams"]
    (pair,) = _rows(tmp_path / "table1_pairwise.csv")
    (unit,) = (tmp_path / "runs").glob("hfcls_*/published-*/fold1")
    tested = json.loads((unit / "result.json").read_text())["test_ids"]
    assert (pair["exp_a"], pair["exp_b"], int(pair["n"])) == ("0", "9", len(tested))  # the same test utterances
    recall = [r for r in _rows(tmp_path / "table1_recall.csv") if r["exp"] == "0" and r["fold"] == "pooled"]
    assert [r["class"] for r in recall] == list(iemocap.LABELS)
    assert json.loads((tmp_path / "run.json").read_text())["published"][f"hfcls:{published}"]["labels"][0] == "Anger"
    capsys.readouterr()
    assert run(replace(request, out=tmp_path / "estimated", estimate=True)) is None  # sized: weights, no training
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("runs/") and "/published-" in x)
    weights = (published / "model.safetensors").stat().st_size
    assert line.split()[-4:] == [f"{weights / 1e6:.2f}", "MB", "0.00", "MB"]  # GPU: its weights, no activations
    assert not (tmp_path / "estimated").exists()


def _write_bad_models(root: Path, published: Path) -> dict[str, Path]:
    from transformers import BertConfig

    no_preprocessor = root / "no_preprocessor"
    no_preprocessor.mkdir()
    (no_preprocessor / "config.json").write_text((published / "config.json").read_text())
    (no_preprocessor / "model.safetensors").write_bytes((published / "model.safetensors").read_bytes())
    only_training_args = root / "only_training_args"
    only_training_args.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (only_training_args / name).write_text((published / name).read_text())
    (only_training_args / "training_args.bin").write_bytes(b"not weights")
    broken_config = root / "broken_config"
    broken_config.mkdir()
    for name in ("preprocessor_config.json", "model.safetensors"):
        (broken_config / name).write_bytes((published / name).read_bytes())
    (broken_config / "config.json").write_text("{not json")
    broken_preprocessor = root / "broken_preprocessor"
    broken_preprocessor.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken_preprocessor / name).write_bytes((published / name).read_bytes())
    (broken_preprocessor / "preprocessor_config.json").write_text("{not json")
    regression = root / "regression"
    regression.mkdir()
    config = json.loads((published / "config.json").read_text()) | {"problem_type": "regression"}
    (regression / "config.json").write_text(json.dumps(config))
    for name in ("preprocessor_config.json", "model.safetensors"):
        (regression / name).write_bytes((published / name).read_bytes())
    text_model = root / "text_model"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(text_model)
    (text_model / "preprocessor_config.json").write_text("{}")
    (text_model / "model.safetensors").write_bytes(b"")
    return {"no_preprocessor": no_preprocessor, "text_model": text_model, "only_training_args": only_training_args,
            "broken_config": broken_config, "broken_preprocessor": broken_preprocessor, "regression": regression}


def test_bad_published_models_and_options_are_one_line_and_write_nothing(published, tone_corpus, tmp_path, capsys):
    bad = _write_bad_models(tmp_path, published)
    base = ["--data", str(tone_corpus), "--folds", "1", "--no-strict"]
    cases = [
        ([f"hfcls:{tmp_path / 'absent'}"], "no such folder"),
        ([f"hfcls:{bad['no_preprocessor']}"], "has no preprocessor_config.json"),
        ([f"hfcls:{bad['text_model']}"], "model type 'bert' is not an audio-classification model"),
        ([f"hfcls:{published}", "--label-map", "joy=hap"], "has no label 'joy'"),
        ([f"hfcls:{published}", "--label-map", "calm=excited"], "'excited' is not a class of the corpus"),
        ([f"hfcls:{published}", "--task", "dimensional"], "--task dimensional does not apply"),
        ([f"hfcls:{published}", "--downstream", "ecapa"], "--downstream ecapa does not apply"),
        (["fbank", "--label-map", "a=b"], "--label-map maps a published model's labels"),
        ([f"hfcls:{bad['only_training_args']}"], "has no weights file"),
        ([f"hfcls:{bad['broken_config']}"], f"{bad['broken_config'] / 'config.json'}: not a transformers config"),
        ([f"hfcls:{bad['broken_preprocessor']}"],
         f"{bad['broken_preprocessor'] / 'preprocessor_config.json'}: not a feature extractor config"),
        ([f"hfcls:{bad['regression']}"], "its head regresses values"),
        ([f"hfcls:{published}", "--seeds", "2"], "--seeds (no training, no seed) does not apply"),
        ([f"hfcls:{published}", "--table", "1", "--task", "both"], "--task both does not apply"),
        (["fbank", "--table", "1", "--experiment", "9", "--label-map", "a=b"], "add one with --upstream hfcls:"),
        ([f"hfcls:{published}", "--table", "1", "--experiment", "9", "--seeds", "2"], "--seeds (no training, no seed)"),
    ]
    for index, (arguments, message) in enumerate(cases):
        out = tmp_path / f"out{index}"
        assert main(["--upstream", *arguments, *base, "--out", str(out)]) == 2, arguments
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and message in error[0], (arguments, error)
        assert not out.exists()


def test_the_label_map_and_the_model_files_are_part_of_the_units_identity(published, tone_corpus, tmp_path,
                                                                           monkeypatch):
    base = RunRequest(upstream=f"hfcls:{published}", data=tone_corpus, folds=(1,), out=tmp_path, strict=False,
                      threads=1)
    run(base)
    run(RunRequest(**{**base.__dict__, "label_map": "calm=neu"}))
    folders = sorted(p.name for p in (tmp_path / "runs").glob("hfcls_*/published-*"))
    assert len(folders) == 2  # mapping calm onto neutral is another result
    run(RunRequest(**{**base.__dict__, "label_map": "CALM=neu"}))  # the model's labels, but for case
    monkeypatch.chdir(published.parent)
    run(RunRequest(**{**base.__dict__, "upstream": f"hfcls:./{published.name}"}))  # the same folder, named otherwise
    assert sorted(p.name for p in (tmp_path / "runs").glob("hfcls_*/published-*")) == folders


def test_a_half_precision_model_is_fed_as_the_pipeline_feeds_it(published, tone_corpus, tmp_path):
    from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    half = tmp_path / "half"
    AutoModelForAudioClassification.from_pretrained(published).half().save_pretrained(half)
    Wav2Vec2FeatureExtractor.from_pretrained(published).save_pretrained(half)
    result = json.loads(next((tmp_path / "o" / "runs").glob("hfcls_half/published-*/fold1/result.json")).read_text()) \
        if run(RunRequest(upstream=f"hfcls:{half}", data=tone_corpus, folds=(1,), out=tmp_path / "o", strict=False,
                          threads=1)) else {}
    utterances = {u.id: u for u in iemocap.load(tone_corpus, strict=False, verbose=False)}
    expected = _pipeline_predictions(half, [utterances[i] for i in result["test_ids"]])
    assert result["scores"]["average"]["predictions"] == expected


def test_a_table_row_with_an_hfcls_branch_beside_others_is_refused(published, tone_corpus, tmp_path, monkeypatch,
                                                                   capsys):
    from benchmark.experiments import definitions

    folder = tmp_path / "experiments" / "table1"
    folder.mkdir(parents=True)
    (folder / "exp01.yaml").write_text(f"id: 1\ndescription: fused\nbranches: [hfcls:{published}, fbank]\n"
                                       "finetune: [false, false]\naggregator: ecapa\nfusion: early\n")
    monkeypatch.setattr(definitions, "EXPERIMENTS_DIR", tmp_path / "experiments")
    assert main(["--table", "1", "--data", str(tone_corpus), "--no-strict", "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "experiment 1: an hfcls: model is a whole classifier" in error[0]
    assert not (tmp_path / "o").exists()
    (folder / "exp01.yaml").write_text(f"id: 1\ndescription: published, as a row\nbranches: [hfcls:{published}]\n"
                                       "finetune: [false]\naggregator: mean\n")
    (row,) = _rows(run(RunRequest(table=1, data=tone_corpus, folds=(1,), out=tmp_path / "r", strict=False, threads=1)))
    assert row["exp"] == "1" and float(row["wa_mean"]) >= 0.0 and "scored as it is" in row["upstreams"]


def test_a_multi_label_head_is_scored_with_sigmoids_as_the_pipeline_scores_it(published, tone_corpus, tmp_path):
    """Two labels onto one class (calm → neu): the class' probability is their sum, of sigmoids here."""
    import shutil

    from transformers import pipeline

    from benchmark.experiments.published import class_probabilities, resolve_published
    from benchmark.training.batching import AudioStore

    folder = tmp_path / "multi"
    shutil.copytree(published, folder)
    config = json.loads((folder / "config.json").read_text()) | {"problem_type": "multi_label_classification"}
    (folder / "config.json").write_text(json.dumps(config))
    model = resolve_published(f"hfcls:{folder}", iemocap.LABELS, "calm=neu")
    assert model.multi_label and ("calm", "neu") in model.mapping.pairs
    utterances = iemocap.load(tone_corpus, strict=False, verbose=False)[:6]
    ours = class_probabilities(model, iemocap.LABELS, utterances, AudioStore())
    classify = pipeline("audio-classification", model=str(folder), device="cpu", top_k=None)
    onto = dict(model.mapping.pairs)
    for row, u in zip(ours, utterances):
        wav, rate = soundfile.read(str(u.path), dtype="float32")
        scores = {s["label"]: s["score"] for s in classify({"raw": wav, "sampling_rate": rate})}
        expected = [sum(v for k, v in scores.items() if onto.get(k) == c) for c in iemocap.LABELS]
        assert row == pytest.approx(expected, abs=1e-5)
    assert ours.sum(-1).max() > 1.0 + 1e-3  # sigmoids: not a distribution (a softmax would sum to at most 1)


def test_report_only_without_the_model_reports_the_run_as_recorded(published, tone_corpus, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(published, copy)
    request = RunRequest(table=1, experiments=(9,), upstream=f"hfcls:{copy}", data=tone_corpus, folds=(1,),
                         out=tmp_path / "out", profile=PROFILE, strict=False, threads=1)
    table = run(request).read_text()
    shutil.rmtree(copy)  # results copied to another machine, without the model
    assert run(replace(request, report_only=True)).read_text() == table
    with pytest.raises(ConfigError, match="no such folder"):  # training needs it
        run(request)
