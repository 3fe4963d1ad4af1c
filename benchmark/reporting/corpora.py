"""The table across corpora (`--corpora a,b,c`): one recipe on every fold of each corpus, one line per
corpus with WA, UA and macro-F1 as mean ± std over folds (ddof 0, as the tables) and the percentile
bootstrap interval of each mean (test utterances resampled within each fold, as for Table 1)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..common.io import atomic_write_text
from .metrics import mean_and_std
from .results import UnitResult
from .sections import md_table
from .stats import StatsConfig, stratified_counts
from .tables import csv_text

METRICS = ("wa", "ua", "macro_f1")
HEADER = ["corpus", "classes", "folds", "n_test", *[f"{m}_{s}" for m in METRICS for s in ("mean", "std", "ci_low",
                                                                                             "ci_high")],
          "upstream", "downstream", "checkpoint", "labels"]


def fold_mean_metrics(confusions: np.ndarray) -> np.ndarray:
    """(..., F, C, C) confusion counts → (..., 3): WA, UA and macro-F1 in %, each averaged over the folds.
    As `metrics.score`: UA over the classes present, F1 over those present in labels or predictions."""
    support, predicted = confusions.sum(-1), confusions.sum(-2)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    wa = hits.sum(-1) / np.maximum(support.sum(-1), 1)
    present = support > 0
    ua = np.where(present, hits / np.maximum(support, 1), 0.0).sum(-1) / np.maximum(present.sum(-1), 1)
    used = present | (predicted > 0)
    f1 = np.where(used, 2 * hits / np.maximum(support + predicted, 1), 0.0).sum(-1) / np.maximum(used.sum(-1), 1)
    return 100 * np.stack([wa, ua, f1], -1).mean(-2)


def corpus_line(name: str, labels: Sequence[str], results: Sequence[UnitResult], kind: str, stats: StatsConfig,
                upstream: str, downstream: str) -> list[object]:
    k = len(labels)
    folds = np.concatenate([np.full(len(r.test_labels), r.fold) for r in results])
    cells = np.concatenate([np.asarray(r.test_labels) * k + np.asarray(r.scores[kind].predictions) for r in results])
    draws = fold_mean_metrics(stratified_counts(folds, cells, k * k, stats.resamples, [stats.seed, 4])
                              .reshape(stats.resamples, -1, k, k))
    line: list[object] = [name, k, len(results), len(cells)]
    for index, metric in enumerate(METRICS):
        values = [getattr(r.scores[kind], metric) for r in results]
        mean, std = mean_and_std(values)
        low, high = np.percentile(draws[:, index], [50 * (1 - stats.level), 50 * (1 + stats.level)])
        line += [f"{mean:.2f}", f"{std:.2f}", f"{low:.2f}", f"{high:.2f}"]
    return line + [upstream, downstream, kind, " ".join(labels)]


def write_corpora_table(out: Path, lines: list[list[object]], stats: StatsConfig = StatsConfig()) -> Path:
    """`corpora.csv` and `corpora.md` in `out`; returns the CSV."""
    names = ["corpus", "classes", "folds", "test utterances", "WA", "UA", "macro-F1"]
    level = f"{100 * stats.level:g} %"

    def cell(line: list[object], metric: str) -> str:
        get = dict(zip(HEADER, line)).__getitem__
        return f"{get(f'{metric}_mean')} ± {get(f'{metric}_std')} [{get(f'{metric}_ci_low')}, {get(f'{metric}_ci_high')}]"

    rows = [[line[0], line[1], line[2], line[3], *(cell(line, m) for m in METRICS)] for line in lines]
    text = (f"# One recipe across corpora\n\n{lines[0][-4]} → {lines[0][-3]} ({lines[0][-2]} checkpoint), every "
            f"fold of each corpus. In %: mean ± std over folds (ddof 0) [{level} bootstrap interval of the mean, "
            f"{stats.resamples} resamples of the test utterances within each fold, seed {stats.seed}].\n\n"
            + md_table(names, rows) + "\n")
    atomic_write_text(out / "corpora.md", text)
    atomic_write_text(out / "corpora.csv", csv_text(HEADER, lines))
    return out / "corpora.csv"
