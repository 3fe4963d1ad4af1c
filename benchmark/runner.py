"""Runs one upstream × downstream recipe over the requested folds and writes its results table."""
from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from downstream.model import DownstreamConfig
from upstream import build_upstream, get_spec

from .batching import AudioStore
from .data import iemocap, splits
from .io import atomic_write_text, check_writable_dir
from .metrics import score
from .model import EmotionModel
from .seeding import isolated_rng
from .train import TrainConfig, evaluate, frozen_features, train_model

DEFAULT_DATA_ROOT = Path("data")
DOWNSTREAMS: tuple[str, ...] = ("mean", "ecapa")
CSV_COLUMNS = ("upstream", "downstream", "fold", "split", "split_hash", "n_train", "n_valid", "n_test",
               "best_epoch", "wa", "ua", "macro_f1")


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
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class FoldResult:
    fold: int
    split: str
    split_hash: str
    n_train: int
    n_valid: int
    n_test: int
    best_epoch: int
    wa: float  # percent
    ua: float
    macro_f1: float
    confusion: list[list[int]]


def corpus_dir(request: RunRequest) -> Path:
    if request.data is not None:
        return request.data
    from .data.demo import ensure_demo_corpus

    return ensure_demo_corpus(DEFAULT_DATA_ROOT)


def _build_model(request: RunRequest, seed: int) -> EmotionModel:
    options = {"ckpt": request.upstream_ckpt, "trust_checkpoint": request.trust_checkpoint or None}
    with isolated_rng(seed):
        upstream = build_upstream(request.upstream, **options)
        input_norm = request.input_norm if request.input_norm is not None else get_spec(request.upstream).backend == "fbank"
        return EmotionModel([upstream], DownstreamConfig(aggregator=request.downstream, input_norm=input_norm))


def run_fold(request: RunRequest, fold: splits.Fold, store: AudioStore) -> FoldResult:
    seed = request.seed * 100 + fold.index
    model = _build_model(request, seed)
    features = frozen_features(model, store, request.train)
    with isolated_rng(seed) as generator:
        trained = train_model(model, fold.train, fold.valid, request.train, generator, store,
                              desc=f"fold {fold.index}", features=features)
    model.load_state_dict(trained.best_state)
    labels = [u.label_index for u in fold.test]
    predictions = evaluate(model, fold.test, store, request.train.eval_batch_seconds, features)
    scores = score(labels, predictions, len(iemocap.LABELS))
    print(f"fold {fold.index}: WA {100 * scores.wa:.2f}  UA {100 * scores.ua:.2f}  "
          f"(best epoch {trained.best_epoch}, {len(fold.test)} test utterances)")
    return FoldResult(fold.index, fold.split, fold.split_hash, len(fold.train), len(fold.valid), len(fold.test),
                      trained.best_epoch, 100 * scores.wa, 100 * scores.ua, 100 * scores.macro_f1,
                      scores.confusion.tolist())


def results_csv(request: RunRequest, results: list[FoldResult]) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for r in results:
        lines.append(",".join(str(v) for v in (
            request.upstream, request.downstream, r.fold, r.split, r.split_hash, r.n_train, r.n_valid,
            r.n_test, r.best_epoch, f"{r.wa:.2f}", f"{r.ua:.2f}", f"{r.macro_f1:.2f}")))
    for name, reduce in (("mean", statistics.fmean), ("std", lambda v: statistics.pstdev(v) if len(v) > 1 else 0.0)):
        metrics = [f"{reduce([getattr(r, m) for r in results]):.2f}" for m in ("wa", "ua", "macro_f1")]
        lines.append(",".join([request.upstream, request.downstream, name, *[""] * 6, *metrics]))
    return "\n".join(lines) + "\n"


def run(request: RunRequest) -> Path:
    """Train and test every requested fold; returns the CSV written under `request.out`."""
    if request.downstream not in DOWNSTREAMS:
        raise ValueError(f"unknown downstream {request.downstream!r}; expected one of {', '.join(DOWNSTREAMS)}")
    get_spec(request.upstream)  # unknown names fail before any data is read
    check_writable_dir(request.out)
    data = corpus_dir(request)
    utterances = iemocap.load(data, strict=request.strict)
    folds = splits.folds(utterances, request.split, request.folds)  # type: ignore[arg-type]
    store = AudioStore()
    results = [run_fold(request, fold, store) for fold in folds]
    stem = f"{request.upstream}_{request.downstream}"
    csv_path = request.out / f"{stem}.csv"
    atomic_write_text(csv_path, results_csv(request, results))
    provenance = {
        "request": {**asdict(request), "data": str(data), "out": str(request.out)},
        "folds": [asdict(r) for r in results],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }
    atomic_write_text(request.out / f"{stem}.json", json.dumps(provenance, indent=2, default=str) + "\n")
    mean_wa = statistics.fmean(r.wa for r in results)
    mean_ua = statistics.fmean(r.ua for r in results)
    print(f"{stem}: mean over {len(results)} fold(s): WA {mean_wa:.2f}  UA {mean_ua:.2f}  → {csv_path}")
    return csv_path
