"""What a unit leaves on disk as it trains, and how a rerun continues from it.

Every epoch's weights are written as that epoch's checkpoint file. The resume state (`resume.pt`)
holds the rest: optimizer moments, RNG states, epoch, step, the top-k list and the history, plus the
name and sha256 of the epoch file that holds the weights. So an epoch entering the top-k costs one
weights file, not two, and at most top-k + 2 epoch files exist at once: the ranked ones, the one the
previous resume state points to and the new one (one of them may have just left the top-k).

Crash safety: the epoch's weights are written first, then the resume state replaces the previous
one atomically, and only then are epoch files that neither rank nor back the resume state deleted.
Whatever the moment of a crash, the resume state on disk describes files that exist, and rerunning
continues from the last complete epoch with the same randomness as an uninterrupted run.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from ..common.io import atomic_write_text
from . import distributed
from .averaging import RankedCheckpoint, update_top_k
from .checkpoints import load_training_state, load_weights, save_training_state, save_weights
from .config import TrainConfig
from .model import EmotionModel

RESUME_FILE = "resume.pt"
LOG_FILE = "log.jsonl"


def epoch_file(epoch: int) -> str:
    """The file name of an epoch's checkpoint in a unit folder."""
    return f"epoch{epoch:03d}.safetensors"


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    train_acc: float
    valid_wa: float
    valid_ua: float
    head_lr: float
    upstream_lr: float
    seconds: float
    padding_ratio: float
    valid_ccc: float | None = None  # mean CCC of the attributes (dimensional tasks); valid_wa/ua None without classes


@dataclass
class Progress:
    """Where a unit's training stands: what the resume state holds besides model and optimizer."""

    next_epoch: int = 1
    step: int = 0
    top_k: list[RankedCheckpoint] = field(default_factory=list)
    history: list[EpochLog] = field(default_factory=list)


def model_state(model: EmotionModel, config: TrainConfig) -> dict[str, Tensor]:
    """What a checkpoint holds: the whole model when fine-tuning, else the downstream alone."""
    if config.finetune_upstream:
        return model.state_dict()
    return {f"downstream.{k}": v for k, v in model.downstream.state_dict().items()}


def load_model_state(model: EmotionModel, state: dict[str, Tensor]) -> None:
    """Counterpart of `model_state`."""
    if all(key.startswith("downstream.") for key in state):
        model.downstream.load_state_dict({k[len("downstream."):]: v for k, v in state.items()})
    else:
        model.load_state_dict(state)


def write_log(unit_dir: Path, history: Sequence[EpochLog], checkpoints: Sequence[dict] = ()) -> None:
    """One line per epoch, then (once tested) one line per reported checkpoint (`"checkpoint": kind`)."""
    lines = [*(asdict(e) for e in history), *checkpoints]
    atomic_write_text(unit_dir / LOG_FILE, "".join(json.dumps(line) + "\n" for line in lines))


def resume(unit_dir: Path, identity: str, model: EmotionModel, optimizer: torch.optim.Optimizer,
           generator: torch.Generator, desc: str) -> Progress:
    """Continue from the resume state in `unit_dir` when it belongs to this unit (same `identity`)."""
    path = unit_dir / RESUME_FILE
    if not path.is_file():
        return Progress()
    state = load_training_state(path, model_device(model))
    if state.get("identity", "") != identity:
        print(f"note: {path} belongs to another unit identity ({state.get('identity') or 'unrecorded'}, "
              f"expected {identity or 'unrecorded'}); training from the start")
        return Progress()
    weights = load_weights(unit_dir / state["weights_file"], state["weights_sha256"])
    load_model_state(model, weights)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"].cpu())
    distributed.restore_rng_state(state["rng_per_rank"])
    print(f"{desc}: resuming after epoch {int(state['epoch'])}")
    return Progress(int(state["epoch"]) + 1, int(state["step"]), [RankedCheckpoint(**e) for e in state["top_k"]],
                    [EpochLog(**e) for e in state["history"]])


def end_epoch(unit_dir: Path, epoch: int, valid_wa: float, model: EmotionModel, optimizer: torch.optim.Optimizer,
              generator: torch.Generator, config: TrainConfig, progress: Progress, identity: str) -> None:
    """Top-k bookkeeping and the resume state, in the crash-safe order of the module docstring."""
    main = distributed.world().is_main
    file = epoch_file(epoch)
    digest = save_weights(unit_dir / file, model_state(model, config)) if main else ""
    candidate = RankedCheckpoint(epoch, valid_wa, file, digest)
    progress.top_k = distributed.from_main(update_top_k(progress.top_k, candidate, config.top_k)[0])
    progress.next_epoch = epoch + 1
    rng_per_rank = distributed.per_rank_rng_states()
    if main:
        save_training_state(unit_dir / RESUME_FILE, {
            "identity": identity, "weights_file": file, "weights_sha256": digest,
            "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "rng_per_rank": rng_per_rank,
            "epoch": epoch, "step": progress.step,
            "top_k": [e.to_dict() for e in progress.top_k], "history": [asdict(e) for e in progress.history],
        })
        write_log(unit_dir, progress.history)
        remove_epoch_files(unit_dir, {e.file for e in progress.top_k} | {file})


def remove_epoch_files(unit_dir: Path, kept: set[str]) -> None:
    """Delete the epoch checkpoint files of `unit_dir` whose names are not in `kept`."""
    for path in unit_dir.glob("epoch*.safetensors"):
        if path.name not in kept:
            path.unlink()


def model_device(model: EmotionModel) -> torch.device:
    """Where the model lives (read from the downstream: an upstream such as fbank has no parameters)."""
    return next(model.downstream.parameters()).device
