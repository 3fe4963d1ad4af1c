"""Table 1: experiment files, validation errors, the plan, report-only, and resuming at unit level."""
import csv
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.common.config import ConfigError, load_config
from benchmark.experiments.definitions import ExperimentConfig, Profile, load_profile, load_table
from benchmark.experiments.plan import FinetuneUnit, FrozenUnit, RunSettings, plan, unit_for
from benchmark.runner import RunRequest, run
from benchmark.training.config import TrainConfig
from downstream.ecapa import EcapaConfig

TINY_ECAPA = EcapaConfig(channels=16, embedding_size=8, attention_size=8, se_channels=8, res2net_scale=4)
QUICK = Profile(name="quick", frozen=TrainConfig(epochs=3, max_batch_seconds=8.0, top_k=2), ecapa=TINY_ECAPA)


def test_table1_has_the_eleven_rows_of_the_paper():
    experiments = load_table(1)
    assert [e.id for e in experiments] == list(range(1, 12))
    by_id = {e.id: e for e in experiments}
    assert by_id[1].is_finetune_row and by_id[1].checkpoint == "best" and by_id[3].checkpoint == "average"
    assert (by_id[7].fusion, by_id[8].fusion, by_id[11].fusion) == ("early", "late", "late")
    assert by_id[9].branches == ("fbank",) and by_id[9].finetune == (False,)
    assert by_id[11].branches == ("fbank", "bert") and by_id[11].finetune == (False, True)
    assert all(e.aggregator == "ecapa" for e in experiments if e.id >= 5)


FOLD_DATA = {k: f"data-of-fold-{k}" for k in range(1, 6)}


def test_table1_plan_fine_tunes_each_upstream_once_per_fold():
    settings = RunSettings(load_profile("demo"), seed=0, split="superb", fold_data=FOLD_DATA)
    experiments = load_table(1)
    units = plan(experiments, (1, 2, 3, 4, 5), settings)
    finetunes = [u for u in units if isinstance(u, FinetuneUnit)]
    assert len(finetunes) == len(set(finetunes)) == 3 * 5
    assert sorted({u.upstream for u in finetunes}) == ["minilm", "tiny_hubert", "tiny_wav2vec2"]
    assert len([u for u in units if isinstance(u, FrozenUnit)]) == 7 * 5
    position = {unit: index for index, unit in enumerate(units)}
    for unit in units:
        if isinstance(unit, FrozenUnit):
            assert all(position[s] < position[unit] for s in unit.sources if s is not None)
    by_id = {e.id: e for e in experiments}
    assert unit_for(by_id[1], 2, settings) == unit_for(by_id[3], 2, settings)
    sources_of_7 = unit_for(by_id[7], 2, settings).sources
    assert unit_for(by_id[5], 2, settings).sources[0] == sources_of_7[1] == unit_for(by_id[3], 2, settings)
    changed = replace(settings, profile=replace(settings.profile, frozen=replace(settings.profile.frozen, epochs=99)))
    assert unit_for(by_id[9], 1, changed).key != unit_for(by_id[9], 1, settings).key


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp99.yaml"
    path.write_text(text)
    return path


