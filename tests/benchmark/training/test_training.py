"""Training engine: top-k files, resume after a crash, determinism, feature cache, stage reuse."""
import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import benchmark.training.loop as train_module
import benchmark.training.resume as resume_module
from benchmark.common.seeding import isolated_rng
from benchmark.data import iemocap
from benchmark.data.demo import ensure_demo_corpus, tiny_config
from benchmark.experiments.definitions import Profile
from benchmark.runner import RunRequest, run
from benchmark.training.batching import AudioStore, duration_batches, make_batch
from benchmark.training.cache import FrozenFeatures
from benchmark.training.checkpoints import load_training_state
from benchmark.training.config import TrainConfig
from benchmark.training.model import EmotionModel
from downstream.ecapa import EcapaConfig
from downstream.model import DownstreamConfig
from upstream import build_upstream

FROZEN = TrainConfig(epochs=6, head_lr=1e-3, max_batch_seconds=8.0, top_k=3)
FINETUNE = TrainConfig(epochs=3, head_lr=1e-3, upstream_lr=5e-4, finetune_upstream=True, max_batch_seconds=8.0, top_k=2)


PROFILE = Profile(name="test", finetune=FINETUNE, frozen=FROZEN, ecapa=EcapaConfig(
    channels=32, embedding_size=16, attention_size=8, se_channels=8, res2net_scale=4))


def _request(corpus: Path, out: Path, profile: Profile = PROFILE, **changes) -> RunRequest:
    return replace(RunRequest(data=corpus, folds=(1,), out=out, profile=profile), **changes)


def _unit(out: Path, upstream: str, unit: str) -> Path:
    """The fold-1 directory of the only unit of that kind (`finetune`, `mean`, `ecapa`) for `upstream`."""
    (directory,) = (out / "runs" / upstream).glob(f"{unit}-*/fold1")
    return directory


def _log(unit_dir: Path) -> list[dict]:
    """The per-epoch lines of a unit's log (the tested checkpoints' lines follow them)."""
    lines = [json.loads(line) for line in (unit_dir / "log.jsonl").read_text().splitlines()]
    return [line for line in lines if "checkpoint" not in line]


def test_top_k_checkpoints_on_disk_are_the_k_best_epochs(tone_corpus, tmp_path):
    run(_request(tone_corpus, tmp_path, profile=replace(PROFILE, keep="all")))  # the default keeps best + average
    unit_dir = _unit(tmp_path, "fbank", "mean")
    log = _log(unit_dir)
    assert [e["epoch"] for e in log] == list(range(1, 7))
    ranked = sorted(log, key=lambda e: (-e["valid_wa"], e["epoch"]))[:3]
    result = json.loads((unit_dir / "result.json").read_text())
    assert result["top_k_epochs"] == [e["epoch"] for e in ranked]
    assert sorted(p.name for p in unit_dir.glob("epoch*.safetensors")) == sorted(
        f"epoch{e['epoch']:03d}.safetensors" for e in ranked)
    assert not (unit_dir / "resume.pt").exists()
    assert set(result["scores"]) == {"best", "average"}
    rows = (tmp_path / "fbank_mean.csv").read_text().splitlines()
    assert rows[0].startswith("upstream,downstream,stage,checkpoint,fold")
    assert {r.split(",")[3] for r in rows[1:]} == {"best", "average"}


def _crash_after_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    original = resume_module.remove_epoch_files

    def crash(unit_dir, kept):
        original(unit_dir, kept)
        raise KeyboardInterrupt("simulated crash after epoch 1")

    monkeypatch.setattr(resume_module, "remove_epoch_files", crash)


def test_resumed_run_equals_uninterrupted_run_and_same_seed_agrees(tone_corpus, tmp_path, monkeypatch):
    request = _request(tone_corpus, tmp_path / "a", upstream="tiny_hubert")
    run(request)
    run(replace(request, out=tmp_path / "b"))
    with monkeypatch.context() as patch:
        _crash_after_first_epoch(patch)
        with pytest.raises(KeyboardInterrupt):
            run(replace(request, out=tmp_path / "c"))
    interrupted = _unit(tmp_path / "c", "tiny_hubert", "finetune")
    assert (interrupted / "resume.pt").is_file() and not (interrupted / "result.json").exists()
    state = load_training_state(interrupted / "resume.pt")  # the weights it resumes are epoch 1's file, not a copy
    assert "model" not in state and state["weights_file"] == "epoch001.safetensors"
    assert (interrupted / "resume.pt").stat().st_size < 2.2 * (interrupted / "epoch001.safetensors").stat().st_size
    run(replace(request, out=tmp_path / "c"))

    def comparable(out: Path) -> tuple:
        unit = _unit(out, "tiny_hubert", "finetune")
        log = [{k: v for k, v in e.items() if k != "seconds"} for e in _log(unit)]
        return json.loads((unit / "result.json").read_text()), log

    assert comparable(tmp_path / "b") == comparable(tmp_path / "a")
    assert comparable(tmp_path / "c") == comparable(tmp_path / "a")
    assert (tmp_path / "c" / "tiny_hubert_mean.csv").read_text() == (tmp_path / "a" / "tiny_hubert_mean.csv").read_text()


