"""`python -m bench.perf`: sections, CSV, failure handling (cheap sections only)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench import cache_vs_recompute, perf, s3prl_side_by_side


@pytest.fixture()
def small_corpus(tone_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cache_vs_recompute, "demo_corpus", lambda *a, **k: tone_corpus)
    return tone_corpus


def read(path: Path) -> list[dict[str, str]]:
    with open(path) as stream:
        return list(csv.DictReader(stream))


def test_padding_section_writes_its_rows(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "perf.csv"
    assert perf.main(["--only", "padding", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    rows = read(out)
    assert [r["metric"] for r in rows] == [f"padding_pct.{s}.{p}" for p in ("demo", "paper")
                                          for s in ("demo_corpus", "iemocap_like")]
    assert all(r["met"] in ("yes", "no") and r["target"] == "ours <= 15" for r in rows)
    assert out.with_suffix(".json").is_file()


def test_a_failing_section_is_recorded_and_fails_the_run(small_corpus: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("make demo failed (exit 2)")

    monkeypatch.setattr(perf.demo_e2e, "run", broken)
    out = tmp_path / "perf.csv"
    assert perf.main(["--only", "padding", "demo", "--out", str(out), "--work", str(tmp_path)]) == 1
    rows = {r["metric"]: r for r in read(out)}
    assert rows["make_demo.wall_s"]["met"] == "no" and rows["make_demo.wall_s"]["ours"] == ""
    assert rows["padding_pct.demo_corpus.demo"]["ours"] != ""


def test_missing_s3prl_packages_stop_before_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def missing() -> None:
        raise s3prl_side_by_side.MissingDependency("s3prl's emotion recipe needs librosa")

    monkeypatch.setattr(s3prl_side_by_side, "check_dependencies", missing)
    assert perf.main(["--only", "s3prl", "--out", str(tmp_path / "perf.csv")]) == 2
    assert "needs librosa" in capsys.readouterr().err
    assert not (tmp_path / "perf.csv").exists()


def test_stage2_assembly_before_and_after_give_the_same_batch_and_the_section_writes_its_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import torch

    from bench import perf, stage2_host
    from benchmark.training.cache import pad_outputs

    generator = torch.Generator().manual_seed(0)
    rows = [[torch.randn(n, 8, generator=generator).half()] for n in (5, 9, 2)]
    [before] = stage2_host._old_pad(rows)
    after = pad_outputs(rows)
    assert torch.equal(before, after.hidden_states[0]) and after.lengths.tolist() == [5, 9, 2]
    assert after.hidden_states[0].dtype == torch.float32 and (after.hidden_states[0][2, 2:] == 0).all()
    out = tmp_path / "perf.csv"
    monkeypatch.setattr(stage2_host, "measure", functools.partial(stage2_host.measure, 3, 1, utterances_total=150))
    assert perf.main(["--only", "stage2", "--out", str(out), "--work", str(tmp_path)]) == 0
    metrics = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert metrics == ["stage2_host_ms_per_step.base_hubert_ecapa512", "stage2_model_step_ms.base_hubert_ecapa512"]
