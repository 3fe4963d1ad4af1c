"""Training randomness: the same rows trained with several seeds (`run_benchmark.py --seeds N`).

A table's bootstrap intervals and paired tests resample the test utterances of one trained model:
they say how far a score would move on other test utterances, not in another training run. Here
each row's fold-mean WA and UA (and mean CCC, for the tasks with attributes) is taken per seed, and reported are their mean over the seeds, the
standard deviation over the seeds (ddof = 1: the seeds are a sample of training runs) and the
Student-t interval of that mean (scipy), beside the test-set bootstrap interval of the first seed's
model (as in the table).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from ..common.io import atomic_write_text
from .rows import Row
from .sections import md_table
from .stats import StatsConfig, bootstrap_interval
from .tables import csv_text

METRICS = ("wa", "ua")
CCC = "ccc_mean"  # of rated rows (tasks dimensional and both): the mean CCC's fold mean


def has(row: Row, metric: str) -> bool:
    return row.rated if metric == CCC else row.classified


def seed_interval(values: list[float], level: float) -> tuple[float, float]:
    """Student-t interval of the mean of `values` (NaN for a single value)."""
    if len(values) < 2:
        return math.nan, math.nan
    half = scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    mean = float(np.mean(values))
    return mean - half, mean + half


def test_set_interval(row: Row, metric: str, stats: StatsConfig) -> tuple[float, float]:
    """The bootstrap interval of the row's fold mean of `metric` on its test utterances (as the table draws it)."""
    if metric == CCC:
        _, low, high = row.ccc_interval(stats)
        return float(low[-1]), float(high[-1])
    test = bootstrap_interval(row.outcomes(), len(row.labels), stats, [stats.seed, 0, row.experiment.id])
    return (test.wa_low, test.wa_high) if metric == "wa" else (test.ua_low, test.ua_high)


def seed_metrics(rows: list[Row]) -> tuple[str, ...]:
    return (*(METRICS if any(r.classified for r in rows) else ()), *((CCC,) if any(r.rated for r in rows) else ()))


def seed_rows(rows_by_seed: dict[int, list[Row]], stats: StatsConfig = StatsConfig()) -> tuple[list[str], list[list[object]]]:
    """One line per experiment: its fold-mean WA/UA (and mean CCC where rated) per seed, their mean, std and
    interval over seeds, and the test-set interval of the first seed's model."""
    seeds = sorted(rows_by_seed)
    metrics = seed_metrics(rows_by_seed[seeds[0]])
    header = ["exp", "description", "checkpoint", "seeds", *[f"{m}_seed{s}" for s in seeds for m in metrics]]
    for metric in metrics:
        header += [f"{metric}_mean_over_seeds", f"{metric}_std_over_seeds", f"{metric}_seeds_ci_low",
                   f"{metric}_seeds_ci_high"]
    header += [f"{m}_test_ci_{end}" for m in metrics for end in ("low", "high")]
    lines = []
    for index, first in enumerate(rows_by_seed[seeds[0]]):
        per_seed = {s: rows_by_seed[s][index] for s in seeds}
        if any(r.experiment.id != first.experiment.id for r in per_seed.values()):
            raise ValueError("the seeds' tables list different experiments")
        e = first.experiment
        spec = lambda m: ".3f" if m == CCC else ".2f"  # noqa: E731
        line: list[object] = [e.id, e.description, e.checkpoint, " ".join(map(str, seeds))]
        line += [format(per_seed[s].fold_mean(m), spec(m)) if has(first, m) else "" for s in seeds for m in metrics]
        for metric in metrics:
            if not has(first, metric):
                line += [""] * 4
                continue
            values = [per_seed[s].fold_mean(metric) for s in seeds]
            low, high = seed_interval(values, stats.level)
            line += [format(float(np.mean(values)), spec(metric)),
                     format(float(np.std(values, ddof=1)), spec(metric)) if len(values) > 1 else "",
                     format(low, spec(metric)), format(high, spec(metric))]
        for metric in metrics:
            line += [format(v, spec(metric)) for v in test_set_interval(first, metric, stats)] if has(first, metric) \
                else ["", ""]
        lines.append(line)
    return header, lines


def seed_markdown(name: str, header: list[str], lines: list[list[object]], seeds: int, stats: StatsConfig) -> str:
    level = f"{100 * stats.level:g} %"
    metrics = [m for m in (*METRICS, CCC) if f"{m}_mean_over_seeds" in header]
    names = ["exp", "description"]
    for m in metrics:
        shown = "CCC mean" if m == CCC else m.upper()
        names += [f"{shown} mean ± std over seeds", f"{shown} {level} interval over seeds",
                  f"{shown} {level} test-set interval"]

    def cells(line: list[object]) -> list[object]:
        get = dict(zip(header, line)).__getitem__
        out = [get("exp"), get("description")]
        for m in metrics:
            if not get(f"{m}_mean_over_seeds"):
                out += ["", "", ""]
                continue
            out += [f"{get(f'{m}_mean_over_seeds')} ± {get(f'{m}_std_over_seeds')}",
                    f"[{get(f'{m}_seeds_ci_low')}, {get(f'{m}_seeds_ci_high')}]",
                    f"[{get(f'{m}_test_ci_low')}, {get(f'{m}_test_ci_high')}]"]
        return out

    text = (f"WA/UA in %: each row's mean over folds, trained with {seeds} seeds. Over the seeds: mean ± standard "
            f"deviation (ddof 1) and the Student-t {level} interval of the mean (training randomness). Beside it "
            f"the {level} bootstrap interval of the first seed's model ({stats.resamples} resamples of its test "
            "utterances within each fold): how far the score moves on other test utterances, not on another training run."
            + (" CCC mean: the mean over arousal, valence and dominance, averaged over folds." if CCC in metrics else ""))
    return "\n".join([f"# {name}: {len(lines)} experiment(s), {seeds} seeds", "", text, "",
                      md_table(names, [cells(line) for line in lines]), ""])


def write_seed_summary(out: Path, name: str, rows_by_seed: dict[int, list[Row]],
                       stats: StatsConfig = StatsConfig()) -> Path:
    """`<name>_seeds.csv` and `<name>_seeds.md` in `out`; returns the CSV."""
    header, lines = seed_rows(rows_by_seed, stats)
    atomic_write_text(out / f"{name}_seeds.md", seed_markdown(name, header, lines, len(rows_by_seed), stats))
    atomic_write_text(out / f"{name}_seeds.csv", csv_text(header, lines))
    return out / f"{name}_seeds.csv"
