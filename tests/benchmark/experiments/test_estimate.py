"""--estimate against what runs really write; retention; the disk check; the paper profile sized offline."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.common.config import ConfigError
from benchmark.experiments.definitions import load_profile
from benchmark.reporting.results import load_result
from benchmark.runner import RunRequest, resolve, run, run_cost

ROOT = Path(__file__).resolve().parents[3]
ROWS = (2, 4, 6, 9)  # a fine-tuning unit (its best: row 2, its average: 4), ECAPA on its average, ECAPA on fbank


def _request(corpus: Path, out: Path, **profile_changes) -> RunRequest:
    profile = replace(load_profile("demo").with_training(lambda c: replace(c, epochs=2)), **profile_changes)
    return RunRequest(table=1, experiments=ROWS, folds=(1,), data=corpus, out=out, profile=profile, strict=False,
                      threads=1)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _track_peak(monkeypatch: pytest.MonkeyPatch, out: Path) -> dict[str, int]:
    """Per unit folder, the most bytes it held at once: measured as each file is about to be written
    atomically (its temporary copy beside what is there), so the old and new resume state both count."""
    import benchmark.common.io as common_io

    peaks: dict[str, int] = {}
    write = common_io.atomic_write_bytes

    def tracked(path: Path, data: bytes) -> None:
        if path.parent.parent.parent.parent == out / "runs":
            key = str(path.parent.relative_to(out))
            peaks[key] = max(peaks.get(key, 0), _size(path.parent) + len(data))
        write(path, data)

    for module in ("benchmark.training.checkpoints", "benchmark.common.io"):
        monkeypatch.setattr(f"{module}.atomic_write_bytes", tracked)
    return peaks


def test_the_estimate_matches_what_a_demo_run_leaves_on_disk(tone_corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    request = _request(tone_corpus, out, keep_cache=True)  # the caches stay, to be measured too
    assert run(replace(request, estimate=True)) is None
    printed = capsys.readouterr().out
    assert "peak disk" in printed and "runs/tiny_hubert/finetune-" in printed
    assert not out.exists()  # the estimate writes nothing
    cost = run_cost(request, resolve(request, quiet=True))
    peaks = _track_peak(monkeypatch, out)
    run(request)
    for unit in cost.units:
        folder = out / unit.unit
        average = (folder / "average.safetensors").stat().st_size
        assert abs(unit.checkpoint - average) <= 0.02 * average, (unit.unit, unit.checkpoint, average)
        best = load_result(folder).best_epoch
        # keep: reported = the average, and the best epoch where a row reports it (row 2, the fine-tuned unit)
        reported = {"average.safetensors"} | ({f"epoch{best:03d}.safetensors"} if "/finetune-" in unit.unit else set())
        assert {p.name for p in folder.glob("*.safetensors")} == reported, unit.unit
        assert not (folder / "resume.pt").exists()
        assert 0.9 * unit.peak_disk <= peaks[unit.unit] <= unit.peak_disk * 1.02, (unit.unit, peaks[unit.unit], unit)
    caches = sum(n for u in cost.units for n in u.caches.values())
    assert abs(caches - _size(out / "cache")) <= 0.02 * caches, (caches, _size(out / "cache"))
    left = _size(out / "runs") + _size(out / "cache")
    assert abs(cost.retained - left) <= 0.10 * left, (cost.retained, left)
    assert cost.peak_disk >= cost.retained


@pytest.mark.parametrize("keep, files", [("all", {"epoch001", "epoch002", "average"}), ("average", {"average"})])
def test_retention_keeps_what_it_says_and_the_table_still_reports(keep, files, tone_corpus, tmp_path):
    out = tmp_path / keep
    request = _request(tone_corpus, out, keep=keep)  # keep_cache: false by default
    table = run(request).read_text()
    for folder in (out / "runs").glob("*/*/fold1"):
        assert {p.stem for p in folder.glob("*.safetensors")} == files
    assert not list((out / "cache").glob("*.safetensors"))  # every reader finished: caches dropped
    assert run(replace(request, report_only=True)).read_text() == table


def test_a_run_that_does_not_fit_stops_before_training_with_both_numbers(tone_corpus, tmp_path, monkeypatch):
    import benchmark.experiments.estimate as estimate

    monkeypatch.setattr(estimate, "free_bytes", lambda out: 1_000)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"needs up to 0\.0 GB at once .* only 0\.0 GB are free there.*--no-disk-check"):
        run(_request(tone_corpus, out))
    assert not (out / "runs").exists()
    run(replace(_request(tone_corpus, out), disk_check=False, experiments=(9,)))  # the override trains
    assert list((out / "runs").glob("fbank/*/fold1/result.json"))


def test_the_paper_profile_is_sized_offline(tone_corpus):
    """No checkpoint of the paper profile is on this machine: the architectures alone size it."""
    done = subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), "--table", "1", "--profile", "paper",
                           "--data", str(tone_corpus), "--no-strict", "--estimate", "--out", "/nonexistent/out"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    hubert = next(line for line in lines if line.startswith("runs/hubert/finetune-"))
    assert hubert.split()[1:3] == ["1.26", "GB"]  # 315.4 M float32 parameters
    assert lines[-1].startswith("total (") and "peak disk" in lines[-1] and "GPU memory up to" in lines[-1]


@pytest.mark.heavy
def test_a_real_size_hubert_large_unit_writes_the_estimated_checkpoint_and_resume_bytes(tmp_path, monkeypatch):
    """Randomly initialised HuBERT Large (transformers config only, 315 M parameters), one stage-1 unit
    of the paper profile, one epoch of 2 steps on a few utterances (CPU): its checkpoint and resume
    state are the estimated size within 5 %."""
    import torch
    from transformers import HubertConfig, HubertModel

    import benchmark.experiments.stages as stages
    from corpus_builder import Turn, write_tree

    checkpoint = tmp_path / "hubert_large_random"
    with torch.random.fork_rng(devices=[]):
        HubertModel(HubertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                                 feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
                    ).save_pretrained(checkpoint)
    labels = ("neu", "hap", "ang", "sad")
    turns = [Turn(f"Ses0{s}{g}_impro01_{g}00{i}", labels[(s + i) % 4], "so what", 1.0)
             for s in range(1, 6) for g in "FM" for i in range(1 if s == 1 else 2)]  # 2 test, 6 train, 2 valid
    corpus = write_tree(tmp_path / "corpus", turns)
    paper = load_profile("paper").with_training(lambda c: replace(c, epochs=1, max_batch_seconds=3.0))
    request = RunRequest(upstream="hubert", downstream="mean", upstream_ckpt=str(checkpoint), folds=(1,), data=corpus,
                         out=tmp_path / "out", profile=paper, strict=False, threads=2)
    [cost] = run_cost(request, resolve(request, quiet=True)).units
    written: dict[str, int] = {}
    retain = stages.apply_retention

    def measured(unit_dir, result, keep, *reported):
        written.update({p.name: p.stat().st_size for p in unit_dir.iterdir()})
        retain(unit_dir, result, keep, *reported)

    monkeypatch.setattr(stages, "apply_retention", measured)
    torch_threads = torch.get_num_threads()
    try:
        run(request)
    finally:
        torch.set_num_threads(torch_threads)
    assert abs(written["epoch001.safetensors"] - cost.checkpoint) <= 0.05 * cost.checkpoint
    assert abs(written["resume.pt"] - cost.resume) <= 0.05 * cost.resume, (written["resume.pt"], cost.resume)
    assert cost.checkpoint > 1.2e9 and cost.resume > 2.4e9  # AdamW's two moments; the weights are epoch001


def test_a_shared_cache_is_dropped_after_its_last_reader_only(tmp_path):
    """Rows 6 and 7 read the same averaged-HuBERT cache of a fold: it goes once both have finished."""
    import json

    from benchmark.experiments.definitions import load_table, select
    from benchmark.experiments.plan import FrozenUnit, RunSettings, cache_id, plan
    from benchmark.experiments.retention import CacheJanitor
    from benchmark.experiments.stages import CACHES_FILE

    settings = RunSettings(load_profile("demo"), 0, "superb", fold_data={1: "fold-1-data"})
    units = [u for u in plan(select(load_table(1), (6, 7)), (1,), settings) if isinstance(u, FrozenUnit)]
    row6, row7 = units
    shared = cache_id(row6, 0)
    assert shared == cache_id(row7, 0) and cache_id(row7, 1) != shared
    files = {cid: tmp_path / f"{i}.safetensors" for i, cid in enumerate({shared, cache_id(row7, 1)})}
    for path in files.values():
        path.write_bytes(b"x")
    for unit in units:
        unit.directory(tmp_path).mkdir(parents=True)
        record = {cache_id(unit, b): [str(files[cache_id(unit, b)])] for b in range(len(unit.upstreams))}
        (unit.directory(tmp_path) / CACHES_FILE).write_text(json.dumps(record))
    janitor = CacheJanitor(units, tmp_path, keep_cache=False)
    janitor.unit_done(row6)
    assert all(path.exists() for path in files.values())  # row 7 still reads both
    janitor.unit_done(row7)
    assert not any(path.exists() for path in files.values())
    kept = CacheJanitor(units, tmp_path, keep_cache=True)
    files[shared].write_bytes(b"x")
    kept.unit_done(row6), kept.unit_done(row7)
    assert files[shared].exists()


def test_an_upstream_without_an_architecture_is_named_not_guessed(tone_corpus, tmp_path, capsys):
    request = RunRequest(upstream="s3prl:mfcc", downstream="mean", folds=(1,), data=tone_corpus, out=tmp_path / "o",
                         profile="demo", strict=False, estimate=True)
    assert run(request) is None
    assert capsys.readouterr().out.splitlines()[-1] == "not counted (no architecture to size them): s3prl:mfcc"
