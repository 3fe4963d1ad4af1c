"""--launcher slurm: one submitit job per unit, dependencies, a killed job resubmitted, merged tables."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.common.faults import FAULT_ENV

ROOT = Path(__file__).resolve().parents[3]
PROFILE = """name: cluster_test
upstreams: {hubert: tiny_hubert}
finetune: {epochs: 2, upstream_lr: 5.0e-4, head_lr: 1.0e-3, finetune_upstream: true, max_batch_seconds: 8.0, top_k: 2}
frozen: {epochs: 2, max_batch_seconds: 8.0, top_k: 2, finetune_upstream: false}
ecapa: {channels: 16, embedding_size: 8, attention_size: 8, se_channels: 8, res2net_scale: 4}
"""
# Row 6 of Table 1: the averaged fine-tuned HuBERT feeds an ECAPA-TDNN, so each fold's stage-2 job
# depends on its stage-1 job. Two folds: four unit jobs.
COMMAND = ["--table", "1", "--experiment", "6", "--folds", "1,2", "--no-strict"]


def _run(corpus: Path, out: Path, profile: Path, *extra: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | {"OMP_NUM_THREADS": "1"} | (env or {})
    command = [sys.executable, str(ROOT / "run_benchmark.py"), *COMMAND, "--data", str(corpus), "--out", str(out),
               "--profile", str(profile), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster") / "profile.yaml"
    path.write_text(PROFILE)
    return path


def test_jobs_with_a_killed_one_resubmitted_give_the_in_process_table(tone_corpus, profile, tmp_path):
    in_process = _run(tone_corpus, tmp_path / "in_process", profile)
    assert in_process.returncode == 0, in_process.stderr
    out = tmp_path / "jobs"
    # fold 1's fine-tuning job is SIGKILLed at its 20th optimizer step (in epoch 2, after a resume state)
    killed = _run(tone_corpus, out, profile, "--launcher", "slurm", "--slurm-cluster", "local", "--local-jobs", "2",
                  env={FAULT_ENV: "step:*finetune-*fold1#20"})
    assert killed.returncode == 1, killed.stderr
    assert "fold1: job" in killed.stderr and "run the same command again" in killed.stderr
    assert len(killed.stderr.strip().splitlines()) == 1
    assert not (out / "table1.csv").exists()
    fold1, fold2 = sorted((out / "runs" / "tiny_hubert").glob("finetune-*/fold*"), key=lambda p: p.name)
    assert (fold2 / "result.json").is_file() and not (fold1 / "result.json").exists()
    assert (fold1 / "resume.pt").is_file()  # killed mid-way, with its first epoch saved
    assert not list((out / "runs" / "tiny_hubert").glob("ecapa-*"))  # its dependants never started

    resubmitted = _run(tone_corpus, out, profile, "--launcher", "slurm", "--slurm-cluster", "local", "--local-jobs", "2")
    assert resubmitted.returncode == 0, resubmitted.stderr
    assert "fold 1 fine-tune tiny_hubert: resuming after epoch 1" in _job_logs(out)
    assert len(re.findall(r"^job \d+: ", resubmitted.stdout, re.M)) == 3  # fold 1's two units, fold 2's ECAPA
    for name in ("table1.csv", "table1_folds.csv"):
        assert (out / name).read_text() == (tmp_path / "in_process" / name).read_text()


def _job_logs(out: Path) -> str:
    return "".join(p.read_text() for p in (out / "jobs").rglob("*_log.out"))


def test_slurm_submission_chains_stage_two_after_stage_one(tone_corpus, profile, tmp_path):
    """A stand-in `sbatch` records the scripts submitit writes: one job per unit, stage 2 with
    `--dependency=afterok:` on its fold's stage-1 job, a report job after all of them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text('#!/bin/sh\nn=$(ls "$SBATCH_LOG" | wc -l); n=$((n + 101))\n'
                      'cp "$1" "$SBATCH_LOG/$n.sh"\necho "Submitted batch job $n"\n')
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "submitted"
    log.mkdir()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SBATCH_LOG": str(log)}
    done = _run(tone_corpus, tmp_path / "out", profile, "--launcher", "slurm", "--slurm-partition", "gpu",
                "--slurm-account", "ser", "--gpus-per-job", "2", "--timeout-min", "120", env=env)
    assert done.returncode == 0, done.stderr
    scripts = {int(p.stem): p.read_text() for p in log.glob("*.sh")}
    assert sorted(scripts) == [101, 102, 103, 104, 105]
    for script in scripts.values():
        assert "#SBATCH --partition=gpu" in script and "#SBATCH --account=ser" in script
    units = {n: scripts[n] for n in (101, 102, 103, 104)}
    for n, script in units.items():
        assert "#SBATCH --time=120" in script and "#SBATCH --gpus-per-node=2" in script
        assert "#SBATCH --ntasks-per-node=2" in script  # one data-parallel task per GPU
    # plan order: fold 1 fine-tune, fold 1 ECAPA, fold 2 fine-tune, fold 2 ECAPA
    assert "--dependency" not in units[101] and "--dependency" not in units[103]
    assert "#SBATCH --dependency=afterok:101" in units[102] and "#SBATCH --kill-on-invalid-dep=yes" in units[102]
    assert all(re.search(r"^srun .*--kill-on-bad-exit=1 ", script, re.M) for script in scripts.values())
    assert "#SBATCH --dependency=afterok:103" in units[104]
    assert "#SBATCH --dependency=afterok:101:102:103:104" in scripts[105]
    assert "--gpus-per-node" not in scripts[105]
    assert not (tmp_path / "out" / "table1.csv").exists()
    assert "the tables, once the 4 unit job(s) have succeeded" in done.stdout


def test_slurm_launcher_without_slurm_is_one_clear_line(profile, tmp_path):
    """Checked before the corpus is read: a missing corpus is not what gets reported."""
    env = {"PATH": os.path.dirname(sys.executable)}  # no srun / sbatch
    done = _run(tmp_path / "no_corpus", tmp_path / "out", profile, "--launcher", "slurm", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --launcher slurm: SLURM's srun/sbatch not found on this machine; submit from a cluster login node, "
        "or pass --slurm-cluster local to run the same jobs here"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--slurm-partition", "gpu"], "error: --slurm-partition applies to --launcher slurm only"),
    (["--launcher", "slurm", "--slurm-cluster", "local", "--local-jobs", "0"], "error: --local-jobs must be at least 1, got 0"),
    (["--launcher", "slurm", "--mem-gb", "0"], "error: --mem-gb must be at least 1, got 0"),
], ids=["slurm option without the launcher", "no local jobs", "no memory"])
def test_cluster_options_are_checked_first(tone_corpus, profile, tmp_path, args, message):
    done = _run(tone_corpus, tmp_path / "out", profile, *args)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "out").exists()
