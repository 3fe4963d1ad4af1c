"""Statistics of the report: bootstrap intervals, paired tests, Holm, layer weights, and their outputs."""
import csv
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.common.config import ConfigError
from benchmark.data import iemocap, splits
from benchmark.data.fingerprint import fold_fingerprint
from benchmark.experiments.definitions import ExperimentConfig, Profile
from benchmark.experiments.plan import RunSettings, unit_for
from benchmark.reporting import results
from benchmark.reporting.layers import read_layer_weights
from benchmark.reporting.metrics import score
from benchmark.reporting.results import RESULT_FILE, UnitResult
from benchmark.reporting.sections import check_compare, comparison_text
from benchmark.reporting.stats import (
    Outcomes,
    StatsConfig,
    align,
    bootstrap_interval,
    compare,
    compare_all,
    holm,
    mcnemar_exact,
    sign_flip_test,
    stratified_counts,
)
from benchmark.reporting.tables import Row, write_table
from benchmark.runner import RunRequest, run
from benchmark.training.checkpoints import save_weights
from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel

FAST = StatsConfig(resamples=2000, seed=0)


def outcomes(labels, predictions, folds=None) -> Outcomes:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    folds = np.ones(len(labels), dtype=int) if folds is None else np.asarray(folds)
    return Outcomes(np.array([f"u{i}" for i in range(len(labels))]), folds, labels, predictions)


