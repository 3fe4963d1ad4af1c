"""Tables of a finished run: per experiment mean/std/pooled WA and UA beside the paper's figures.

With them, the statistics that say which differences to trust (`benchmark.reporting.stats`): bootstrap
intervals, paired tests between rows with Holm's correction, recall per class, and the learned layer
weights of weighted featurizers (`benchmark.reporting.layers`).
"""
from __future__ import annotations

import csv
import io
import json
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..common.io import atomic_write_figure, atomic_write_text
from .dimensional import PAIRWISE_CCC_COLUMNS, pairwise_ccc_rows, write_scatter
from .layers import fold_layer_weights, layer_csv_rows, layers_png, mean_weights
from .metrics import mean_and_std
from .results import UnitResult
from .rows import CCC_RESAMPLES, Row
from .sections import (
    PAIRWISE_COLUMNS,
    ccc_section,
    md_table,
    pairwise_rows,
    recall_rows,
    recall_section,
    significance_section,
)
from .stats import Interval, StatsConfig, bootstrap_interval, compare_all

PAPER_TABLE = Path(__file__).resolve().parents[2] / "results" / "reference" / "paper_table1.csv"


def paper_figures(path: Path = PAPER_TABLE) -> dict[int, tuple[float, float]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {int(r["exp"]): (float(r["paper_wacc"]), float(r["paper_uacc"])) for r in csv.DictReader(handle)}


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


CI_COLUMNS = ["wa_ci_low", "wa_ci_high", "ua_ci_low", "ua_ci_high"]


def table_rows(rows: list[Row], paper: dict[int, tuple[float, float]], intervals: dict[int, Interval] | None = None,
               stats: StatsConfig = StatsConfig(), profile: str = "") -> tuple[list[str], list[list[object]]]:
    """One line per row; with `intervals` (by experiment id), the bootstrap CI columns and their settings;
    `upstreams` and `profile` say what actually ran."""
    folds = sorted({k for row in rows for k in row.folds})
    ci = intervals is not None
    header = ["exp", "set", "description", "checkpoint", "folds", "wa_mean", "wa_std", "ua_mean", "ua_std",
              *(CI_COLUMNS if ci else []), "wa_pooled", "ua_pooled", *[f"fold{k}_{m}" for k in folds for m in ("wa", "ua")],
              "paper_wacc", "paper_uacc", "wa_minus_paper", "ua_minus_paper", *(["ci_resamples", "ci_seed"] if ci else []),
              "upstreams", "profile"]
    rated = any(r.rated for r in rows)  # a task with attributes: their CCC too
    header += list(CCC_COLUMNS) if rated else []
    lines = []
    for row in rows:
        e = row.experiment
        bounds: list[object] = []
        if intervals is not None:
            i = intervals.get(e.id)  # none for a row without classes
            bounds = [f"{v:.2f}" for v in (i.wa_low, i.wa_high, i.ua_low, i.ua_high)] if i else [""] * 4
        paper_wa, paper_ua = paper.get(e.id, (None, None)) if row.classified else (None, None)
        lines.append([e.id, e.set, e.description, e.checkpoint, " ".join(map(str, sorted(row.folds))),
                      *class_cells(row, folds, bounds), paper_wa if paper_wa is not None else "",
                      paper_ua if paper_ua is not None else "", *class_differences(row, paper_wa, paper_ua),
                      *([stats.resamples, stats.seed] if ci else []), row.ran, profile,
                      *(ccc_cells(row, stats) if rated else [])])
    return header, lines


def class_cells(row: Row, folds: list[int], bounds: list[object]) -> list[object]:
    """WA/UA mean, std, `bounds` (the CI cells), pooled and per fold; blank for a row without classes."""
    per_fold = [f"{getattr(row.scores(k), m):.2f}" if k in row.folds and row.classified else "" for k in folds
                for m in ("wa", "ua")]
    if not row.classified:
        return ["", "", "", "", *bounds, "", "", *per_fold]
    wa_mean, wa_std = mean_and_std([row.scores(k).wa for k in row.folds])
    ua_mean, ua_std = mean_and_std([row.scores(k).ua for k in row.folds])
    wa_pooled, ua_pooled, _ = row.pooled()
    return [f"{wa_mean:.2f}", f"{wa_std:.2f}", f"{ua_mean:.2f}", f"{ua_std:.2f}", *bounds, f"{wa_pooled:.2f}",
            f"{ua_pooled:.2f}", *per_fold]


def class_differences(row: Row, paper_wa: float | None, paper_ua: float | None) -> list[str]:
    if paper_wa is None or paper_ua is None:
        return ["", ""]
    return [f"{row.fold_mean('wa') - paper_wa:.2f}", f"{row.fold_mean('ua') - paper_ua:.2f}"]


CCC_COLUMNS = ("ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean", "ccc_mean_ci_low", "ccc_mean_ci_high")


def ccc_cells(row: Row, stats: StatsConfig = StatsConfig()) -> list[str]:
    """The row's CCC per attribute and their mean, each the mean over its folds, and the bootstrap
    interval of that mean ("" without attributes)."""
    if not row.rated:
        return [""] * len(CCC_COLUMNS)
    mean, low, high = row.ccc_interval(stats)
    return [f"{v:.3f}" for v in (*mean, low[-1], high[-1])]


def fold_rows(rows: list[Row]) -> tuple[list[str], list[list[object]]]:
    """One line per (row, fold); class scores blank for a row without classes, CCC columns for rated tables."""
    header = ["exp", "fold", "checkpoint", "split", "split_hash", "n_train", "n_valid", "n_test", "best_epoch",
              "wa", "ua", "macro_f1", "confusion", "valid_wa_best", "valid_wa_average", "valid_ua_best",
              "valid_ua_average"]
    rated = any(r.rated for r in rows)
    header += [*FOLD_CCC_COLUMNS, "valid_ccc_best", "valid_ccc_average"] if rated else []
    lines = []
    for row in rows:
        for k, result in sorted(row.folds.items()):
            s = row.scores(k)
            confusion = ";".join(" ".join(map(str, r)) for r in s.confusion)
            classes = [f"{s.wa:.2f}", f"{s.ua:.2f}", f"{s.macro_f1:.2f}"] if row.classified else ["", "", ""]
            attributes = result.dimensional.get(row.experiment.checkpoint)
            ccc = [f"{v:.3f}" for v in (*attributes["ccc"], attributes["ccc_mean"])] if attributes else [""] * 4
            lines.append([row.experiment.id, k, row.experiment.checkpoint, result.split, result.split_hash,
                          result.n_train, result.n_valid, result.n_test, result.best_epoch, *classes, confusion,
                          *(_valid(result, kind, m) for m in ("wa", "ua") for kind in ("best", "average")),
                          *([*ccc, *(_valid(result, kind, "ccc", ".3f") for kind in ("best", "average"))]
                            if rated else [])])
    return header, lines


FOLD_CCC_COLUMNS = ("ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean")


def _valid(result: UnitResult, kind: str, metric: str, spec: str = ".2f") -> str:
    """A checkpoint's validation score (% for WA/UA), "" where the unit has none (other task, older result)."""
    value = result.valid.get(kind, {}).get(metric)
    return "" if value is None or value != value else format(value, spec)


def markdown(header: list[str], lines: list[list[object]], title: str, stats: StatsConfig | None = None,
             sections: tuple[str, ...] = (), note: str = "") -> str:
    """The readable table; with `stats`, its CI columns (lines from `table_rows` with intervals) and `sections`;
    `note` opens it (the demo profile's warning); what ran for each row follows the table."""
    level = f"{100 * stats.level:g}%" if stats is not None else ""
    get_all = [dict(zip(header, line)) for line in lines]
    classified = any(get["wa_mean"] for get in get_all)  # a table of dimensional rows alone shows their CCC only
    rated = "ccc_mean" in header
    names = ["exp", "description"]
    for m in ("WA", "UA") if classified else ():
        names += [f"{m} mean ± std", *([f"{m} {level} CI"] if stats is not None else [])]
    names += ["WA pooled", "UA pooled", "paper WA", "paper UA"] if classified else []
    names += ["CCC A / V / D", "CCC mean", *([f"CCC mean {level} CI"] if stats is not None else [])] if rated else []

    def cells(get: dict) -> list[object]:
        out = [get["exp"], get["description"]]
        for m in ("wa", "ua") if classified else ():
            out += [f"{get[f'{m}_mean']} ± {get[f'{m}_std']}" if get[f"{m}_mean"] else "",
                    *([f"[{get[f'{m}_ci_low']}, {get[f'{m}_ci_high']}]" if get[f"{m}_ci_low"] else ""]
                      if stats is not None else [])]
        out += [get["wa_pooled"], get["ua_pooled"], get["paper_wacc"], get["paper_uacc"]] if classified else []
        if rated and get["ccc_mean"]:
            out += [" / ".join(get[f"ccc_{a}"] for a in ("arousal", "valence", "dominance")), get["ccc_mean"],
                    *([f"[{get['ccc_mean_ci_low']}, {get['ccc_mean_ci_high']}]"] if stats is not None else [])]
        return out + ([""] * (len(names) - len(out)))

    ccc_text = ("CCC (arousal / valence / dominance on [0, 1]): mean over folds, and the mean of the three"
                + (f" with the {level} bootstrap interval of its fold mean (resampling the test utterances within "
                   "each fold)" if stats is not None else "") + ".")
    text = ("WA/UA in %: mean ± std over folds"
            + (f", the {level} bootstrap confidence interval of that mean ({stats.resamples} resamples of the test "
               f"utterances within each fold, seed {stats.seed})" if stats is not None else "")
            + ", pooled over all test utterances, and the paper's figures."
            + (f" {ccc_text} Blank WA/UA: a row of the dimensional task (no classes)." if rated else ""))
    text = text if classified else ccc_text
    ran = [f"- exp {get['exp']}: {get['upstreams']}" + (f" (profile {get['profile']})" if get["profile"] else "")
           for get in get_all]
    out = [f"# {title}", "", *([f"**{note}**", ""] if note else []), text, "",
           md_table(names, [cells(get) for get in get_all]), "", "Upstreams as run:", "", *ran, ""]
    return "\n".join([*out, *sections]).rstrip("\n") + "\n"


def layer_outputs(out: Path, name: str, rows: list[Row]) -> tuple[list[list[object]], list[str]]:
    """For rows with a weighted featurizer: CSV rows, one PNG each, and the markdown section."""
    lines: list[list[object]] = []
    section = ["## Layer weights", ""]
    weighted = [r for r in rows if r.experiment.featurizer == "weighted"]
    if not weighted:
        return lines, section + ["No experiment of this table uses the weighted featurizer (`featurizer: weighted`).", ""]
    section += ["Softmax weights of the weighted featurizer over the upstream's hidden states (index 0 = the "
                "layer before the first transformer block), from the checkpoint each row reports; mean over folds. "
                f"Per fold: `{name}_layers.csv`; plots: `{name}_layers/`.", ""]
    for row in weighted:
        e = row.experiment
        missing = sorted(set(row.folds) - set(row.checkpoints))
        if missing:
            raise ValueError(f"experiment {e.id} uses the weighted featurizer but fold {missing[0]} carries no "
                             "checkpoint file; build Row(..., checkpoints={fold: weights file}) to report its layer weights")
        weights = fold_layer_weights({k: row.checkpoints[k] for k in sorted(row.folds)})
        lines += layer_csv_rows(e.id, e.branches, e.checkpoint, weights)
        png = out / f"{name}_layers" / f"exp{e.id:02d}.png"
        layers_png(png, weights, e.branches, f"exp {e.id}: {e.description[:60]}")
        for branch in sorted({b for w in weights.values() for b in w}):
            mean = mean_weights({k: w[branch] for k, w in weights.items() if branch in w})
            top = ", ".join(f"{layer}: {mean[layer]:.3f}" for layer in np.argsort(-mean, kind="stable")[:3])
            section.append(f"- exp {e.id}, branch {e.branches[branch] if branch < len(e.branches) else branch} "
                           f"({len(mean)} layers): heaviest {top}; [plot]({png.relative_to(out).as_posix()})")
    return lines, section + [""]


def wrapped_title(title: str, figure_width_in: float, fontsize: float = 9) -> str:
    """`title` broken into lines that fit a figure `figure_width_in` inches wide (≈ 0.55 em per character)."""
    return textwrap.fill(title, width=max(20, int(0.92 * figure_width_in * 72 / (0.55 * fontsize))))


def confusion_png(path: Path, confusion: np.ndarray, title: str, labels: Sequence[str]) -> None:
    atomic_write_figure(path, confusion_figure(confusion, title, labels))


def confusion_figure(confusion: np.ndarray, title: str, labels: Sequence[str]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.2, 0.55 * len(labels) + 2.0)  # 8 classes need more room than 4
    figure, axes = plt.subplots(figsize=(size, size - 0.4))
    recall = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    axes.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            axes.text(j, i, f"{confusion[i, j]}\n{100 * recall[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                      color="white" if recall[i, j] > 0.6 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 4 else 0)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(wrapped_title(title, size), fontsize=9)
    figure.tight_layout()
    return figure


def write_table(out: Path, name: str, rows: list[Row], provenance: dict, *, stats: StatsConfig = StatsConfig(),
                profile: str = "", note: str = "") -> Path:
    """Write `<name>.csv`, `<name>_folds.csv`, `<name>.md`, confusion PNGs and `run.json` atomically.

    With them the statistics (`stats` records how they were drawn, also in run.json): `<name>_pairwise.csv`,
    `<name>_recall.csv`, `<name>_layers.csv` and `<name>_layers/expNN.png` for weighted featurizers.
    """
    classes = len(rows[0].labels)
    classified = [r for r in rows if r.classified]  # rows of the dimensional task have no class statistics
    intervals = {r.experiment.id: bootstrap_interval(r.outcomes(), classes, stats, [stats.seed, 0, r.experiment.id])
                 for r in classified}
    comparisons = compare_all({r.experiment.id: r.outcomes() for r in classified}, classes, stats)
    header, lines = table_rows(rows, paper_figures(), intervals, stats, profile)
    for row in classified:
        confusion_png(out / f"{name}_confusion" / f"exp{row.experiment.id:02d}.png", row.pooled()[2],
                      f"exp {row.experiment.id}: {row.experiment.description[:48]}", row.labels)
    rated = [r for r in rows if r.rated]
    ccc_pairs = pairwise_ccc_rows(rated, min(stats.resamples, CCC_RESAMPLES), stats.seed) if len(rated) > 1 else []
    layer_lines, layer_section = layer_outputs(out, name, rows)
    sections = (*(significance_section(name, [r.experiment.id for r in classified], comparisons, stats)
                  if classified else ()),
                *(recall_section(name, classified, intervals, stats) if classified else ()),
                *ccc_section(name, ccc_pairs), *layer_section)
    atomic_write_text(out / f"{name}_folds.csv", csv_text(*fold_rows(rows)))
    atomic_write_text(out / f"{name}_pairwise.csv", csv_text(PAIRWISE_COLUMNS, pairwise_rows(comparisons, stats)))
    atomic_write_text(out / f"{name}_recall.csv", csv_text(["exp", "fold", "class", "n", "recall", "ci_low", "ci_high"],
                                                        recall_rows(classified, intervals)))
    if ccc_pairs:  # tasks with attributes: their CCC compared pair by pair
        atomic_write_text(out / f"{name}_pairwise_ccc.csv", csv_text(PAIRWISE_CCC_COLUMNS, ccc_pairs))
    for row in rated:  # predicted vs true attributes, pooled over the row's folds
        write_scatter(out / f"{name}_attributes" / f"exp{row.experiment.id:02d}.png",
                      [row.folds[k] for k in sorted(row.folds)], row.experiment.checkpoint,
                      f"exp {row.experiment.id}: {row.experiment.description[:48]}")
    atomic_write_text(out / f"{name}_layers.csv", csv_text(["exp", "branch", "upstream", "fold", "checkpoint", "layer",
                                                        "weight"], layer_lines))
    atomic_write_text(out / f"{name}.md", markdown(header, lines, f"{name}: {len(rows)} experiment(s)", stats, sections,
                                                   note))
    statistics = asdict(stats) | {
        "interval": "percentile bootstrap of the fold-mean WA/UA, utterances resampled within each fold",
        "wa_test": "paired sign-flip permutation test of the fold-mean WA (the difference shown)",
        "ua_test": "paired sign-flip permutation test of the fold-mean UA",
        "correction": "Holm over the table's pairs, separately for WA and UA"}
    atomic_write_text(out / "run.json", json.dumps(provenance | {"statistics": statistics}, indent=1, default=str) + "\n")
    atomic_write_text(out / f"{name}.csv", csv_text(header, lines))  # last: its presence means the rest is there
    return out / f"{name}.csv"
