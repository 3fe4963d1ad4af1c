"""Tables of a finished run: per experiment mean/std/pooled WA and UA beside the paper's figures."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.iemocap import LABELS
from .experiment import ExperimentConfig
from .io import atomic_write_bytes, atomic_write_text
from .metrics import score
from .stages import UnitResult, mean_and_std

PAPER_TABLE = Path(__file__).resolve().parents[1] / "results" / "reference" / "paper_table1.csv"


@dataclass(frozen=True)
class Row:
    experiment: ExperimentConfig
    folds: dict[int, UnitResult]

    def scores(self, fold: int):
        return self.folds[fold].scores[self.experiment.checkpoint]

    def pooled(self) -> tuple[float, float, np.ndarray]:
        labels = np.concatenate([r.test_labels for r in self.folds.values()])
        predictions = np.concatenate([self.scores(k).predictions for k in self.folds])
        pooled = score(labels, predictions, len(LABELS))
        return 100 * pooled.wa, 100 * pooled.ua, pooled.confusion


def paper_figures(path: Path = PAPER_TABLE) -> dict[int, tuple[float, float]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {int(r["exp"]): (float(r["paper_wacc"]), float(r["paper_uacc"])) for r in csv.DictReader(handle)}


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def table_rows(rows: list[Row], paper: dict[int, tuple[float, float]]) -> tuple[list[str], list[list[object]]]:
    folds = sorted({k for row in rows for k in row.folds})
    header = ["exp", "set", "description", "checkpoint", "folds", "wa_mean", "wa_std", "ua_mean", "ua_std",
              "wa_pooled", "ua_pooled", *[f"fold{k}_{m}" for k in folds for m in ("wa", "ua")],
              "paper_wacc", "paper_uacc", "wa_minus_paper", "ua_minus_paper"]
    lines = []
    for row in rows:
        e = row.experiment
        wa_mean, wa_std = mean_and_std([row.scores(k).wa for k in row.folds])
        ua_mean, ua_std = mean_and_std([row.scores(k).ua for k in row.folds])
        wa_pooled, ua_pooled, _ = row.pooled()
        per_fold = [f"{getattr(row.scores(k), m):.2f}" if k in row.folds else "" for k in folds for m in ("wa", "ua")]
        paper_wa, paper_ua = paper.get(e.id, (None, None))
        differences = [f"{wa_mean - paper_wa:.2f}", f"{ua_mean - paper_ua:.2f}"] if paper_wa is not None else ["", ""]
        lines.append([e.id, e.set, e.description, e.checkpoint, " ".join(map(str, sorted(row.folds))),
                      f"{wa_mean:.2f}", f"{wa_std:.2f}", f"{ua_mean:.2f}", f"{ua_std:.2f}", f"{wa_pooled:.2f}",
                      f"{ua_pooled:.2f}", *per_fold, paper_wa if paper_wa is not None else "",
                      paper_ua if paper_ua is not None else "", *differences])
    return header, lines


def fold_rows(rows: list[Row]) -> tuple[list[str], list[list[object]]]:
    header = ["exp", "fold", "checkpoint", "split", "split_hash", "n_train", "n_valid", "n_test", "best_epoch",
              "wa", "ua", "macro_f1", "confusion"]
    lines = []
    for row in rows:
        for k, result in sorted(row.folds.items()):
            s = row.scores(k)
            confusion = ";".join(" ".join(map(str, r)) for r in s.confusion)
            lines.append([row.experiment.id, k, row.experiment.checkpoint, result.split, result.split_hash,
                          result.n_train, result.n_valid, result.n_test, result.best_epoch,
                          f"{s.wa:.2f}", f"{s.ua:.2f}", f"{s.macro_f1:.2f}", confusion])
    return header, lines


def markdown(header: list[str], lines: list[list[object]], title: str) -> str:
    keep = ["exp", "description", "wa_mean", "wa_std", "ua_mean", "ua_std", "wa_pooled", "ua_pooled",
            "paper_wacc", "paper_uacc"]
    index = [header.index(k) for k in keep]
    out = [f"# {title}", "", "WA/UA in %: mean ± std over folds, pooled over all test utterances, and the paper's "
           "figures.", "", "| " + " | ".join(keep) + " |", "|" + "---|" * len(keep)]
    out += ["| " + " | ".join(str(line[i]) for i in index) + " |" for line in lines]
    return "\n".join(out) + "\n"


def confusion_png(path: Path, confusion: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.2, 3.8))
    recall = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    axes.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            axes.text(j, i, f"{confusion[i, j]}\n{100 * recall[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                      color="white" if recall[i, j] > 0.6 else "black")
    axes.set_xticks(range(len(LABELS)), LABELS)
    axes.set_yticks(range(len(LABELS)), LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def write_table(out: Path, name: str, rows: list[Row], provenance: dict) -> Path:
    """Write `<name>.csv`, `<name>_folds.csv`, `<name>.md`, confusion PNGs and `run.json` atomically."""
    header, lines = table_rows(rows, paper_figures())
    for row in rows:
        confusion_png(out / f"{name}_confusion" / f"exp{row.experiment.id:02d}.png", row.pooled()[2],
                      f"exp {row.experiment.id}: {row.experiment.description[:48]}")
    atomic_write_text(out / f"{name}_folds.csv", _csv(*fold_rows(rows)))
    atomic_write_text(out / f"{name}.md", markdown(header, lines, f"{name}: {len(rows)} experiment(s)"))
    atomic_write_text(out / "run.json", json.dumps(provenance, indent=1, default=str) + "\n")
    atomic_write_text(out / f"{name}.csv", _csv(header, lines))  # last: its presence means the rest is there
    return out / f"{name}.csv"
