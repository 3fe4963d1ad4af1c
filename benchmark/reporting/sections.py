"""The statistics sections of a table report: paired comparisons (CSV rows, markdown and `--compare`
text matrices) and per-class recall, from `stats`' tests and intervals."""
from __future__ import annotations

import numpy as np

from ..common.config import ConfigError
from .rows import Row
from .stats import Comparison, Interval, StatsConfig, compare_all


def md_table(header: list[str], lines: list[list[object]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(str(v) for v in line) + " |" for line in lines)])


PAIRWISE_COLUMNS = ["exp_a", "exp_b", "n", "wa_diff", "wa_diff_low", "wa_diff_high", "a_only", "b_only", "p_wa",
                    "p_wa_holm", "wa_significant", "ua_diff", "ua_diff_low", "ua_diff_high", "p_ua", "p_ua_holm",
                    "ua_significant", "resamples", "seed"]


def pairwise_rows(comparisons: list[Comparison], stats: StatsConfig) -> list[list[object]]:
    return [[c.a, c.b, c.n, f"{c.wa_diff:.2f}", f"{c.wa_low:.2f}", f"{c.wa_high:.2f}", c.a_only, c.b_only,
             f"{c.p_wa:.3g}", f"{c.p_wa_holm:.3g}", int(c.significant("wa", stats.alpha)), f"{c.ua_diff:.2f}",
             f"{c.ua_low:.2f}", f"{c.ua_high:.2f}", f"{c.p_ua:.3g}", f"{c.p_ua_holm:.3g}",
             int(c.significant("ua", stats.alpha)), stats.resamples, stats.seed] for c in comparisons]


def _matrix(ids: list[int], comparisons: list[Comparison], metric: str, alpha: float, cell) -> list[list[str]]:
    """Row i, column j: `cell(difference i − j, p after Holm, significant)`; "—" on the diagonal."""
    by_pair = {}
    for c in comparisons:
        diff, p = getattr(c, f"{metric}_diff"), getattr(c, f"p_{metric}_holm")
        by_pair[c.a, c.b] = (diff, p, c.significant(metric, alpha))
        by_pair[c.b, c.a] = (0.0 - diff, p, c.significant(metric, alpha))  # 0.0 - 0.0 is +0.0
    return [[f"exp {i}", *("—" if i == j else cell(*by_pair[i, j]) for j in ids)] for i in ids]


def significance_section(name: str, ids: list[int], comparisons: list[Comparison], stats: StatsConfig) -> list[str]:
    mark = lambda d, p, s: f"{d:+.2f}{'*' if s else ''}"  # noqa: E731
    out = ["## Paired comparisons", "",
           f"Row minus column, in points, on the test utterances both rows share. `*`: significant at {stats.alpha:g} "
           f"after Holm's correction over the {len(comparisons)} pair(s) of this table, separately for WA and UA. "
           "WA and UA: paired sign-flip permutation test of the fold-mean difference shown "
           f"({stats.resamples} resamples, seed {stats.seed}). The tests compare two trained models on the same "
           "test utterances: training randomness is not included. Intervals and p-values: "
           f"`{name}_pairwise.csv`.", ""]
    for metric in ("wa", "ua"):
        out += [f"{metric.upper()}:", "", md_table(["", *(f"exp {j}" for j in ids)],
                                                    _matrix(ids, comparisons, metric, stats.alpha, mark)), ""]
    return out


def recall_rows(rows: list[Row], intervals: dict[int, Interval]) -> list[list[object]]:
    """`exp, fold, class, n, recall, ci_low, ci_high`: per fold, then pooled over folds with its interval."""
    lines: list[list[object]] = []
    for row in rows:
        for k in sorted(row.folds):
            labels = np.asarray(row.folds[k].test_labels)
            correct = labels == np.asarray(row.scores(k).predictions)
            for c, name in enumerate(row.labels):
                n = int((labels == c).sum())
                lines.append([row.experiment.id, k, name, n, f"{100 * correct[labels == c].mean():.2f}" if n else "", "", ""])
        i = intervals[row.experiment.id]
        support = np.bincount(row.outcomes().labels, minlength=len(row.labels))
        for c, name in enumerate(row.labels):
            lines.append([row.experiment.id, "pooled", name, int(support[c]),
                          *("" if np.isnan(v) else f"{v:.2f}" for v in (i.recall[c], i.recall_low[c], i.recall_high[c]))])
    return lines