def with_accuracy(n: int, accuracy: float, seed: int, folds=None) -> Outcomes:
    """Balanced labels; exactly round(accuracy·n) utterances right, at random places."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    right = rng.permutation(n) < round(accuracy * n)
    return outcomes(labels, np.where(right, labels, (labels + 1) % 4), folds)


# ---- intervals -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("folds", [1, 4], ids=["one fold", "four folds"])
def test_interval_width_matches_the_binomial_standard_error(folds):
    n, p = 2000, 0.7
    o = with_accuracy(n, p, seed=1, folds=np.repeat(np.arange(1, folds + 1), n // folds))
    i = bootstrap_interval(o, 4, StatsConfig(resamples=10_000, seed=3))
    assert i.wa == pytest.approx(70.0)
    assert i.wa_low < i.wa < i.wa_high
    assert i.wa_high - i.wa_low == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / n) * 100, rel=0.1)
    assert i.ua_low < i.ua < i.ua_high


def test_multinomial_bootstrap_equals_resampling_utterances():
    o = with_accuracy(400, 0.6, seed=2)
    draws = stratified_counts(o.folds, o.correct.astype(int), 2, 20_000, seed=5)[:, 0, 1] / 400
    rng = np.random.default_rng(6)
    naive = o.correct[rng.integers(0, 400, size=(20_000, 400))].mean(1)
    assert draws.mean() == pytest.approx(naive.mean(), abs=2e-3)
    assert draws.std() == pytest.approx(naive.std(), rel=0.05)


def test_bootstrap_is_deterministic_given_its_seed():
    o = with_accuracy(300, 0.55, seed=4, folds=np.repeat([1, 2, 3], 100))
    first, again = bootstrap_interval(o, 4, FAST), bootstrap_interval(o, 4, FAST)
    assert (first.wa_low, first.wa_high, first.ua_low, first.ua_high) == (again.wa_low, again.wa_high, again.ua_low, again.ua_high)
    assert np.array_equal(first.recall_low, again.recall_low)
    other = bootstrap_interval(o, 4, replace(FAST, seed=1))
    assert (other.wa_low, other.wa_high) != (first.wa_low, first.wa_high)


def test_bootstrap_is_stratified_by_fold():
    """Fold 1 all right, fold 2 all wrong: resampling within folds keeps WA at exactly 50 %."""
    labels = np.arange(200) % 4
    predictions = np.where(np.arange(200) < 100, labels, (labels + 1) % 4)
    o = outcomes(labels, predictions, folds=np.repeat([1, 2], 100))
    i = bootstrap_interval(o, 4, FAST)
    assert i.wa == i.wa_low == i.wa_high == 50.0
    counts = stratified_counts(o.folds, labels, 4, 50, seed=0)
    assert (counts.sum(-1) == 100).all()  # every resample keeps each fold's size


def test_interval_centre_is_the_table_mean_over_folds():
    o = with_accuracy(333, 0.5, seed=7, folds=np.repeat([1, 2, 3], 111))
    per_fold = [score(o.labels[o.folds == k], o.predictions[o.folds == k], 4) for k in (1, 2, 3)]
    i = bootstrap_interval(o, 4, FAST)
    assert i.wa == pytest.approx(100 * np.mean([s.wa for s in per_fold]))
    assert i.ua == pytest.approx(100 * np.mean([s.ua for s in per_fold]))


# ---- paired tests and Holm -----------------------------------------------------------------------------

def test_identical_predictions_give_p_one_and_zero_difference():
    o = with_accuracy(500, 0.6, seed=8, folds=np.repeat([1, 2], 250))
    c = compare(1, o, 2, o, 4, FAST)
    assert c.p_wa == 1.0 and c.p_ua == 1.0
    assert c.wa_diff == c.wa_low == c.wa_high == 0.0 and c.a_only == c.b_only == 0


def test_a_clear_difference_is_significant():
    a = with_accuracy(600, 0.8, seed=9, folds=np.repeat([1, 2, 3], 200))
    worse = np.where(np.random.default_rng(10).random(600) < 0.25, (a.labels + 2) % 4, a.predictions)
    b = replace(a, predictions=worse)
    c = compare(1, a, 2, b, 4, FAST)
    assert c.p_wa < 0.01 and c.p_ua < 0.01
    assert c.wa_diff > 0 and c.wa_low > 0 and c.ua_low > 0
    assert c.b_only == 0 and c.a_only > 50


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5**6)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 2) == mcnemar_exact(2, 10) == pytest.approx(0.03857, abs=1e-4)


def test_sign_flip_test_on_wa_agrees_with_exact_mcnemar():
    a = with_accuracy(400, 0.7, seed=11)
    b = replace(a, predictions=np.where(np.random.default_rng(12).random(400) < 0.1, a.labels, a.predictions))
    a_only = int((a.correct & ~b.correct).sum())
    b_only = int((~a.correct & b.correct).sum())
    assert sign_flip_test(a, b, 4, 20_000, seed=0, metric="wa") == pytest.approx(mcnemar_exact(a_only, b_only), abs=0.01)


def test_holm_on_known_p_values():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.02]) == pytest.approx([0.02])


def test_pairs_are_aligned_by_fold_and_utterance():
    a = with_accuracy(8, 0.5, seed=13, folds=[1, 1, 1, 1, 2, 2, 2, 2])
    order = np.array([7, 6, 5, 4, 3, 2, 1, 0])
    b = Outcomes(a.ids[order], a.folds[order], a.labels[order], a.predictions[order])
    x, y = align(a, b)
    assert np.array_equal(x.ids, y.ids) and np.array_equal(x.predictions, y.predictions)
    with pytest.raises(ValueError, match="different labels"):
        align(a, replace(b, labels=(b.labels + 1) % 4))


def test_holm_family_and_per_pair_seeds():
    a = with_accuracy(300, 0.7, seed=14)
    b = replace(a, predictions=np.where(np.arange(300) < 30, (a.labels + 1) % 4, a.predictions))
    c = replace(a, predictions=np.where(np.arange(300) % 2 == 0, a.labels, a.predictions))
    pairs = compare_all({1: a, 2: b, 3: c}, 4, FAST)
    assert [(p.a, p.b) for p in pairs] == [(1, 2), (1, 3), (2, 3)]
    assert [p.p_wa_holm for p in pairs] == pytest.approx(holm([p.p_wa for p in pairs]).tolist())
    alone = compare(1, a, 3, c, 4, FAST)  # a pair's raw numbers do not depend on the other rows
    assert (alone.p_ua, alone.ua_low) == (pairs[1].p_ua, pairs[1].ua_low)
    reverse = compare(3, c, 1, a, 4, FAST)  # nor on the order of the two
    assert (reverse.ua_diff, reverse.ua_low, reverse.ua_high) == (-alone.ua_diff, -alone.ua_high, -alone.ua_low)
    assert (reverse.a_only, reverse.b_only, reverse.p_wa, reverse.p_ua) == (alone.b_only, alone.a_only, alone.p_wa, alone.p_ua)


# ---- report integration --------------------------------------------------------------------------------

def unit_result(fold: int, labels: np.ndarray, predictions: np.ndarray) -> UnitResult:
    s = score(labels, predictions, 4)
    scores = results.TestScores(100 * s.wa, 100 * s.ua, 100 * s.macro_f1, s.confusion.tolist(), predictions.tolist())
    return UnitResult(fold, "superb_procedure", "h", 10, 2, len(labels), 2, [2, 1], {"best": scores, "average": scores},
                      [f"Ses0{fold}_{i}" for i in range(len(labels))], labels.tolist())


def experiment(i: int, featurizer: str = "last") -> ExperimentConfig:
    return ExperimentConfig(id=i, description=f"row {i}", branches=("hubert",), finetune=(True,), aggregator="ecapa",
                            featurizer=featurizer)


def weighted_checkpoint(path: Path, logits: list[float]) -> None:
    """A checkpoint as training writes it for a frozen unit (the downstream, prefixed), from the real model."""
    model = DownstreamModel(DownstreamConfig(featurizer="weighted"), [BranchSpec(len(logits), 8, 320)])
    with torch.no_grad():
        model.featurizers[0].weights.copy_(torch.tensor(logits))
    save_weights(path, {f"downstream.{k}": v for k, v in model.state_dict().items()})


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, list[Row]]:
    out = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    rows, labels, good = [], {}, {}
    for k in (1, 2):
        labels[k] = np.arange(240) % 4
        good[k] = np.where(rng.random(240) < 0.85, labels[k], (labels[k] + 1) % 4)
    weak = {k: np.where(rng.random(240) < 0.5, (labels[k] + 3) % 4, good[k]) for k in (1, 2)}
    checkpoints = {}
    for k in (1, 2):
        checkpoints[k] = out / "runs" / f"fold{k}" / "average.safetensors"
        weighted_checkpoint(checkpoints[k], [0.0, 1.0 + k, 0.5, -1.0, 0.0])
    rows.append(Row(experiment(3), {k: unit_result(k, labels[k], good[k]) for k in (1, 2)}))
    rows.append(Row(experiment(5), {k: unit_result(k, labels[k], good[k]) for k in (1, 2)}))
    rows.append(Row(experiment(7, "weighted"), {k: unit_result(k, labels[k], weak[k]) for k in (1, 2)}, checkpoints))
    write_table(out, "table1", rows, {"profile": "test"}, stats=FAST)
    return out, rows


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_report_has_interval_columns_and_settings(table):
    out, rows = table
    lines = read(out / "table1.csv")
    assert [r["exp"] for r in lines] == ["3", "5", "7"]
    for r in lines:
        assert float(r["wa_ci_low"]) < float(r["wa_mean"]) < float(r["wa_ci_high"])
        assert float(r["ua_ci_low"]) < float(r["ua_mean"]) < float(r["ua_ci_high"])
        assert (r["ci_resamples"], r["ci_seed"]) == ("2000", "0")
    provenance = json.loads((out / "run.json").read_text())
    assert provenance["profile"] == "test"
    assert (provenance["statistics"]["resamples"], provenance["statistics"]["seed"]) == (2000, 0)


def test_report_pairwise_csv_and_significance_marks(table):
    out, _ = table
    pairs = {(r["exp_a"], r["exp_b"]): r for r in read(out / "table1_pairwise.csv")}
    assert set(pairs) == {("3", "5"), ("3", "7"), ("5", "7")}
    assert float(pairs["3", "5"]["p_wa"]) == 1.0 and pairs["3", "5"]["wa_significant"] == "0"
    assert float(pairs["3", "7"]["p_wa_holm"]) < 0.01 and pairs["3", "7"]["wa_significant"] == "1"
    assert pairs["3", "7"]["resamples"] == "2000" and pairs["3", "7"]["seed"] == "0"
    md = (out / "table1.md").read_text()
    assert "WA 95% CI" in md and "2000 resamples" in md and "seed 0" in md
    assert "## Paired comparisons" in md and "after Holm's correction over the 3 pair(s)" in md
    wa_matrix = md.split("WA:\n")[1].split("UA:\n")[0]
    exp3 = next(line for line in wa_matrix.splitlines() if line.startswith("| exp 3 |"))
    cells = [cell.strip() for cell in exp3.strip("|").split("|")]
    assert cells == ["exp 3", "—", "+0.00", cells[3]] and cells[3].startswith("+") and cells[3].endswith("*")


def test_report_recall_per_class(table):
    out, rows = table
    recall = read(out / "table1_recall.csv")
    pooled = [r for r in recall if r["exp"] == "3" and r["fold"] == "pooled"]
    assert [r["class"] for r in pooled] == ["neu", "hap", "ang", "sad"] and all(r["n"] == "120" for r in pooled)
    outcome = rows[0].outcomes()
    neu = outcome.labels == 0
    assert float(pooled[0]["recall"]) == pytest.approx(100 * outcome.correct[neu].mean(), abs=0.01)
    assert float(pooled[0]["ci_low"]) < float(pooled[0]["recall"]) < float(pooled[0]["ci_high"])
    assert len([r for r in recall if r["fold"] == "1"]) == 3 * 4
    assert "## Recall per class" in (out / "table1.md").read_text()


def test_report_layer_weights_of_a_weighted_featurizer(table):
    out, _ = table
    layers = read(out / "table1_layers.csv")
    assert {r["exp"] for r in layers} == {"7"} and {r["fold"] for r in layers} == {"1", "2", "mean"}
    fold2 = [float(r["weight"]) for r in layers if r["fold"] == "2"]
    logits = np.array([0.0, 3.0, 0.5, -1.0, 0.0])
    assert fold2 == pytest.approx(np.exp(logits) / np.exp(logits).sum(), abs=1e-6)
    assert (out / "table1_layers" / "exp07.png").read_bytes()[:4] == b"\x89PNG"
    assert "exp 7, branch hubert (5 layers): heaviest 1:" in (out / "table1.md").read_text()
    assert list(read_layer_weights(out / "runs" / "fold1" / "average.safetensors")) == [0]


def test_weighted_row_without_checkpoint_files_is_an_error(table, tmp_path):
    _, rows = table
    with pytest.raises(ValueError, match="experiment 7 uses the weighted featurizer"):
        write_table(tmp_path, "table1", [replace(rows[2], checkpoints={})], {}, stats=FAST)


def test_comparison_text_and_compare_checks(table):
    _, rows = table
    text = comparison_text(rows, FAST)
    assert "Holm over 3 pair(s)" in text and "WA:" in text and "UA:" in text and "*" in text
    with pytest.raises(ConfigError, match="two or more different"):
        check_compare((3, 3), [3, 5])
    with pytest.raises(ConfigError, match="experiment 8 is not among"):
        check_compare((3, 8), [3, 5])


def test_compare_through_the_runner_in_report_only_mode(tone_corpus, tmp_path, capsys):
    """Saved results of rows 9 and 10 on the tone corpus' folds (no training): --report-only --compare
    prints the matrix."""
    request = RunRequest(table=1, experiments=(9, 10), compare=(10, 9), folds=(1, 2), out=tmp_path,
                         data=tone_corpus, profile=Profile(name="quick"), report_only=True)
    folds = {f.index: f for f in splits.folds(iemocap.load(tone_corpus), "superb", (1, 2))}
    settings = RunSettings(Profile(name="quick").resolved_for("cpu"), request.seed, request.split,
                           fold_data={k: fold_fingerprint(f) for k, f in folds.items()})
    from benchmark.experiments.definitions import load_table, select

    rng = np.random.default_rng(1)
    for e, accuracy in zip(select(load_table(1), (9, 10)), (0.9, 0.4)):
        for k, fold in folds.items():
            labels = np.array([u.label_index for u in fold.test])
            predictions = np.where(rng.random(len(labels)) < accuracy, labels, (labels + 1) % 4)
            result = replace(unit_result(k, labels, predictions), split_hash=fold.split_hash,
                             test_ids=[u.id for u in fold.test])
            directory = unit_for(e, k, settings).directory(tmp_path)
            directory.mkdir(parents=True)
            (directory / RESULT_FILE).write_text(json.dumps(asdict(result)))
    run(request)
    printed = capsys.readouterr().out
    assert "Holm over 1 pair(s)" in printed and "exp 10" in printed
    assert (tmp_path / "table1_pairwise.csv").is_file()
    with pytest.raises(ConfigError, match="experiment 3 is not among"):
        run(replace(request, compare=(3, 9)))

def test_the_wa_p_value_tests_the_fold_mean_difference_that_is_shown():
    """#21 item 1. Folds of 100 and 1000 utterances: row a is +20 points on the small fold and −5 on the
    large one, so the fold-mean ΔWA shown is +7.5 with an interval above 0. Pooled over folds b is ahead
    (700 vs 670 right), and McNemar on the pooled utterances (the p reported before) called *b*
    significantly better (p = 0.026); the reported p now tests the shown difference."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 1100)
    folds = np.repeat([1, 2], [100, 1000])

    def predictions(right_small: int, right_large: int, offset: int) -> np.ndarray:
        correct = np.zeros(1100, dtype=bool)
        correct[np.arange(right_small)] = True
        correct[100 + (np.arange(right_large) + offset) % 1000] = True
        return np.where(correct, labels, (labels + 1) % 4)

    a = outcomes(labels, predictions(70, 600, 0), folds)
    b = outcomes(labels, predictions(50, 650, 50), folds)
    result = compare(1, a, 2, b, 4, StatsConfig(resamples=5000))
    assert result.wa_diff == pytest.approx(7.5) and result.wa_low > 0
    assert mcnemar_exact(result.a_only, result.b_only) < 0.05 and result.b_only > result.a_only  # pooled: b ahead
    assert result.p_wa < 0.05
    expected = sign_flip_test(*align(a, b), 4, 5000, seed=[0, 3, 1, 2], metric="wa")
    assert result.p_wa == expected
