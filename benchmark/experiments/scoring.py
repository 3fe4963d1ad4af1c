"""A trained unit's scores on a set of utterances: WA / UA / macro-F1 of the class logits, CCC /
Pearson r / RMSE of the attributes (on [0, 1]), whichever the unit's task has, from one pass."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from downstream.model import split_outputs

from ..data.iemocap import Utterance
from ..reporting.dimensional import score_dimensional
from ..reporting.metrics import score
from ..reporting.results import TestScores
from ..training.batching import AudioStore
from ..training.cache import FrozenFeatures
from ..training.config import TrainConfig
from ..training.loop import evaluate_outputs
from ..training.model import EmotionModel
from ..training.objectives import Objective

NO_SCORES = TestScores(math.nan, math.nan, math.nan, [], [])  # a dimensional-only unit has no class scores


def unit_scores(model: EmotionModel, utterances: Sequence[Utterance], store: AudioStore, config: TrainConfig,
                features: Sequence[FrozenFeatures] | None, objective: Objective = Objective()) -> tuple[TestScores, dict]:
    """(class scores in %, attribute scores: {"ccc", "pearson", "rmse": per attribute, "predictions",
    "targets": per utterance}; {} without attributes)."""
    outputs = evaluate_outputs(model, utterances, store, config.eval_batch_seconds, features, config.precision)
    logits, attributes = split_outputs(torch.from_numpy(outputs), model.downstream.config)
    classes = NO_SCORES
    if logits is not None:
        predictions = logits.argmax(-1).numpy().astype(np.int64)
        s = score([u.label_index for u in utterances], predictions, model.downstream.config.num_classes)
        classes = TestScores(100 * s.wa, 100 * s.ua, 100 * s.macro_f1, s.confusion.tolist(), predictions.tolist())
    if attributes is None or not objective.dimensional:
        return classes, {}
    targets = np.array([u.scaled_attributes for u in utterances])
    d = score_dimensional(targets, attributes.numpy())
    return classes, {"ccc": list(d.ccc), "pearson": list(d.pearson), "rmse": list(d.rmse), "ccc_mean": d.ccc_mean,
                     "predictions": attributes.numpy().round(5).tolist(), "targets": targets.round(5).tolist()}
