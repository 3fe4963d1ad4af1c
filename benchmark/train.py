"""Training and evaluation of an EmotionModel on one fold."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from .batching import AudioStore, duration_batches, make_batch, padding_ratio
from .cache import FrozenFeatures
from .data.iemocap import LABELS, Utterance
from .metrics import score
from .model import EmotionModel
from upstream.interface import Batch


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
class TrainResult:
    best_epoch: int
    best_state: dict[str, Tensor]
    history: list[EpochLog] = field(default_factory=list)


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


def frozen_features(model: EmotionModel, store: AudioStore, config: TrainConfig) -> list[FrozenFeatures] | None:
    """Feature stores for the upstreams when they stay frozen (None when they are fine-tuned)."""
    if config.finetune_upstream:
        return None
    return [FrozenFeatures(upstream, store, config.eval_batch_seconds) for upstream in model.upstreams]


def logits_of(model: EmotionModel, batch: Batch, features: list[FrozenFeatures] | None) -> Tensor:
    """(B, num_classes) logits, from stored hidden states when the upstreams are frozen."""
    if features is None:
        return model(batch)
    return model.downstream([f.outputs(batch.ids) for f in features])


def evaluate(
    model: EmotionModel,
    utterances: Sequence[Utterance],
    store: AudioStore,
    max_batch_seconds: float,
    features: list[FrozenFeatures] | None = None,
) -> np.ndarray:
    """Predicted class index per utterance, in the order given."""
    model.eval()
    for feature_store in features or []:
        feature_store.precompute(utterances)
    predictions = np.zeros(len(utterances), dtype=np.int64)
    batches = duration_batches([u.duration for u in utterances], max_batch_seconds)
    with torch.no_grad():
        for indices in batches:
            logits = logits_of(model, make_batch([utterances[i] for i in indices], store), features)
            predictions[indices] = logits.argmax(dim=-1).numpy()
    return predictions


def train_model(
    model: EmotionModel,
    train_set: Sequence[Utterance],
    valid_set: Sequence[Utterance],
    config: TrainConfig,
    generator: torch.Generator,
    store: AudioStore,
    on_epoch: Callable[[EpochLog], None] | None = None,
    desc: str = "train",
    features: list[FrozenFeatures] | None = None,
) -> TrainResult:
    """Train on `train_set`, keep the state with the best validation accuracy (earliest on ties).

    `features` (see `frozen_features`) must be given when the upstreams are frozen.
    """
    _prepare_upstreams(model, config)
    for feature_store in features or []:
        feature_store.precompute(train_set)
    optimizer = _optimizer(model, config)
    durations = [u.duration for u in train_set]
    steps_per_epoch = math.ceil(len(duration_batches(durations, config.max_batch_seconds, None, 2)) / config.grad_accumulation)
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup_fraction * total_steps))
    labels = np.array([u.label_index for u in valid_set])
    result = TrainResult(best_epoch=0, best_state={})
    best_accuracy, step = -1.0, 0
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        batches = duration_batches(durations, config.max_batch_seconds, generator, min_batch_size=2)
        _set_mode(model, True, config)
        total_loss, hits, seen = 0.0, 0, 0
        progress = tqdm(batches, desc=f"{desc} epoch {epoch}/{config.epochs}", leave=False, mininterval=1.0, disable=None)
        for position, indices in enumerate(progress):
            batch = make_batch([train_set[i] for i in indices], store)
            logits = logits_of(model, batch, features)
            loss = loss_fn(logits, batch.labels)
            (loss / config.grad_accumulation).backward()
            total_loss += loss.item() * len(indices)
            hits += int((logits.argmax(-1) == batch.labels).sum())
            seen += len(indices)
            if (position + 1) % config.grad_accumulation == 0 or position + 1 == len(batches):
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * lr_factor(step, total_steps, warmup)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
            progress.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{hits / seen:.3f}")
        valid = score(labels, evaluate(model, valid_set, store, config.eval_batch_seconds, features), len(LABELS))
        lrs = [group["lr"] for group in optimizer.param_groups]
        log = EpochLog(
            epoch, total_loss / seen, hits / seen, valid.wa, valid.ua, lrs[0], lrs[1] if len(lrs) > 1 else 0.0,
            time.perf_counter() - started, padding_ratio(batches, durations),
        )
        result.history.append(log)
        if on_epoch is not None:
            on_epoch(log)
        if valid.wa > best_accuracy:
            best_accuracy, result.best_epoch = valid.wa, epoch
            result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return result


def epoch_record(log: EpochLog) -> dict:
    return asdict(log)
