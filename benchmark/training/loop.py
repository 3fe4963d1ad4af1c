"""The training loop of one unit (one model on one fold): epochs, validation, top-k, resume.

Crash safety: at each epoch end a checkpoint entering the top-k is written first, then the resume
state (model, optimizer, RNG states, epoch, step, top-k list, history) replaces the previous one
atomically, and only then are checkpoints that left the top-k deleted. Whatever the moment of a
crash, the resume state on disk describes files that exist, and rerunning continues from the last
complete epoch with the same randomness as an uninterrupted run.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from upstream.interface import Batch, output_to

from ..common.faults import fault_point
from ..common.io import atomic_write_text
from ..data.iemocap import LABELS, Utterance
from ..reporting.metrics import score
from . import distributed
from .averaging import RankedCheckpoint, update_top_k
from .batching import AudioStore, duration_batches, make_batch, padding_ratio
from .cache import FrozenFeatures
from .checkpoints import load_training_state, save_training_state, save_weights
from .device import Precision, autocast
from .model import EmotionModel

RESUME_FILE = "resume.pt"
LOG_FILE = "log.jsonl"


def epoch_file(epoch: int) -> str:
    """The file name of an epoch's checkpoint in a unit folder."""
    return f"epoch{epoch:03d}.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training unit (defaults: frozen upstream, head only)."""

    epochs: int = 20
    head_lr: float = 1e-3
    upstream_lr: float = 5e-5
    finetune_upstream: bool = False
    freeze_feature_encoder: bool = True
    max_batch_seconds: float = 60.0
    eval_batch_seconds: float = 120.0
    grad_clip: float = 1.0
    grad_accumulation: int = 1
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    top_k: int = 5
    precision: Precision = "auto"


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


@dataclass
class TrainOutcome:
    top_k: list[RankedCheckpoint]  # best first
    history: list[EpochLog]


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to 1, then linear decay to 0 at `total_steps` (a function of progress only)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = max(total_steps - warmup_steps, 1)
    return max(0.0, 1.0 - (step - warmup_steps) / remaining)


def _optimizer(model: EmotionModel, config: TrainConfig) -> torch.optim.Optimizer:
    groups = [{"params": list(model.downstream.parameters()), "lr": config.head_lr, "base_lr": config.head_lr}]
    if config.finetune_upstream:
        trainable = [p for p in model.upstreams.parameters() if p.requires_grad]
        groups.append({"params": trainable, "lr": config.upstream_lr, "base_lr": config.upstream_lr})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _prepare_upstreams(model: EmotionModel, config: TrainConfig) -> None:
    for upstream in model.upstreams:
        upstream.requires_grad_(config.finetune_upstream)
        if config.finetune_upstream and config.freeze_feature_encoder:
            upstream.freeze_feature_encoder()


def _set_mode(model: EmotionModel, training: bool, config: TrainConfig) -> None:
    model.train(training)
    if not config.finetune_upstream:
        model.upstreams.eval()  # frozen upstreams always run as at inference


def _device(model: EmotionModel) -> torch.device:
    return next(model.downstream.parameters()).device


def logits_of(model: EmotionModel, batch: Batch, features: Sequence[FrozenFeatures] | None,
              precision: Precision = "auto", trained: nn.Module | None = None) -> Tensor:
    """(B, num_classes) float32 logits, from stored hidden states when the upstreams are frozen.

    `trained`: what runs the forward pass instead of the model (fine-tuning) or its downstream
    (frozen upstreams), i.e. their DistributedDataParallel wrapper.
    """
    device = _device(model)
    with autocast(device, precision):
        if features is None:
            logits = (trained or model)(batch.to(device))
        else:
            logits = (trained or model.downstream)([output_to(f.outputs(batch.ids), device) for f in features])
    return logits.float()


def evaluate(
    model: EmotionModel,
    utterances: Sequence[Utterance],
    store: AudioStore,
    max_batch_seconds: float,
    features: Sequence[FrozenFeatures] | None = None,
    precision: Precision = "auto",
) -> np.ndarray:
    """Predicted class index per utterance, in the order given (with data parallelism, each rank
    scores its share of the batches and all ranks receive all predictions)."""
    model.eval()
    scored: dict[int, int] = {}
    with torch.no_grad():
        for indices in distributed.my_batches(duration_batches([u.duration for u in utterances], max_batch_seconds)):
            logits = logits_of(model, make_batch([utterances[i] for i in indices], store), features, precision)
            scored.update(zip(indices, logits.argmax(dim=-1).tolist()))
    predictions = np.full(len(utterances), -1, dtype=np.int64)
    for share in distributed.gather_objects(scored):
        for index, label in share.items():
            predictions[index] = label
    return predictions


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


def _write_log(unit_dir: Path, history: list[EpochLog]) -> None:
    atomic_write_text(unit_dir / LOG_FILE, "".join(json.dumps(asdict(e)) + "\n" for e in history))


