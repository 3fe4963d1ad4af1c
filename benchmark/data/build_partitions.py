"""Build the shipped fold partitions (`partitions/<corpus>.csv`) from EmoBox's published folds.

Usage: python -m benchmark.data.build_partitions DIR  (DIR holds `<corpus>_folds.csv`: one row per
utterance and fold with columns wav, fold, role, as derived from EmoBox's jsonl metadata).

In every corpus EmoBox partitions, each utterance is tested in exactly one fold (or in none, for the
corpora with a single fold) and trained on in all others, so a partition is one row per file: its
name and its test fold (0: never tested). The builder checks that structure and fails otherwise.
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

PARTITIONS_DIR = Path(__file__).with_name("partitions")
CORPORA = ("ravdess", "cremad", "emodb", "savee", "tess")


def compact(rows: list[dict[str, str]], corpus: str) -> list[tuple[str, int]]:
    """(file name, test fold or 0) per utterance, checked against every fold's roles."""
    roles: dict[str, dict[int, str]] = defaultdict(dict)
    for row in rows:
        name, fold = Path(row["wav"]).name, int(row["fold"])
        if fold in roles[name]:
            raise ValueError(f"{corpus}: {name} appears twice in fold {fold}")
        roles[name][fold] = row["role"]
    folds = sorted({int(r["fold"]) for r in rows})
    out = []
    for name, by_fold in roles.items():
        tested = [k for k, role in by_fold.items() if role == "test"]
        if set(by_fold) != set(folds) or len(tested) > 1 or (len(folds) > 1 and not tested):
            raise ValueError(f"{corpus}: {name} is not tested in exactly one fold and trained on in the others")
        out.append((name, tested[0] if tested else 0))
    return sorted(out)


def build(source: Path, out_dir: Path = PARTITIONS_DIR) -> None:
    out_dir.mkdir(exist_ok=True)
    for corpus in CORPORA:
        with (source / f"{corpus}_folds.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        lines = ["file,test_fold", *(f"{name},{fold}" for name, fold in compact(rows, corpus))]
        (out_dir / f"{corpus}.csv").write_text("\n".join(lines) + "\n")
        print(f"{corpus}: {len(lines) - 1} files → {out_dir / f'{corpus}.csv'}")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
