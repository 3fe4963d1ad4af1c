"""The command line: help, bad input (one line, non-zero exit, nothing written)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_help_lists_every_flag():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--upstream", "--downstream", "--data", "--folds", "--out", "--seed"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    "make_data, expected",
    [
        (lambda tmp: tmp / "missing", "corpus folder does not exist"),
        (lambda tmp: tmp, "no Session* folders"),
    ],
    ids=["folder missing", "no sessions"],
)
def test_bad_data_folder_exits_with_one_line_and_writes_nothing(tmp_path, make_data, expected):
    data = make_data(tmp_path)
    out = tmp_path / "results"
    result = run_cli("--data", str(data), "--folds", "1", "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(data) in lines[0] and expected in lines[0]
    assert not out.exists()


def test_unknown_fold_is_rejected(tmp_path):
    result = run_cli("--folds", "1,7", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "fold 7 does not exist" in result.stderr
    assert not (tmp_path / "r").exists()


def test_unknown_upstream_suggests_close_names(tmp_path):
    result = run_cli("--upstream", "fbnak", "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "unknown upstream 'fbnak'" in result.stderr and "did you mean fbank" in result.stderr
    assert not (tmp_path / "r").exists()


def test_threads_option_is_applied_and_recorded(tone_corpus, tmp_path):
    import json

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(root / "run_benchmark.py"), "--data", str(tone_corpus), "--no-strict", "--folds", "1",
               "--epochs", "1", "--threads", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "fbank_mean.json").read_text())["torch_threads"] == 1
    bad = subprocess.run([*command[:-2], "--threads", "0", "--out", str(tmp_path / "x")], capture_output=True,
                         text=True, cwd=root, timeout=600)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --threads must be at least 1"
    assert not (tmp_path / "x").exists()