def test_finetuning_a_tiny_upstream_lowers_its_loss(tmp_path):
    corpus = ensure_demo_corpus(tmp_path / "data", tiny_config())
    request = _request(corpus, tmp_path / "out", replace(PROFILE, finetune=replace(FINETUNE, epochs=4, max_batch_seconds=12.0)),
                       upstream="tiny_hubert")
    run(request)
    losses = [e["train_loss"] for e in _log(_unit(tmp_path / "out", "tiny_hubert", "finetune"))]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name, dtype, tolerance", [("fbank", "float16", 2e-3), ("tiny_hubert", "float16", 2e-3),
                                                    ("tiny_hubert", "float32", 1e-5)])
def test_cached_features_equal_recomputed_ones(tone_corpus, tmp_path, name, dtype, tolerance):
    utterances = iemocap.load(tone_corpus)[:12]
    upstream, store = build_upstream(name), AudioStore()
    first = FrozenFeatures(upstream, store, 8.0, "all", tmp_path, dtype)
    first.precompute(utterances)
    again = FrozenFeatures(upstream, store, 8.0, "all", tmp_path, dtype)
    again.precompute(utterances)
    assert first.cache_hits == 0 and again.cache_hits == 1 and len(list(tmp_path.glob("*.safetensors"))) == 1
    for u in utterances:
        with torch.no_grad():
            alone = upstream.extract(make_batch([u], store))
        cached = again.outputs([u.id])
        assert len(cached.hidden_states) == upstream.num_layers
        assert int(cached.lengths[0]) == int(alone.lengths[0])
        for stored, direct in zip(cached.hidden_states, alone.hidden_states):
            scale = direct.abs().max().clamp(min=1.0)
            assert ((stored - direct).abs().max() / scale).item() <= tolerance


def test_ecapa_reuses_the_fine_tuned_averaged_upstream_of_the_fold(tone_corpus, tmp_path, capsys):
    request = _request(tone_corpus, tmp_path, replace(PROFILE, frozen=replace(FROZEN, epochs=2, top_k=2), keep_cache=True),
                       upstream="tiny_hubert")
    run(request)
    finetune_result = _unit(tmp_path, "tiny_hubert", "finetune") / "result.json"
    stamp = finetune_result.stat().st_mtime_ns
    capsys.readouterr()
    run(replace(request, downstream="ecapa"))
    assert "fine-tune tiny_hubert: already finished" in capsys.readouterr().out
    assert finetune_result.stat().st_mtime_ns == stamp
    assert (_unit(tmp_path, "tiny_hubert", "ecapa") / "result.json").is_file()
    raw = FrozenFeatures(build_upstream("tiny_hubert"), AudioStore(), 8.0, "last", tmp_path / "cache", "float16")
    folds_utts = iemocap.load(tone_corpus)
    cached = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(cached) == 1 and raw.cache_file(folds_utts) != cached[0]  # features of the fine-tuned weights
    rows = (tmp_path / "tiny_hubert_ecapa.csv").read_text().splitlines()
    assert all(",frozen," in row for row in rows[1:])


def test_precision_option_autocasts_only_where_asked():
    from benchmark.training.device import autocast

    weight, inputs = torch.randn(4, 4), torch.randn(2, 4)
    cpu = torch.device("cpu")
    for precision, dtype in (("auto", torch.float32), ("float32", torch.float32), ("bf16", torch.bfloat16)):
        with autocast(cpu, precision):
            assert (inputs @ weight).dtype == dtype, precision


def test_bf16_frozen_stage_trains_close_to_float32(tone_corpus, tmp_path):
    """`precision: bf16` on CPU: the same unit trains, its loss falls, and its test WA stays near float32's."""
    results = {}
    for precision in ("float32", "bf16"):
        profile = replace(PROFILE, frozen=replace(FROZEN, precision=precision))
        run(_request(tone_corpus, tmp_path / precision, profile, upstream="fbank", downstream="ecapa"))
        unit = _unit(tmp_path / precision, "fbank", "ecapa")
        log = _log(unit)
        assert log[-1]["train_loss"] < log[0]["train_loss"]
        results[precision] = json.loads((unit / "result.json").read_text())["scores"]["average"]["wa"]
    assert results["bf16"] > 50.0 and abs(results["bf16"] - results["float32"]) <= 15.0, results



