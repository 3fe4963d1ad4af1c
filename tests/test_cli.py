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
    for flag in ("--upstream", "--downstream", "--data", "--folds", "--out", "--seed", "--estimate", "--no-disk-check"):
        assert flag in result.stdout
    # a newcomer finds the subcommands in the help, each with flags that its own parser accepts
    assert "run_benchmark.py export --run DIR --experiment N --fold K --to FOLDER" in result.stdout
    assert "run_benchmark.py predict --model FOLDER FILE..." in result.stdout
    for command in ("export", "predict"):
        assert run_cli(command, "--help").returncode == 0


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


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_an_explicit_checkpoint_means_the_named_architecture_in_any_profile(tone_corpus, tmp_path):
    """`--upstream hubert --upstream-ckpt DIR` under the demo profile (which maps hubert to its stand-in)
    trains HuBERT from DIR, not the stand-in, and says so in the recipe CSV."""
    from upstream.tiny import build_tiny_model

    checkpoint = tmp_path / "my_hubert"
    build_tiny_model("hubert", seed=3).save_pretrained(str(checkpoint))
    out = tmp_path / "out"
    result = run_cli("--upstream", "hubert", "--upstream-ckpt", str(checkpoint), "--profile", "demo", "--data",
                     str(tone_corpus), "--folds", "1", "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "tiny_hubert" not in result.stdout
    assert list((out / "runs" / "hubert").glob("finetune-*/fold1/result.json"))
    rows = _csv_rows(out / "hubert_mean.csv")
    assert rows[0]["upstream"] == "hubert" and rows[0]["upstreams_run"] == f"hubert from {checkpoint}"
    assert rows[0]["profile"] == "demo"


def test_a_stand_in_is_announced_first_and_named_in_every_table(tone_corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli("--table", "1", "--experiment", "4,9", "--profile", "demo", "--data", str(tone_corpus),
                     "--folds", "1", "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    first_lines = result.stdout.splitlines()[:3]
    assert "profile demo: hubert → tiny_hubert (random init (seed 0), transformers hubert architecture)" in first_lines
    rows = {r["exp"]: r for r in _csv_rows(out / "table1.csv")}
    assert rows["4"]["upstreams"] == ("tiny_hubert (random init (seed 0), transformers hubert architecture; "
                                      "demo stand-in for hubert)")
    assert rows["9"]["upstreams"] == "fbank (torchaudio.compliance.kaldi.fbank)"
    assert {r["profile"] for r in rows.values()} == {"demo"}
    markdown = (out / "table1.md").read_text().splitlines()
    assert markdown[2].startswith("**Demo profile: these rows measure the pipeline on synthetic speech")
    assert markdown[2].count(". ") == 0  # one sentence
    assert f"- exp 4: {rows['4']['upstreams']} (profile demo)" in markdown