def train_unit(
    model: EmotionModel,
    train_set: Sequence[Utterance],
    valid_set: Sequence[Utterance],
    config: TrainConfig,
    unit_dir: Path,
    generator: torch.Generator,
    store: AudioStore,
    features: Sequence[FrozenFeatures] | None = None,
    desc: str = "train",
) -> TrainOutcome:
    """Train on `train_set`, keeping the top-k states by validation accuracy as files in `unit_dir`.

    `features` must be given when the upstreams are frozen (their hidden states are read from it).
    A resume state in `unit_dir` is continued from; the global RNG is restored too, so call this
    inside `seeding.isolated_rng`. Under torchrun each global batch is shared out among the ranks
    (see `distributed`); only rank 0 writes files.
    """
    _prepare_upstreams(model, config)
    optimizer = _optimizer(model, config)
    durations = [u.duration for u in train_set]
    ranks = distributed.world()
    main = ranks.is_main
    batches_per_epoch = len(duration_batches(durations, config.max_batch_seconds, None, min_batch_size=2))
    total_steps = math.ceil(batches_per_epoch / config.grad_accumulation) * config.epochs
    warmup = max(1, int(config.warmup_fraction * total_steps))
    valid_labels = np.array([u.label_index for u in valid_set])
    top_k: list[RankedCheckpoint] = []
    history: list[EpochLog] = []
    start_epoch, step = 1, 0
    resume = unit_dir / RESUME_FILE
    if resume.is_file():
        state = load_training_state(resume, _device(model))
        load_model_state(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())
        if "rng_per_rank" in state:
            distributed.restore_rng_state(state["rng_per_rank"])
        elif main:  # an older resume state: rank 0's stream only
            torch.set_rng_state(state["global_rng"].cpu())
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        top_k = [RankedCheckpoint(**entry) for entry in state["top_k"]]
        history = [EpochLog(**entry) for entry in state["history"]]
        print(f"{desc}: resuming after epoch {start_epoch - 1}")
    trained = distributed.wrap(model if config.finetune_upstream else model.downstream)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.perf_counter()
        batches = duration_batches(durations, config.max_batch_seconds, generator, min_batch_size=2)
        _set_mode(model, True, config)
        total_loss, hits, seen = 0.0, 0, 0
        progress = tqdm(batches, desc=f"{desc} epoch {epoch}/{config.epochs}", leave=False, mininterval=1.0,
                        disable=None if main else True)
        for position, indices in enumerate(progress):
            steps_now = (position + 1) % config.grad_accumulation == 0 or position + 1 == len(batches)
            rows, real = distributed.my_rows(indices)
            batch = make_batch([train_set[i] for i in rows], store)
            with distributed.no_sync(trained, skip=not steps_now):
                logits = logits_of(model, batch, features, config.precision, trained)
                labels = batch.labels.to(logits.device)
                loss = loss_fn(logits, labels)[:real].sum()  # rows past `real` only fill a short share
                # DDP averages gradients over ranks: scaled so that the result is the global batch's mean.
                scale = ranks.size / (len(indices) * config.grad_accumulation)
                (loss * scale).backward()
            total_loss += loss.item()
            hits += int((logits[:real].argmax(-1) == labels[:real]).sum())
            seen += real
            if steps_now:
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * lr_factor(step, total_steps, warmup)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                fault_point(f"step:{unit_dir}")
            progress.set_postfix(loss=f"{total_loss / max(seen, 1):.3f}", acc=f"{hits / max(seen, 1):.3f}")
        total_loss, hits, seen = distributed.sum_across([total_loss, hits, seen])
        distributed.sync_buffers(model)
        predicted = evaluate(model, valid_set, store, config.eval_batch_seconds, features, config.precision)
        valid = score(valid_labels, predicted, len(LABELS))
        lrs = [group["lr"] for group in optimizer.param_groups]
        history.append(EpochLog(
            epoch, total_loss / seen, hits / seen, valid.wa, valid.ua, lrs[0], lrs[1] if len(lrs) > 1 else 0.0,
            time.perf_counter() - started, padding_ratio(batches, durations),
        ))
        file = epoch_file(epoch)
        candidate = RankedCheckpoint(epoch, valid.wa, file, "")
        new_top_k, entered = update_top_k(top_k, candidate, config.top_k)
        if entered and main:
            digest = save_weights(unit_dir / file, model_state(model, config))
            new_top_k = [RankedCheckpoint(epoch, valid.wa, file, digest) if e is candidate else e for e in new_top_k]
        top_k = distributed.from_main(new_top_k)
        rng_per_rank = distributed.per_rank_rng_states()
        if main:
            save_training_state(resume, {
                "model": model_state(model, config), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "global_rng": torch.get_rng_state(), "rng_per_rank": rng_per_rank,
                "epoch": epoch, "step": step,
                "top_k": [e.to_dict() for e in top_k], "history": [asdict(e) for e in history],
            })
            _write_log(unit_dir, history)
            _remove_unranked(unit_dir, top_k)
        print(f"{desc} epoch {epoch}: loss {history[-1].train_loss:.3f}  valid WA {100 * valid.wa:.2f} "
              f"UA {100 * valid.ua:.2f}  ({history[-1].seconds:.1f} s, padding {100 * history[-1].padding_ratio:.1f} %)")
    if main:
        _remove_unranked(unit_dir, top_k)
    distributed.barrier()  # the top-k files are on disk for every rank
    return TrainOutcome(top_k, history)


def _remove_unranked(unit_dir: Path, top_k: Sequence[RankedCheckpoint]) -> None:
    """Delete checkpoint files that are not (or no longer) in the top-k."""
    kept = {e.file for e in top_k}
    for path in unit_dir.glob("epoch*.safetensors"):
        if path.name not in kept:
            path.unlink()
