"""Runs one upstream × downstream recipe over the requested folds and writes its results table.

Recipes (the paper's method): `mean` with a trainable upstream fine-tunes it jointly with mean
pooling + linear (stage 1); `ecapa` trains ECAPA-TDNN + linear on the frozen features of the fold's
averaged fine-tuned upstream (stage 2, reusing or first running stage 1); an upstream without
trainable weights (fbank) goes straight to the frozen stage. Best and top-k-averaged checkpoints
are both reported.
"""
from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from downstream.ecapa import EcapaConfig
from downstream.model import DownstreamConfig
from upstream import build_upstream, get_spec
from upstream.interface import Upstream

from .batching import AudioStore
from .data import iemocap, splits
from .io import atomic_write_text, check_writable_dir
from .model import EmotionModel
from .stages import CHECKPOINT_KINDS, UnitResult, averaged_upstream, frozen_feature_stores, mean_and_std, run_unit
from .train import TrainConfig

DEFAULT_DATA_ROOT = Path("data")
DOWNSTREAMS: tuple[str, ...] = ("mean", "ecapa")
CSV_COLUMNS = ("upstream", "downstream", "stage", "checkpoint", "fold", "split", "split_hash", "n_train",
               "n_valid", "n_test", "best_epoch", "wa", "ua", "macro_f1")
# Fine-tuning large SSL models on IEMOCAP: small upstream rate with warm-up and linear decay, a 10x
# larger rate for the freshly initialised head, ~20 utterances (100 s of audio) per step, conv encoder
# frozen, gradient norm clipped at 1 (as s3prl's recipe); top-5 averaging as in the paper.
FINETUNE_DEFAULTS = TrainConfig(epochs=15, head_lr=5e-4, upstream_lr=5e-5, finetune_upstream=True,
                                max_batch_seconds=100.0, warmup_fraction=0.1, weight_decay=0.01, top_k=5)
