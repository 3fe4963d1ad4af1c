"""The record of a finished unit (`result.json` in its folder): what every report reads.

Units write it once training and testing are done (`benchmark.experiments.stages`); tables,
statistics, export and the cluster launcher read it back. It holds test scores of both checkpoints
and the per-utterance predictions, so reports can be rebuilt (`--report-only`) without a model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..data.iemocap import LABELS as IEMOCAP_LABELS

RESULT_FILE = "result.json"
CHECKPOINT_KINDS: tuple[str, ...] = ("best", "average")


@dataclass(frozen=True)
class TestScores:
    wa: float  # percent
    ua: float
    macro_f1: float
    confusion: list[list[int]]
    predictions: list[int]


@dataclass(frozen=True)
class UnitResult:
    """A finished unit: test scores of its best checkpoint and of its top-k average."""

    fold: int
    split: str
    split_hash: str
    n_train: int
    n_valid: int
    n_test: int
    best_epoch: int
    top_k_epochs: list[int]
    scores: dict[str, TestScores]  # "best" | "average"
    test_ids: list[str]
    test_labels: list[int]
    valid: dict[str, dict[str, float]] = field(default_factory=dict)  # kind → {"wa", "ua"} on the valid set, %
    identity: str = ""  # the unit's key: what it was trained as
    labels: list[str] = field(default_factory=lambda: list(IEMOCAP_LABELS))  # names of the label indices
    # kind → attribute scores on [0, 1] (`experiments.scoring.unit_scores`); empty for categorical units
    dimensional: dict[str, dict] = field(default_factory=dict)

    @staticmethod
    def from_json(data: dict) -> "UnitResult":
        scores = {kind: TestScores(**value) for kind, value in data.pop("scores").items()}
        return UnitResult(scores=scores, **data)


def load_result(unit_dir: Path) -> UnitResult | None:
    path = unit_dir / RESULT_FILE
    return UnitResult.from_json(json.loads(path.read_text())) if path.is_file() else None
