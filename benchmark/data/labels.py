"""`--labels`: a corpus restricted to some of its classes, others merged into them (`exc=hap` style).

`angry,happy,neutral,sad` keeps those four classes in that order (the classifier's output order) and
drops the rest; `calm=neutral` also keeps calm utterances, labelled neutral. Folds keep every
remaining utterance in its role; their split hashes are recomputed, so units trained on the full
label set are never reported for the restricted one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

from .iemocap import CorpusError, Utterance
from .splits import Fold, split_hash


@dataclass(frozen=True)
class LabelSpec:
    classes: tuple[str, ...]  # kept, in output order
    merges: dict[str, str]  # source label → kept class


def parse_label_spec(text: str) -> LabelSpec:
    classes: list[str] = []
    merges: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part:
            source, target = (s.strip() for s in part.split("=", 1))
            if not source or not target:
                raise CorpusError(f"--labels: {part!r}: expected SOURCE=CLASS, e.g. exc=hap")
            merges[source] = target
        elif part in classes:
            raise CorpusError(f"--labels: {part!r} is listed twice")
        else:
            classes.append(part)
    if len(classes) < 2:
        raise CorpusError(f"--labels: {text!r}: name at least two classes to keep, e.g. angry,happy,neutral,sad")
    unkept = [f"{s}={t}" for s, t in merges.items() if t not in classes]
    if unkept:
        raise CorpusError(f"--labels: {unkept[0]} merges into a class that is not kept ({', '.join(classes)})")
    return LabelSpec(tuple(classes), merges)


def restrict(folds: Sequence[Fold], labels: Sequence[str], spec: LabelSpec, corpus: str) -> list[Fold]:
    """`folds` with only the kept classes (merged ones relabelled); labels must be the corpus' own."""
    unknown = [name for name in (*spec.classes, *spec.merges) if name not in labels]
    if unknown:
        raise CorpusError(f"--labels: {unknown[0]!r} is not a class of {corpus} ({', '.join(labels)})")

    def rename(label: str) -> str:
        return spec.merges.get(label, label)

    return [fold_of(fold.index, *(relabel(part, spec.classes, rename) for part in (fold.train, fold.valid, fold.test)),
                    f"{fold.split}+labels") for fold in folds]


def relabel(members: Sequence[Utterance], classes: Sequence[str], rename: Callable[[str], str]) -> tuple[Utterance, ...]:
    """`members` whose renamed label is one of `classes`, relabelled and indexed into `classes`."""
    out = []
    for u in members:
        label = rename(u.label)
        if label in classes:
            out.append(replace(u, label=label, label_index=list(classes).index(label)))
    return tuple(out)


def fold_of(index: int, train: tuple[Utterance, ...], valid: tuple[Utterance, ...], test: tuple[Utterance, ...],
            split: str) -> Fold:
    """A fold of these parts, its split hash computed from their roles."""
    roles = {u.id: role for role, part in (("train", train), ("valid", valid), ("test", test)) for u in part}
    return Fold(index, train, valid, test, split, split_hash(roles))
