"""Our fbank → mean pooling → linear recipe vs. s3prl's own emotion recipe, on the same demo corpus.

s3prl 0.4.18 runs from its wheel (`python -m s3prl.run_downstream -d emotion`) with the recipe's
config (written here: the wheel lacks it), its `fbank_no_cmvn` upstream (its `fbank` normalises each
utterance and makes the recipe a constant classifier; both compute the same filterbank, so the
time is the same) and the compatibility fixes of `bench/s3prl_compat/sitecustomize.py`. Its IEMOCAP
metadata comes from its own preprocessing script, run on a mirror of the corpus (symlinks), so the
demo corpus itself is never written to.

Same budget: s3prl trains `steps` optimizer steps of 8 accumulated batches of 4 utterances (32
utterances per step); ours trains the epochs that see as many utterances. Time per step: s3prl's
by differencing two runs (`steps` and a few steps: start-up, data loading and the final evaluation
cancel); ours from the per-epoch seconds of its training log (training + validation, which makes
ours look slower, not faster), both per 32 training utterances. Peak RSS: of the whole `steps` run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .measure import Measured, log_tail, run_measured

REPO = Path(__file__).resolve().parents[1]
COMPAT_DIR = Path(__file__).resolve().parent / "s3prl_compat"
S3PRL_UPSTREAM = "fbank_no_cmvn"
TRAIN_BATCH, ACCUMULATE = 4, 8
UTTERANCES_PER_STEP = TRAIN_BATCH * ACCUMULATE
# The packages s3prl's recipe imports that its wheel does not require (module → pip requirement).
S3PRL_EXTRA_MODULES = {"librosa": "librosa", "tensorboardX": "tensorboardX"}


class MissingDependency(RuntimeError):
    pass


def check_dependencies(python: Path = Path(sys.executable)) -> None:
    """Fail with the install command when s3prl or the packages its recipe needs are missing."""
    missing = [pip for module, pip in {"s3prl": "s3prl==0.4.18", **S3PRL_EXTRA_MODULES}.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        requirements = REPO / "bench" / "requirements.txt"
        raise MissingDependency(
            f"s3prl's emotion recipe needs {', '.join(missing)} in {python}: run "
            f"`{python} -m pip install -c constraints.txt -r {requirements.relative_to(REPO)}` "
            f"(`make bench` does), or skip this section with --skip s3prl")


def recipe_config(corpus: Path, total_steps: int, fold: int = 1) -> dict:
    """s3prl's emotion recipe (downstream/emotion/config.yaml of its repository), shortened to
    `total_steps`, evaluating (dev, test) and saving once at the end, without data-loader workers."""
    return {
        "runner": {"total_steps": total_steps, "gradient_clipping": 1, "gradient_accumulate_steps": ACCUMULATE,
                   "log_step": total_steps, "eval_step": total_steps, "save_step": total_steps, "max_keep": 1,
                   "eval_dataloaders": ["dev", "test"]},
        "optimizer": {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-4},
        "downstream_expert": {
            "datarc": {"root": str(corpus), "meta_data": str(corpus / "meta_data"), "test_fold": f"fold{fold}",
                       "pre_load": True, "train_batch_size": TRAIN_BATCH, "eval_batch_size": 4, "num_workers": 0,
                       "valid_ratio": 0.2},
            "modelrc": {"projector_dim": 256, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}},
        },
    }


def s3prl_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(COMPAT_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def mirror_corpus(corpus: Path, work: Path) -> Path:
    """`work/corpus` with one symlink per session folder: s3prl writes its `meta_data/` there."""
    mirror = work / "corpus"
    if mirror.exists():
        shutil.rmtree(mirror)
    mirror.mkdir(parents=True)
    sessions = sorted(p for p in corpus.iterdir() if p.is_dir() and p.name.startswith("Session"))
    if not sessions:
        raise FileNotFoundError(f"{corpus}: no Session* folders (not an IEMOCAP-layout corpus)")
    for session in sessions:
        (mirror / session.name).symlink_to(session.resolve(), target_is_directory=True)
    return mirror


def _check(result: Measured, what: str) -> Measured:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}); log {result.log}:\n{log_tail(result.log)}")
    return result


def s3prl_metadata(python: Path, mirror: Path, logs: Path) -> Measured:
    command = [str(python), "-m", "s3prl.downstream.emotion.IEMOCAP_preprocess", str(mirror)]
    result = _check(run_measured(command, logs / "s3prl_metadata.log", cwd=mirror.parent, env=s3prl_env()),
                    "s3prl's IEMOCAP_preprocess")
    if not (mirror / "meta_data" / "Session1" / "train_meta_data.json").is_file():
        raise RuntimeError(f"s3prl's IEMOCAP_preprocess wrote no metadata under {mirror / 'meta_data'}")
    return result


def s3prl_train(python: Path, mirror: Path, work: Path, steps: int, logs: Path, timeout_s: float) -> Measured:
    expdir = work / f"s3prl_{steps}steps"
    shutil.rmtree(expdir, ignore_errors=True)
    expdir.mkdir(parents=True)
    config = expdir.with_suffix(".yaml")
    config.write_text(yaml.safe_dump(recipe_config(mirror, steps)))
    command = [str(python), "-m", "s3prl.run_downstream", "-m", "train", "-u", S3PRL_UPSTREAM, "-d", "emotion",
               "-c", str(config), "-p", str(expdir), "--device", "cpu"]
    result = _check(run_measured(command, logs / f"s3prl_{steps}steps.log", cwd=work, env=s3prl_env(),
                                 timeout_s=timeout_s), f"s3prl's emotion recipe ({steps} steps)")
    if not list(expdir.glob("states-*.ckpt")):
        raise RuntimeError(f"s3prl ran but saved no checkpoint in {expdir}; log {result.log}")
    return result


def ours_train(python: Path, out: Path, epochs: int, logs: Path, timeout_s: float) -> Measured:
    """`run_benchmark.py --upstream fbank --downstream mean` on fold 1 of the demo corpus."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(python), str(REPO / "run_benchmark.py"), "--upstream", "fbank", "--downstream", "mean",
               "--folds", "1", "--out", str(out), "--epochs", str(epochs)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return _check(run_measured(command, logs / f"ours_{epochs}epochs.log", cwd=REPO, env=env, timeout_s=timeout_s),
                  "run_benchmark.py --upstream fbank --downstream mean")


