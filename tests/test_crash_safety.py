"""SIGKILL at several points of a 2-fold job, then the same command again: the same final tables."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.common.faults import FAULT_ENV
from corpus_builder import synthetic_turns, write_tree

ROOT = Path(__file__).resolve().parents[1]
PROFILE = """name: crash_test
frozen: {epochs: 2, max_batch_seconds: 8.0, top_k: 2, finetune_upstream: false}
ecapa: {channels: 16, embedding_size: 8, attention_size: 8, se_channels: 8, res2net_scale: 4}
"""


def _run(corpus: Path, out: Path, profile: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | {"OMP_NUM_THREADS": "1"}
    if fault:
        env[FAULT_ENV] = fault
    command = [sys.executable, str(ROOT / "run_benchmark.py"), "--table", "1", "--experiment", "9", "--data",
               str(corpus), "--folds", "1,2", "--out", str(out), "--profile", str(profile)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("crash_corpus"), synthetic_turns(per_class=2))


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("crash")
    profile = folder / "profile.yaml"
    profile.write_text(PROFILE)
    result = _run(corpus, folder / "uninterrupted", profile)
    assert result.returncode == 0, result.stderr
    return folder / "uninterrupted", profile


@pytest.mark.parametrize(
    "fault",
    ["write:fbank-*.safetensors", "step:*#3", "write:epoch002.safetensors", "write:resume.pt#2", "write:table1.csv"],
    ids=["during feature caching", "mid-epoch", "while writing a checkpoint", "while writing the resume state",
         "while writing the table"],
)
def test_killed_run_rerun_gives_the_uninterrupted_tables(corpus, tmp_path, reference, fault):
    expected, profile = reference
    out = tmp_path / "out"
    killed = _run(corpus, out, profile, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "table1.csv").exists()
    resumed = _run(corpus, out, profile)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("table1.csv", "table1_folds.csv"):
        assert (out / name).read_text() == (expected / name).read_text()