GOOD = "id: 99\ndescription: d\nbranches: [fbank]\nfinetune: [false]\naggregator: ecapa\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "colour: blue\n", "exp99.yaml: unknown key 'colour'"),
        (GOOD.replace("id: 99", "id: ninety"), "exp99.yaml: id: expected int, got 'ninety'"),
        (GOOD.replace("aggregator: ecapa\n", ""), "exp99.yaml: missing required key 'aggregator'"),
        (GOOD.replace("aggregator: ecapa", "aggregator: lstm"), "exp99.yaml: aggregator: expected 'mean' | 'ecapa'"),
        (GOOD + "fusion: late\n", "exp99.yaml: fusion 'late' does not fit 1 branch"),
        (GOOD.replace("[false]", "[false, true]"), "finetune lists 2 flags for 1 branches"),
        (GOOD + "featurizer: middle\n", "exp99.yaml: featurizer: expected 'last', 'weighted' or a layer index >= 0, got 'middle'"),
        (GOOD + "featurizer: -2\n", "exp99.yaml: featurizer: expected 'last', 'weighted' or a layer index >= 0, got -2"),
        ("id: [1\n", "exp99.yaml:2: malformed YAML"),
        ("- just a list\n", "expected a mapping of ExperimentConfig fields"),
    ],
    ids=["unknown key", "wrong type", "missing key", "bad literal", "bad fusion", "flag count", "bad featurizer",
         "negative layer", "malformed", "not a mapping"],
)
def test_experiment_validation_errors_name_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_config(ExperimentConfig, _write(tmp_path, text))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_nested_profile_errors_name_the_key_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nfrozen:\n  epochs: ten\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: frozen.epochs: expected int, got 'ten'"):
        load_profile(str(path))
    path.write_text("name: mine\necapa:\n  chanels: 8\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: ecapa: unknown key 'chanels'"):
        load_profile(str(path))
    path.write_text("name: mine\nfrozen:\n  precision: fp16\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: frozen.precision: expected 'auto' \| 'float32' \| 'bf16', got 'fp16'"):
        load_profile(str(path))
    path.write_text("name: mine\nfrozen:\n  precision: bf16\n")
    assert load_profile(str(path)).frozen.precision == "bf16"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_table_report_only_and_unit_level_resume(tone_corpus, tmp_path, capsys):
    request = RunRequest(table=1, experiments=(9,), data=tone_corpus, folds=(1,), out=tmp_path, profile=QUICK)
    run(request)
    fold1 = next((tmp_path / "runs" / "fbank").glob("ecapa-*/fold1")) / "result.json"
    stamp = fold1.stat().st_mtime_ns
    capsys.readouterr()
    run(replace(request, folds=(1, 2)))  # an interrupted 2-fold run, rerun: only fold 2 is trained
    output = capsys.readouterr().out
    assert "fold 1 ecapa fbank: already finished" in output and "fold 2 ecapa fbank epoch 1" in output
    assert fold1.stat().st_mtime_ns == stamp
    table = (tmp_path / "table1.csv").read_text()
    folds = (tmp_path / "table1_folds.csv").read_text()
    (row,) = _rows(tmp_path / "table1.csv")
    assert row["exp"] == "9" and row["folds"] == "1 2" and row["paper_wacc"] == "56.52"
    assert float(row["wa_mean"]) > 25.0 and float(row["wa_minus_paper"]) == pytest.approx(float(row["wa_mean"]) - 56.52, abs=0.01)
    assert (tmp_path / "table1_confusion" / "exp09.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 9 |" in (tmp_path / "table1.md").read_text()
    for name in ("table1.csv", "table1_folds.csv"):
        (tmp_path / name).unlink()
    run(replace(request, folds=(1, 2), data=tmp_path / "gone", report_only=True))  # no data, no training
    assert (tmp_path / "table1.csv").read_text() == table
    assert (tmp_path / "table1_folds.csv").read_text() == folds


def test_report_only_without_results_says_what_is_missing(tone_corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished result for experiment 9 fold 1 on this corpus"):
        run(RunRequest(table=1, experiments=(9,), folds=(1,), data=tone_corpus, out=tmp_path, profile=QUICK,
                       report_only=True))


def test_unit_keys_hold_what_decides_the_result():
    """Resolved precision, the fold's data and each upstream's input pipeline are part of every key."""
    paper = load_profile("paper")
    settings = RunSettings(paper.resolved_for("cpu"), 0, "superb", fold_data=FOLD_DATA)
    units = plan(load_table(1), (1,), settings)
    assert {type(u) for u in units} == {FinetuneUnit, FrozenUnit}
    # pinned: a change here orphans every finished unit of this version (#19 changed it: the release
    # pipeline now records the pinned do_normalize, the attention-mask rule and batch-independent evaluation)
    assert units[0].key == "603bf2d77a"
    assert settings.profile.finetune.precision == settings.profile.frozen.precision == "float32"
    on_gpu = plan(load_table(1), (1,), replace(settings, profile=paper.resolved_for("cuda")))
    assert paper.resolved_for("cuda").frozen.precision == "bf16"
    assert all(a.key != b.key for a, b in zip(units, on_gpu, strict=True))
    other_copy = plan(load_table(1), (1,), replace(settings, fold_data={1: "another copy of the corpus"}))
    assert all(a.key != b.key for a, b in zip(units, other_copy, strict=True))
    assert all(a.key == b.key for a, b in zip(units, plan(load_table(1), (1,), settings), strict=True))


def test_unit_keys_follow_the_upstreams_input_pipeline(monkeypatch):
    import upstream.hub as hub

    settings = RunSettings(load_profile("demo").resolved_for("cpu"), 0, "superb", fold_data=FOLD_DATA)
    by_id = {e.id: e for e in load_table(1)}
    before = unit_for(by_id[9], 1, settings).key, unit_for(by_id[4], 1, settings).key
    spec = hub._SPECS["fbank"]
    monkeypatch.setitem(hub._SPECS, "fbank", replace(spec, input_pipeline=(*spec.input_pipeline, ("dither", 1.0))))
    assert unit_for(by_id[9], 1, settings).key != before[0]  # fbank's frames changed: row 9 retrains
    assert unit_for(by_id[4], 1, settings).key == before[1]  # HuBERT's did not




# Every row of Table 1 as the paper profile resolves it: branches (registered upstreams), fine-tuned
# flags, aggregator, fusion, reported checkpoint, per-branch input normalisation of the ECAPA stage.
TABLE1_PAPER = {
    1: (("wav2vec2",), (True,), "mean", "none", "best", None),
    2: (("hubert",), (True,), "mean", "none", "best", None),
    3: (("wav2vec2",), (True,), "mean", "none", "average", None),
    4: (("hubert",), (True,), "mean", "none", "average", None),
    5: (("wav2vec2",), (True,), "ecapa", "none", "average", ("none",)),
    6: (("hubert",), (True,), "ecapa", "none", "average", ("none",)),
    7: (("hubert", "wav2vec2"), (True, True), "ecapa", "early", "average", ("none", "none")),
    8: (("hubert", "wav2vec2"), (True, True), "ecapa", "late", "average", ("none", "none")),
    9: (("fbank",), (False,), "ecapa", "none", "average", ("global",)),
    10: (("bert",), (True,), "ecapa", "none", "average", ("none",)),
    11: (("fbank", "bert"), (False, True), "ecapa", "late", "average", ("global", "none")),
}


def test_every_table1_row_resolves_as_the_paper_describes_it():
    settings = RunSettings(load_profile("paper").resolved_for("cpu"), 0, "superb", fold_data=FOLD_DATA)
    for experiment in load_table(1):
        unit = unit_for(experiment, 1, settings)
        branches, finetune, aggregator, fusion, checkpoint, norms = TABLE1_PAPER[experiment.id]
        assert (experiment.finetune, experiment.aggregator, experiment.fusion, experiment.checkpoint) == (
            finetune, aggregator, fusion, checkpoint), experiment.id
        if isinstance(unit, FinetuneUnit):
            assert ((unit.upstream,), None) == (branches, norms), experiment.id
        else:
            assert (unit.upstreams, unit.input_norm, unit.aggregator, unit.fusion) == (
                branches, norms, aggregator, fusion), experiment.id
            assert tuple(s is not None for s in unit.sources) == finetune, experiment.id


def test_input_norm_per_branch_in_experiment_files(tmp_path):
    two = GOOD.replace("branches: [fbank]", "branches: [fbank, bert]").replace("[false]", "[false, true]")
    two += "fusion: late\n"
    settings = RunSettings(load_profile("paper").resolved_for("cpu"), 0, "superb", fold_data=FOLD_DATA)
    for written, resolved in (("auto", ("global", "none")), ("[sentence_mean, none]", ("sentence_mean", "none")),
                              ("true", ("global", "global")), ("false", ("none", "none"))):
        experiment = load_config(ExperimentConfig, _write(tmp_path, two + f"input_norm: {written}\n"))
        assert unit_for(experiment, 1, settings).input_norm == resolved, written
    with pytest.raises(ConfigError, match="input_norm: expected 'auto'"):
        load_config(ExperimentConfig, _write(tmp_path, two + "input_norm: [global]\n"))  # one mode for 2 branches
    with pytest.raises(ConfigError, match="input_norm: expected 'auto'"):
        load_config(ExperimentConfig, _write(tmp_path, GOOD + "input_norm: cmvn\n"))