def test_every_utterance_weighs_the_same_in_the_accumulated_gradient(tone_corpus, tmp_path):
    """Duration batches of 2–6 utterances, accumulated into one optimizer step: the gradient is that of
    the mean per-utterance loss over all of them (a per-batch mean would weigh utterances of small
    batches, i.e. long ones, more)."""
    train = [u for u in iemocap.load(tone_corpus) if u.session != 1][:30]
    valid = [u for u in iemocap.load(tone_corpus) if u.session == 1][:6]
    store, upstream = AudioStore(), build_upstream("fbank")
    features = FrozenFeatures(upstream, store, layers="last")
    features.precompute([*train, *valid])
    batches = duration_batches([u.duration for u in train], 4.0, None, min_batch_size=2)
    assert len({len(b) for b in batches}) > 1  # batches of different sizes
    config = TrainConfig(epochs=1, max_batch_seconds=4.0, grad_clip=1e9, grad_accumulation=len(batches),
                         batch_jitter=0.0, top_k=1)
    with isolated_rng(0):
        model = EmotionModel([upstream], DownstreamConfig(aggregator="mean"), stored_layers=[1])
    reference = copy.deepcopy(model)
    steps: list[list[torch.Tensor]] = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, *_: steps.append([p.grad.clone() for p in optimizer.param_groups[0]["params"]]))
    try:
        with isolated_rng(0) as generator:
            train_module.train_unit(model, train, valid, config, tmp_path, generator, store, [features])
    finally:
        handle.remove()
    assert len(steps) == 1
    losses = [torch.nn.functional.cross_entropy(reference.downstream([features.outputs([u.id])]),
                                                torch.tensor([u.label_index])) for u in train]
    torch.stack(losses).mean().backward()
    for accumulated, parameter in zip(steps[0], reference.downstream.parameters(), strict=True):
        torch.testing.assert_close(accumulated, parameter.grad, rtol=1e-5, atol=1e-7)


def test_a_resume_state_of_another_unit_is_not_continued(tone_corpus, tmp_path, capsys):
    """`resume.pt` records the unit's key: one copied from another unit is ignored, training starts afresh."""
    request = _request(tone_corpus, tmp_path / "fresh", upstream="fbank")
    run(request)
    expected = json.loads((_unit(tmp_path / "fresh", "fbank", "mean") / "result.json").read_text())
    other = _request(tone_corpus, tmp_path / "other", upstream="fbank", seed=5)
    with pytest.MonkeyPatch.context() as patch:
        _crash_after_first_epoch(patch)
        with pytest.raises(KeyboardInterrupt):
            run(other)
    stray = _unit(tmp_path / "other", "fbank", "mean") / "resume.pt"
    target = _request(tone_corpus, tmp_path / "target", upstream="fbank")
    unit_dir = tmp_path / "target" / _unit(tmp_path / "fresh", "fbank", "mean").relative_to(tmp_path / "fresh")
    unit_dir.mkdir(parents=True)
    shutil.copy(stray, unit_dir / "resume.pt")
    capsys.readouterr()
    run(target)
    assert "belongs to another unit identity" in capsys.readouterr().out
    result = json.loads((unit_dir / "result.json").read_text())
    assert result == expected and result["identity"] == unit_dir.parent.name.split("-")[1]


def test_both_checkpoints_are_scored_on_the_validation_set_too(tone_corpus, tmp_path):
    run(_request(tone_corpus, tmp_path, upstream="fbank"))
    unit_dir = _unit(tmp_path, "fbank", "mean")
    result = json.loads((unit_dir / "result.json").read_text())
    epochs = {e["epoch"]: e for e in _log(unit_dir)}
    best = result["best_epoch"]
    assert result["valid"]["best"]["wa"] == pytest.approx(100 * epochs[best]["valid_wa"])
    assert result["valid"]["best"]["ua"] == pytest.approx(100 * epochs[best]["valid_ua"])
    assert 0.0 <= result["valid"]["average"]["wa"] <= 100.0
    lines = [json.loads(line) for line in (unit_dir / "log.jsonl").read_text().splitlines()]
    assert [line.get("checkpoint") for line in lines[-2:]] == ["best", "average"]
    assert lines[-1]["epochs"] == result["top_k_epochs"] and lines[-1]["valid_wa"] == result["valid"]["average"]["wa"]
    rows = (tmp_path / "fbank_mean.csv").read_text().splitlines()
    header = rows[0].split(",")
    average_fold1 = dict(zip(header, next(r for r in rows if ",average,1," in r).split(",")))
    assert float(average_fold1["valid_wa"]) == pytest.approx(result["valid"]["average"]["wa"], abs=0.01)
