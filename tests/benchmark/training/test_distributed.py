"""Data parallelism: 2 CPU processes (gloo) under torchrun against one process, on fold 1 of the tone corpus.

tests/distributed_worker.py trains one unit (2 epochs, top-2 averaging, test of best and average)
and records, per rank, a hash of the whole model state at every evaluation and the ids it scored.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from benchmark.common.faults import FAULT_ENV

ROOT = Path(__file__).resolve().parents[3]
WORKER = ROOT / "tests" / "distributed_worker.py"
# Fine-tuning without dropout or BatchNorm: 2 ranks do the single process's arithmetic up to the order
# of float additions in the gradient all-reduce.
WEIGHT_TOLERANCE = 1e-5


def _launch(corpus: Path, out: Path, mode: str, processes: int, fault: str | None = None) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if fault:
        env[FAULT_ENV] = fault
    if processes == 1:
        command = [sys.executable, str(WORKER)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   str(WORKER)]
    done = subprocess.run([*command, str(corpus), str(out), mode], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    if fault:
        assert done.returncode != 0 and not (out / "rank0.json").exists(), done.stderr[-3000:]
        return []
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(processes)]


@pytest.fixture(scope="module")
def finetune_runs(tone_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], Path, list[dict]]:
    single, parallel = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("parallel")
    return single, _launch(tone_corpus, single, "finetune", 1), parallel, _launch(tone_corpus, parallel, "finetune", 2)


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("rows", [2, 3, 5, 12])
def test_global_batch_is_dealt_out_once_with_two_distinct_rows_per_rank(size, rows):
    from unittest import mock

    from benchmark.training import distributed

    batch = list(range(100, 100 + rows))
    dealt = []
    for rank in range(size):
        with mock.patch.object(distributed, "world", return_value=distributed.World(rank, size)):
            share, real = distributed.my_rows(batch)
        assert share[:real] == batch[rank::size]  # the real rows first, in order
        dealt += share[:real]
        if size > 1:
            assert len(set(share)) == len(share) >= 2 and set(share) <= set(batch)  # fillers: other rows, distinct
        else:
            assert share == batch
    assert sorted(dealt) == batch  # every row of the global batch is trained on exactly once


def _each_evaluated_once(ranks: list[dict], evaluations_per_set: int) -> None:
    counts = Counter(uid for rank in ranks for uid in rank["scored"])
    test, valid = ranks[0]["test_ids"], ranks[0]["valid_ids"]
    assert set(counts) == set(test) | set(valid)
    # the valid set once per epoch (2) and once for the average, the test set once per checkpoint
    assert all(counts[uid] == evaluations_per_set for uid in test)
    assert all(counts[uid] == 3 for uid in valid)
    assert all(rank["scored"] for rank in ranks)  # both ranks did a share


def test_two_ranks_hold_identical_weights_at_every_evaluation(finetune_runs):
    _, _, _, ranks = finetune_runs
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert len(ranks[0]["state_hashes"]) == 5  # 2 epochs + best (test) + average (valid and test)
    assert ranks[0]["state_hashes"] == ranks[1]["state_hashes"]


def test_two_ranks_match_one_process_with_the_same_global_batch(finetune_runs):
    single_dir, (single,), parallel_dir, ranks = finetune_runs
    expected, got = torch.load(single_dir / "final_state.pt"), torch.load(parallel_dir / "final_state.pt")
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=WEIGHT_TOLERANCE, msg=name)
    for rank in ranks:  # both ranks report the whole test set's scores, equal to the single process's
        for kind in ("best", "average"):
            assert rank["result"]["scores"][kind] == single["result"]["scores"][kind]
        assert rank["result"]["top_k_epochs"] == single["result"]["top_k_epochs"]


def test_each_test_utterance_is_scored_once_across_ranks(finetune_runs):
    _, (single,), _, ranks = finetune_runs
    _each_evaluated_once(ranks, 2)
    assert Counter(single["scored"]) == Counter(uid for r in ranks for uid in r["scored"])


def test_two_ranks_killed_mid_training_resume_to_the_uninterrupted_result(finetune_runs, tone_corpus, tmp_path):
    """Both ranks are SIGKILLed at a step of epoch 2; the same launch again resumes from rank 0's resume
    state after epoch 1 and ends with the uninterrupted 2-rank run's weights and scores."""
    _, _, parallel_dir, ranks = finetune_runs
    steps_per_epoch = 108 // 12  # tone corpus fold 1: 108 training turns of ≈ 1 s, 16-s batches
    _launch(tone_corpus, tmp_path, "finetune", 2, fault=f"step:*#{steps_per_epoch + 3}")
    assert (tmp_path / "unit" / "resume.pt").is_file() and not (tmp_path / "unit" / "result.json").exists()
    resumed = _launch(tone_corpus, tmp_path, "finetune", 2)
    for rank, expected in zip(resumed, ranks, strict=True):
        assert rank["result"] == expected["result"]
        assert rank["state_hashes"][-3:] == expected["state_hashes"][-3:]  # epoch 2, best and average models
    expected_state, state = torch.load(parallel_dir / "final_state.pt"), torch.load(tmp_path / "final_state.pt")
    for name in expected_state:
        assert torch.equal(state[name], expected_state[name]), name


