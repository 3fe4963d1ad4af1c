"""--jobs N: units in worker processes give the table of one process with the same thread count."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmark.common.faults import FAULT_ENV

ROOT = Path(__file__).resolve().parents[3]
PROFILE = """name: quick
finetune: {epochs: 2, upstream_lr: 5.0e-4, finetune_upstream: true, max_batch_seconds: 8.0, top_k: 2}
frozen: {epochs: 2, max_batch_seconds: 8.0, top_k: 2}
ecapa: {channels: 16, embedding_size: 8, attention_size: 8, se_channels: 8, res2net_scale: 4}
upstreams: {hubert: tiny_hubert}
"""
# rows 4 (fine-tuned HuBERT), 6 (ECAPA on its average: waits for row 4's unit), 9 (fbank ECAPA), 2 folds
COMMAND = ["--table", "1", "--experiment", "4,6,9", "--folds", "1,2", "--threads", "1"]


def _run(corpus: Path, out: Path, profile: Path, *extra: str, env: dict[str, str] | None = None):
    environment = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | (env or {})
    return subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), *COMMAND, "--data", str(corpus),
                           "--out", str(out), "--profile", str(profile), *extra],
                          capture_output=True, text=True, cwd=ROOT, env=environment, timeout=600)


def test_two_worker_processes_give_the_single_process_table(tone_corpus, tmp_path):
    profile = tmp_path / "quick.yaml"
    profile.write_text(PROFILE)
    alone = _run(tone_corpus, tmp_path / "alone", profile)
    assert alone.returncode == 0, alone.stderr
    pooled = _run(tone_corpus, tmp_path / "pooled", profile, "--jobs", "2")
    assert pooled.returncode == 0, pooled.stderr
    assert "2 worker processes" in pooled.stdout and pooled.stdout.count("[worker] ") == 6
    for name in ("table1.csv", "table1_folds.csv"):
        assert (tmp_path / "pooled" / name).read_text() == (tmp_path / "alone" / name).read_text()


def test_a_killed_worker_stops_the_run_with_one_line_and_resumes(tone_corpus, tmp_path):
    profile = tmp_path / "quick.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / "out"
    killed = _run(tone_corpus, out, profile, "--jobs", "2", env={FAULT_ENV: "step:*finetune-*fold1#3"})
    assert killed.returncode == 1, killed.stderr
    lines = killed.stderr.strip().splitlines()
    assert len(lines) == 1 and "a worker process ended abruptly" in lines[0], killed.stderr
    assert "finetune-" in lines[0] and "fold1" in lines[0] and "run the same command again" in lines[0]
    assert not (out / "table1.csv").exists()
    again = _run(tone_corpus, out, profile, "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert (out / "table1.csv").is_file()