def training_seconds(out: Path) -> tuple[float, int]:
    """Sum of the per-epoch `seconds` of the run's training logs (OUT/runs/**/log.jsonl), and epochs."""
    logs = sorted(out.glob("runs/**/log.jsonl"))
    if not logs:
        raise RuntimeError(f"no training log (runs/**/log.jsonl) under {out}")
    epochs = [json.loads(line) for path in logs for line in path.read_text().splitlines() if line.strip()]
    return sum(float(e["seconds"]) for e in epochs), len(epochs)


@dataclass(frozen=True)
class SideBySide:
    steps: int
    ours_epochs: int
    n_train: int
    ours_step_s: float  # per 32 training utterances
    s3prl_step_s: float
    ours: Measured
    s3prl: Measured
    s3prl_short: Measured


def run(python: Path, corpus: Path, n_train: int, work: Path, steps: int = 100, short_steps: int | None = None,
        timeout_s: float = 1200.0) -> SideBySide:
    """`n_train`: training utterances of our fold 1 (s3prl's are 80 % of sessions 2-5: about the same).
    `short_steps` (default a tenth of `steps`) is the run whose time is subtracted."""
    short_steps = short_steps if short_steps is not None else max(1, steps // 10)
    if steps <= short_steps:
        raise ValueError(f"steps ({steps}) must exceed short_steps ({short_steps})")
    check_dependencies(python)
    logs = work / "logs"
    mirror = mirror_corpus(corpus, work)
    s3prl_metadata(python, mirror, logs)
    s3prl_short = s3prl_train(python, mirror, work, short_steps, logs, timeout_s)
    s3prl = s3prl_train(python, mirror, work, steps, logs, timeout_s)
    epochs = max(1, round(steps * UTTERANCES_PER_STEP / n_train))
    ours = ours_train(python, work / "ours", epochs, logs, timeout_s)
    seconds, logged_epochs = training_seconds(work / "ours")
    ours_step = seconds / (logged_epochs * n_train) * UTTERANCES_PER_STEP
    s3prl_step = (s3prl.wall_s - s3prl_short.wall_s) / (steps - short_steps)
    if s3prl_step <= 0:
        raise RuntimeError(f"s3prl's {steps}-step run ({s3prl.wall_s:.1f} s) was not slower than its "
                           f"{short_steps}-step run ({s3prl_short.wall_s:.1f} s): the machine is too noisy, rerun")
    return SideBySide(steps, epochs, n_train, ours_step, s3prl_step, ours, s3prl, s3prl_short)