def test_short_shares_and_gradient_accumulation_keep_the_single_process_result(tone_corpus, tmp_path):
    """2–3 utterances per global batch leave ranks one row (filled up with zero-weighted repeats), and
    two micro-batches per step go through DDP's no_sync: still the single process's arithmetic."""
    (single,) = _launch(tone_corpus, tmp_path / "one", "finetune_small", 1)
    ranks = _launch(tone_corpus, tmp_path / "two", "finetune_small", 2)
    expected, got = torch.load(tmp_path / "one" / "final_state.pt"), torch.load(tmp_path / "two" / "final_state.pt")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=WEIGHT_TOLERANCE, msg=name)
    assert ranks[0]["state_hashes"] == ranks[1]["state_hashes"]
    for rank in ranks:
        assert rank["result"]["scores"] == single["result"]["scores"]


def test_frozen_ecapa_with_batchnorm_keeps_ranks_identical(tone_corpus, tmp_path):
    """BatchNorm statistics are per rank (as in any DDP run without SyncBatchNorm): the result is not the
    single process's, but the ranks' models (running statistics included) stay identical."""
    ranks = _launch(tone_corpus, tmp_path, "frozen", 2)
    assert ranks[0]["state_hashes"] == ranks[1]["state_hashes"]
    _each_evaluated_once(ranks, 2)
    assert ranks[0]["result"] == ranks[1]["result"]
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    assert [r["cache_hits"] for r in ranks] == [0, 1]  # rank 0 filled the cache, rank 1 read it


def test_run_benchmark_under_torchrun_reports_once(tone_corpus, tmp_path):
    """The CLI itself under torchrun: rank 0 alone holds the lock, prints and writes the recipe CSV."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "run_benchmark.py"), "--upstream", "tiny_hubert", "--downstream", "mean", "--data",
               str(tone_corpus), "--no-strict", "--folds", "1", "--epochs", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("tiny_hubert_mean [average]: mean over 1 fold(s)") == 1
    assert json.loads((tmp_path / "tiny_hubert_mean.json").read_text())["data_parallel_processes"] == 2
    assert len((tmp_path / "tiny_hubert_mean.csv").read_text().splitlines()) == 7  # header, 2 folds rows, 4 stats


_BARRIER_SCRIPT = """
import sys, time
import torch.distributed as dist
from benchmark.training import distributed
world = distributed.init_from_env()
try:
    with distributed.main_first():
        if world.is_main:
            time.sleep(float(sys.argv[1]))  # rank 0 'precomputes' while rank 1 waits at the barrier
    print(f"rank {world.rank} passed", flush=True)
finally:
    distributed.shutdown()
"""


@pytest.mark.parametrize("minutes, wait_s, passes", [(0.02, 4.0, False)])
def test_the_process_group_timeout_is_what_waiting_ranks_get(minutes, wait_s, passes, tmp_path):
    """gloo: a rank waits at the barrier for rank 0's work only as long as $SER_PROCESS_GROUP_TIMEOUT_MIN
    says (1.2 s here: rank 0's 4 s of work fail it). Waits within the timeout: every other test here."""
    from benchmark.training.distributed import TIMEOUT_ENV

    script = tmp_path / "barrier.py"
    script.write_text(_BARRIER_SCRIPT)
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), TIMEOUT_ENV: str(minutes)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(wait_s)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert (done.returncode == 0) == passes, done.stderr[-2000:]
    assert (done.stdout.count("passed") == 2) == passes


def test_default_timeout_and_device_mapping_for_one_gpu_per_task(monkeypatch):
    """LOCAL_RANK 3 on a node whose tasks each see one GPU maps to cuda:0; the group gets the long timeout."""
    from datetime import timedelta

    import torch.distributed as dist

    from benchmark.training import distributed

    calls: dict[str, object] = {}
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.delenv(distributed.TIMEOUT_ENV, raising=False)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.setdefault("device", index))
    monkeypatch.setattr(dist, "init_process_group", lambda backend, timeout: calls.update(backend=backend, timeout=timeout))
    monkeypatch.setattr(distributed, "world", lambda: distributed.World(3, 4))
    distributed.init_from_env()
    assert calls == {"device": 0, "backend": "nccl", "timeout": timedelta(minutes=240)}
    assert [distributed.local_device_index(r, 4) for r in range(6)] == [0, 1, 2, 3, 0, 1]
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "0")
    with pytest.raises(ValueError, match="SER_PROCESS_GROUP_TIMEOUT_MIN"):
        distributed.process_group_timeout()
