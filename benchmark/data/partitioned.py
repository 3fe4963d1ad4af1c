"""Corpora whose emotion is in their file names and whose folds are a shipped partition
(`partitions/<corpus>.csv`, derived from EmoBox's published folds by `build_partitions`).

A recipe supplies `parse(path) -> FileLabel | None` (label, speaker, gender and the file's name in the
partition, read from the corpus' own file names and folders); everything else is shared here:
- every file the partition lists must be on disk (else one error with the count and the first
  names; `strict=False` proceeds and says how many were left out); audio files on disk that no
  partition lists are reported and not used;
- EmoBox ships train/test only, so each fold's valid part is drawn from its training part: 20 % of
  the speakers (speaker-disjoint) when the training part has at least `MIN_SPEAKERS`, else 20 % of
  each class (at least one of a class with two or more); a generator seeded by corpus and fold draws it, and the split's hash is recorded.
"""
from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile

from .build_partitions import PARTITIONS_DIR
from .corpus import Corpus, CorpusInfo, CorpusOptions
from .iemocap import CorpusError, Utterance
from .splits import Fold, split_hash

VALID_FRACTION = 0.2
MIN_SPEAKERS = 3  # SAVEE: 1 of its 3 training speakers; TESS (2 speakers): 20 % of each class
AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class FileLabel:
    key: str  # the file's name in the partition
    label: str
    speaker: str
    gender: str = ""


def read_partition(name: str, path: Path | None = None) -> dict[str, int]:
    """File name → test fold (0: in the training part of every fold), from `path` (default: the shipped
    `partitions/<name>.csv`)."""
    with (path or PARTITIONS_DIR / f"{name}.csv").open(newline="") as handle:
        return {row["file"]: int(row["test_fold"]) for row in csv.DictReader(handle)}


def first_names(names: Sequence[str], count: int = 3) -> str:
    return ", ".join(names[:count]) + (" ..." if len(names) > count else "")


def _seed(corpus: str, fold: int) -> int:
    return int(hashlib.sha256(f"{corpus}|fold{fold}|valid".encode()).hexdigest()[:8], 16)


def draw_valid(pool: Sequence[Utterance], corpus: str, fold: int) -> tuple[set[str], str]:
    """Ids of the valid part drawn from a fold's training part, and how it was drawn."""
    rng = np.random.default_rng(_seed(corpus, fold))
    speakers = sorted({u.speaker for u in pool})
    if len(speakers) >= MIN_SPEAKERS:
        chosen = set(rng.permutation(speakers)[: max(1, round(VALID_FRACTION * len(speakers)))].tolist())
        return {u.id for u in pool if u.speaker in chosen}, "speaker_disjoint"
    valid: set[str] = set()
    for label in sorted({u.label for u in pool}):
        ids = sorted(u.id for u in pool if u.label == label)
        count = max(1, math.floor(VALID_FRACTION * len(ids) + 0.5)) if len(ids) > 1 else 0  # one class member stays
        valid.update(rng.permutation(ids)[:count].tolist())
    return valid, "stratified"


def read_partitioned(root: Path, info: CorpusInfo, parse: Callable[[Path], FileLabel | None],
                     options: CorpusOptions, partition_file: Path | None = None) -> Corpus:
    """The corpus under `root`: its files parsed by `parse`, its folds from `partition_file` (default:
    the shipped partition of `info.name`)."""
    partition = read_partition(info.name, partition_file)
    on_disk: dict[str, tuple[Path, FileLabel]] = {}
    unlisted: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("._")):
        parsed = parse(path)
        if parsed is None or parsed.key not in partition:
            unlisted.append(str(path.relative_to(root)))
        elif parsed.key not in on_disk:
            on_disk[parsed.key] = (path, parsed)
    missing = sorted(set(partition) - set(on_disk))
    strict = options.strict if options.strict is not None else True
    if missing and strict:
        raise CorpusError(f"{root}: {len(missing)} of the {len(partition)} files that {info.name}'s partition lists "
                          f"are not there (first: {first_names(missing)}); expected {info.layout} "
                          "(pass --no-strict to run without them)")
    if options.verbose and missing:
        print(f"note: {info.name}: {len(missing)} of the {len(partition)} partition files are missing; left out")
    if options.verbose and unlisted:
        print(f"note: {info.name}: {len(unlisted)} audio file(s) under {root} are in no fold of the partition "
              f"and not used (first: {first_names(unlisted)})")
    utterances, test_fold = [], {}
    for key in sorted(on_disk):
        path, parsed = on_disk[key]
        if parsed.label not in info.classes:
            raise CorpusError(f"{path}: label {parsed.label!r} is not one of {info.name}'s {', '.join(info.classes)}")
        meta = soundfile.info(str(path))
        utterances.append(Utterance(Path(key).stem, path, parsed.label, 0, parsed.speaker, parsed.gender, "",
                                    meta.frames / meta.samplerate, info.classes.index(parsed.label),
                                    sample_rate=int(meta.samplerate)))
        test_fold[utterances[-1].id] = partition[key]
    if options.verbose:
        print(f"{info.name} reader: {len(utterances)} utterances of {len(info.classes)} classes in {root}")
    return Corpus(info, info.classes, tuple(utterances), tuple(_folds(utterances, test_fold, info)))


def _folds(utterances: Sequence[Utterance], test_fold: dict[str, int], info: CorpusInfo) -> list[Fold]:
    return [fold_with_valid(k, [u for u in utterances if test_fold[u.id] == k],
                            [u for u in utterances if test_fold[u.id] != k], utterances, info.name)
            for k in range(1, info.folds + 1)]


def fold_with_valid(k: int, test: Sequence[Utterance], pool: Sequence[Utterance], utterances: Sequence[Utterance],
                    corpus: str) -> Fold:
    """Fold `k` testing on `test`, its valid part drawn from the training `pool` (`draw_valid`); the
    parts keep the order of `utterances`."""
    valid_ids, method = draw_valid(pool, corpus, k)
    roles = {u.id: "test" for u in test} | {u.id: "valid" if u.id in valid_ids else "train" for u in pool}
    parts = {role: tuple(u for u in utterances if roles.get(u.id) == role) for role in ("train", "valid", "test")}
    if not all(parts.values()):
        empty = [role for role, members in parts.items() if not members]
        raise CorpusError(f"{corpus} fold {k}: the {'/'.join(empty)} part is empty; too few files are there")
    return Fold(k, parts["train"], parts["valid"], parts["test"], f"emobox_valid20_{method}", split_hash(roles))