def recall_section(name: str, rows: list[Row], intervals: dict[int, Interval], stats: StatsConfig) -> list[str]:
    best = np.nanmax([np.nan_to_num(intervals[r.experiment.id].recall, nan=-1.0) for r in rows], axis=0)

    def cell(i: Interval, c: int) -> str:
        if np.isnan(i.recall[c]):
            return ""
        value = f"**{i.recall[c]:.1f}**" if i.recall[c] == best[c] else f"{i.recall[c]:.1f}"
        return f"{value} ({i.recall_low[c]:.1f}–{i.recall_high[c]:.1f})"

    labels = rows[0].labels
    cells = [[f"exp {r.experiment.id}", *(cell(intervals[r.experiment.id], c) for c in range(len(labels)))] for r in rows]
    return ["## Recall per class", "",
            f"% of each emotion's test utterances recognised, pooled over folds, with its {100 * stats.level:g}% "
            f"bootstrap interval; bold: the best row per emotion. Per fold: `{name}_recall.csv`.", "",
            md_table(["", *labels], cells), ""]


def check_compare(ids: tuple[int, ...], available: list[int]) -> None:
    """`--compare` needs two or more distinct experiments, all among those the run reports."""
    if not ids:
        return
    if len(set(ids)) < 2 or len(set(ids)) != len(ids):
        raise ConfigError(f"--compare: give two or more different experiments, e.g. 3,5,7 (got {','.join(map(str, ids))})")
    missing = [i for i in ids if i not in available]
    if missing:
        raise ConfigError(f"--compare: experiment {missing[0]} is not among this run's experiments "
                          f"({','.join(map(str, available))}); add it to --experiment")


def comparison_text(rows: list[Row], stats: StatsConfig = StatsConfig()) -> str:
    """The pairwise matrices of `rows` as plain text (`--compare`), Holm over these rows' pairs only."""
    comparisons = compare_all({r.experiment.id: r.outcomes() for r in rows}, len(rows[0].labels), stats)
    ids = [r.experiment.id for r in rows]
    cell = lambda d, p, s: f"{d:+.2f} (p={p:.2g}){'*' if s else ''}"  # noqa: E731
    out = [f"Paired comparisons: row − column in points; p after Holm over {len(comparisons)} pair(s); "
           f"* significant at {stats.alpha:g} (WA and UA: sign-flip permutation of the fold-mean difference, "
           f"{stats.resamples} resamples, seed {stats.seed}; two trained models on the same test utterances, "
           "training randomness not included)"]
    for metric in ("wa", "ua"):
        table = [["", *(f"exp {j}" for j in ids)], *_matrix(ids, comparisons, metric, stats.alpha, cell)]
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        out += ["", f"{metric.upper()}:", *("  ".join([line[0].ljust(widths[0]), *(v.rjust(w) for v, w in
                                                        zip(line[1:], widths[1:]))]) for line in table)]
    return "\n".join(out)


def ccc_section(name: str, ccc_pairs: list[list[object]]) -> list[str]:
    """Markdown of `dimensional.pairwise_ccc_rows` (nothing for fewer than two rated rows)."""
    if not ccc_pairs:
        return []
    resamples, seed = ccc_pairs[0][-2:]
    return ["## Paired CCC comparisons", "",
            "Fold-mean mean CCC of row a minus row b on the same test utterances, with the percentile interval and "
            f"p-value of the paired bootstrap ({resamples} resamples of the utterances within each fold, seed {seed}; "
            f"not corrected for the number of pairs). CSV: `{name}_pairwise_ccc.csv`.", "",
            md_table(["a", "b", "n", "Δ CCC mean", "interval", "p"],
                     [[a, b, n, diff, f"[{low}, {high}]", p] for a, b, n, diff, low, high, p, *_ in ccc_pairs]), ""]
