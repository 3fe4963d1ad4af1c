"""The training loop of one unit (one model on one fold): epochs and validation; what each epoch
leaves on disk (top-k checkpoints, the resume state) and its crash-safe order are in `resume`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from downstream.model import split_outputs
from upstream.interface import Batch

from ..common.faults import fault_point
from ..data.iemocap import Utterance
from . import distributed
from .averaging import RankedCheckpoint
from .batching import AudioStore, duration_batches, make_batch, padding_ratio
from .cache import FrozenFeatures
from .config import TrainConfig
from .device import Precision, autocast
from .model import EmotionModel
from .objectives import Objective, loss_sum, selection_score
from .resume import EpochLog, end_epoch, model_device, resume
from .schedule import lr_factor, utterances_per_step


@dataclass
class TrainOutcome:
    top_k: list[RankedCheckpoint]  # best first
    history: list[EpochLog]


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


def logits_of(model: EmotionModel, batch: Batch, features: Sequence[FrozenFeatures] | None,
              precision: Precision = "auto", trained: nn.Module | None = None) -> Tensor:
    """(B, num_classes) float32 logits, from stored hidden states when the upstreams are frozen.

    `trained`: what runs the forward pass instead of the model (fine-tuning) or its downstream
    (frozen upstreams), i.e. their DistributedDataParallel wrapper.
    """
    device = model_device(model)
    with autocast(device, precision):
        if features is None:
            logits = (trained or model)(batch.to(device))
        else:
            logits = (trained or model.downstream)([f.outputs(batch.ids, device) for f in features])
    return logits.float()


def evaluate_outputs(
    model: EmotionModel,
    utterances: Sequence[Utterance],
    store: AudioStore,
    max_batch_seconds: float,
    features: Sequence[FrozenFeatures] | None = None,
    precision: Precision = "auto",
) -> np.ndarray:
    """(N, outputs) float32 head outputs per utterance, in the order given (class logits, then the
    attributes; with data parallelism each rank scores its share and all ranks receive all rows)."""
    model.eval()
    scored: dict[int, list[float]] = {}
    with torch.no_grad():
        for indices in distributed.my_batches(duration_batches([u.duration for u in utterances], max_batch_seconds)):
            batch = make_batch([utterances[i] for i in indices], store, audio=features is None)
            scored.update(zip(indices, logits_of(model, batch, features, precision).cpu().tolist()))
    outputs = np.zeros((len(utterances), model.downstream.config.outputs), dtype=np.float32)
    for share in distributed.gather_objects(scored):
        for index, row in share.items():
            outputs[index] = row
    return outputs


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
    identity: str = "",
    objective: Objective = Objective(),
) -> TrainOutcome:
    """Train on `train_set`, keeping the top-k states by validation accuracy as files in `unit_dir`.

    `features` must be given when the upstreams are frozen (their hidden states are read from it).
    A resume state in `unit_dir` is continued from when it records the same `identity` (the unit's
    key); the global RNG is restored too, so call this inside `seeding.isolated_rng`. Under torchrun each global batch is shared out among the ranks
    (see `distributed`); only rank 0 writes files.
    """
    _prepare_upstreams(model, config)
    optimizer = _optimizer(model, config)
    durations = [u.duration for u in train_set]
    ranks = distributed.world()
    main = ranks.is_main
    reference_plan = duration_batches(durations, config.max_batch_seconds, None, min_batch_size=2)
    # DDP averages gradients over ranks, hence × size: the sum over the global batch, per nominal step size
    weight = ranks.size / utterances_per_step(len(train_set), len(reference_plan), config.grad_accumulation)
    if objective.categorical and any(u.label_index < 0 for u in (*train_set, *valid_set)):
        raise ValueError("utterances outside the label set are in a categorical unit; they belong to --task dimensional")
    valid_labels = np.array([u.label_index for u in valid_set])
    valid_targets = np.array([u.scaled_attributes for u in valid_set]) if objective.dimensional else None
    progress = resume(unit_dir, identity, model, optimizer, generator, desc)
    trained = distributed.wrap(model if config.finetune_upstream else model.downstream)
    for epoch in range(progress.next_epoch, config.epochs + 1):
        started = time.perf_counter()
        batches = duration_batches(durations, config.max_batch_seconds, generator, min_batch_size=2,
                                   jitter=config.batch_jitter)
        _set_mode(model, True, config)
        # loss and hits stay on the device until the epoch ends: no host synchronisation per step
        total_loss, hits, seen = torch.zeros((), dtype=torch.float64, device=model_device(model)), 0, 0
        steps_this_epoch = math.ceil(len(batches) / config.grad_accumulation)
        bar = tqdm(batches, desc=f"{desc} epoch {epoch}/{config.epochs}", leave=False, mininterval=1.0,
                   disable=None if main else True)
        for position, indices in enumerate(bar):
            steps_now = (position + 1) % config.grad_accumulation == 0 or position + 1 == len(batches)
            rows, real = distributed.my_rows(indices)
            batch = make_batch([train_set[i] for i in rows], store, audio=features is None, targets=objective.dimensional)
            with distributed.no_sync(trained, skip=not steps_now):
                loss, correct = _backward(model, batch, real, weight, features, config.precision, trained, objective)
            total_loss += loss
            hits += correct
            seen += real
            if steps_now:
                done = (epoch - 1 + (position // config.grad_accumulation) / steps_this_epoch) / config.epochs
                factor = lr_factor(done, 1 / (steps_this_epoch * config.epochs), config.warmup_fraction)
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                progress.step += 1
                fault_point(f"step:{unit_dir}")
        total_loss, hits, seen = distributed.sum_across([float(total_loss), int(hits), seen])
        distributed.sync_buffers(model)
        outputs = evaluate_outputs(model, valid_set, store, config.eval_batch_seconds, features, config.precision)
        logits, attributes = split_outputs(torch.from_numpy(outputs), model.downstream.config)
        chosen_by, wa, ua, mean_ccc = selection_score(
            objective, valid_labels, logits.numpy() if logits is not None else None, valid_targets,
            attributes.numpy() if attributes is not None else None, model.downstream.config.num_classes)
        lrs = [group["lr"] for group in optimizer.param_groups]
        progress.history.append(EpochLog(
            epoch, total_loss / seen, hits / seen, wa, ua, lrs[0], lrs[1] if len(lrs) > 1 else 0.0,
            time.perf_counter() - started, padding_ratio(batches, durations), mean_ccc,
        ))
        end_epoch(unit_dir, epoch, chosen_by, model, optimizer, generator, config, progress, identity)
        shown = (f"valid WA {100 * wa:.2f} UA {100 * ua:.2f}" if wa is not None else "") + (
            f"{'  ' if wa is not None else ''}valid CCC {mean_ccc:.3f}" if mean_ccc is not None else "")
        print(f"{desc} epoch {epoch}: loss {total_loss / seen:.3f}  {shown}  ({progress.history[-1].seconds:.1f} s, "
              f"padding {100 * progress.history[-1].padding_ratio:.1f} %)")
    distributed.barrier()  # the top-k files are on disk for every rank
    return TrainOutcome(progress.top_k, progress.history)


def _backward(model: EmotionModel, batch: Batch, real: int, weight: float, features: Sequence[FrozenFeatures] | None,
              precision: Precision, trained: nn.Module, objective: Objective) -> tuple[Tensor, Tensor]:
    """Forward and backward of one micro-batch: the sum of its first `real` rows' losses × `weight`
    (rows past `real` only fill a short data-parallel share; `objectives` says what the loss is).
    Returns that loss sum (float64) and the class hits (0 without classes), both still on the device."""
    outputs = logits_of(model, batch, features, precision, trained)
    logits, attributes = split_outputs(outputs[:real], model.downstream.config)
    labels = batch.labels.to(outputs.device, non_blocking=True)[:real]
    targets = batch.targets.to(outputs.device, non_blocking=True)[:real] if batch.targets is not None else None
    loss = loss_sum(objective, logits, attributes, labels, targets)
    (loss * weight).backward()
    hits = (logits.argmax(-1) == labels).sum() if logits is not None else torch.zeros((), device=outputs.device)
    return loss.detach().double(), hits