# Frozen features → ECAPA/mean + linear: only the head trains, so a larger rate and more epochs.
FROZEN_DEFAULTS = TrainConfig(epochs=30, head_lr=1e-3, finetune_upstream=False, max_batch_seconds=100.0,
                              warmup_fraction=0.05, weight_decay=0.01, top_k=5)


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for."""

    upstream: str = "fbank"
    downstream: str = "mean"
    data: Path | None = None  # None: the demo corpus under DEFAULT_DATA_ROOT, generated when missing
    folds: tuple[int, ...] = splits.SESSIONS
    out: Path = Path("results")
    seed: int = 0
    split: str = "superb"
    strict: bool | None = None
    upstream_ckpt: str | None = None
    trust_checkpoint: bool = False
    input_norm: bool | None = None  # None: on for fbank (raw log-mel energies), off for learned features
    featurizer: str | int = "last"
    finetune: TrainConfig = field(default_factory=lambda: FINETUNE_DEFAULTS)
    frozen: TrainConfig = field(default_factory=lambda: FROZEN_DEFAULTS)
    ecapa: EcapaConfig = field(default_factory=EcapaConfig)
    cache_dtype: str = "float16"

    def with_epochs(self, epochs: int) -> "RunRequest":
        return replace(self, finetune=replace(self.finetune, epochs=epochs), frozen=replace(self.frozen, epochs=epochs))


def corpus_dir(request: RunRequest) -> Path:
    if request.data is not None:
        return request.data
    from .data.demo import ensure_demo_corpus

    return ensure_demo_corpus(DEFAULT_DATA_ROOT)


def _upstream(request: RunRequest) -> Upstream:
    return build_upstream(request.upstream, ckpt=request.upstream_ckpt, trust_checkpoint=request.trust_checkpoint or None)


def _input_norm(request: RunRequest) -> bool:
    return request.input_norm if request.input_norm is not None else get_spec(request.upstream).backend == "fbank"


def _unit_seed(request: RunRequest, fold: int, stage: str) -> int:
    return request.seed * 1000 + fold * 10 + (1 if stage == "finetune" else 2)


def finetune_unit(request: RunRequest, fold: splits.Fold, store: AudioStore) -> tuple[UnitResult, Path]:
    unit_dir = request.out / "runs" / request.upstream / f"fold{fold.index}" / "finetune"
    config = DownstreamConfig(featurizer=request.featurizer, aggregator="mean", input_norm=_input_norm(request))
    result = run_unit(unit_dir, lambda: EmotionModel([_upstream(request)], config), fold, request.finetune,
                      _unit_seed(request, fold.index, "finetune"), store, desc=f"fold {fold.index} fine-tune")
    return result, unit_dir


def frozen_unit(request: RunRequest, fold: splits.Fold, store: AudioStore, trainable: bool) -> UnitResult:
    """Stage 2 on the averaged fine-tuned upstream (trainable upstreams) or the fixed one."""
    source_dir = finetune_unit(request, fold, store)[1] if trainable else None
    unit_dir = request.out / "runs" / request.upstream / f"fold{fold.index}" / request.downstream
    layers = "all" if request.featurizer == "weighted" else request.featurizer
    featurizer = "weighted" if layers == "all" else "last"
    config = DownstreamConfig(featurizer=featurizer, aggregator=request.downstream, input_norm=_input_norm(request),
                              ecapa=request.ecapa)

    def build() -> EmotionModel:
        upstream = _upstream(request)
        if source_dir is not None:
            upstream = averaged_upstream(source_dir, upstream)
        return EmotionModel([upstream], config, stored_layers=[upstream.num_layers if layers == "all" else 1])

    def features(model: EmotionModel) -> list:
        return frozen_feature_stores(list(model.upstreams), store, request.out / "cache", layers,
                                     request.cache_dtype, request.frozen.eval_batch_seconds)

    return run_unit(unit_dir, build, fold, request.frozen, _unit_seed(request, fold.index, "frozen"), store, features,
                    desc=f"fold {fold.index} {request.downstream}")


def results_csv(request: RunRequest, stage: str, results: list[UnitResult]) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for kind in CHECKPOINT_KINDS:
        for r in results:
            s = r.scores[kind]
            lines.append(",".join(str(v) for v in (
                request.upstream, request.downstream, stage, kind, r.fold, r.split, r.split_hash, r.n_train,
                r.n_valid, r.n_test, r.best_epoch, f"{s.wa:.2f}", f"{s.ua:.2f}", f"{s.macro_f1:.2f}")))
    for kind in CHECKPOINT_KINDS:
        stats = [mean_and_std([getattr(r.scores[kind], m) for r in results]) for m in ("wa", "ua", "macro_f1")]
        for name, index in (("mean", 0), ("std", 1)):
            lines.append(",".join([request.upstream, request.downstream, stage, kind, name, *[""] * 6,
                                   *(f"{stat[index]:.2f}" for stat in stats)]))
    return "\n".join(lines) + "\n"


def run(request: RunRequest) -> Path:
    """Train and test every requested fold; returns the CSV written under `request.out`."""
    if request.downstream not in DOWNSTREAMS:
        raise ValueError(f"--downstream: unknown downstream {request.downstream!r}; expected one of {', '.join(DOWNSTREAMS)}")
    get_spec(request.upstream)  # unknown names fail before any data is read
    check_writable_dir(request.out)
    data = corpus_dir(request)
    utterances = iemocap.load(data, strict=request.strict)
    folds = splits.folds(utterances, request.split, request.folds)  # type: ignore[arg-type]
    trainable = any(p.requires_grad for p in _upstream(request).parameters())
    fine_tuned_mean = request.downstream == "mean" and trainable
    stage = "finetune" if fine_tuned_mean else "frozen"
    store = AudioStore()
    results = [
        finetune_unit(request, fold, store)[0] if fine_tuned_mean else frozen_unit(request, fold, store, trainable)
        for fold in folds
    ]
    stem = f"{request.upstream.replace(':', '_')}_{request.downstream}"
    csv_path = request.out / f"{stem}.csv"
    atomic_write_text(csv_path, results_csv(request, stage, results))
    provenance = {
        "request": json.loads(json.dumps(asdict(request), default=str)) | {"data": str(data)},
        "folds": [asdict(r) for r in results],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }
    atomic_write_text(request.out / f"{stem}.json", json.dumps(provenance, indent=1, default=str) + "\n")
    for kind in CHECKPOINT_KINDS:
        wa, ua = (mean_and_std([getattr(r.scores[kind], m) for r in results])[0] for m in ("wa", "ua"))
        print(f"{stem} [{kind}]: mean over {len(results)} fold(s): WA {wa:.2f}  UA {ua:.2f}")
    print(f"→ {csv_path}")
    return csv_path
