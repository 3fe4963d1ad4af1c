"""Cross-corpus folds: train (and validate) on corpus A, test on all of corpus B, over the classes both
have. Classes are matched by canonical name (IEMOCAP's neu/hap/ang/sad are neutral/happy/angry/sad;
the other recipes use canonical names already); the mapping is returned to be printed and recorded."""
from __future__ import annotations

from .corpus import Corpus
from .iemocap import CorpusError
from .labels import fold_of, relabel
from .splits import Fold

CANONICAL = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad", "exc": "happy", "fru": "frustrated",
             "sur": "surprise", "fea": "fear", "dis": "disgust"}


def canonical(label: str) -> str:
    return CANONICAL.get(label, label)


def cross_folds(train: Corpus, test: Corpus) -> tuple[tuple[str, ...], dict[str, str], list[Fold]]:
    """(shared canonical classes in A's order, "corpus:label" → canonical class, one fold per fold of A)."""
    test_classes = {canonical(label) for label in test.labels}
    shared = tuple(canonical(label) for label in train.labels if canonical(label) in test_classes)
    if len(shared) < 2:
        raise CorpusError(f"{train.info.name} and {test.info.name} share {len(shared)} class(es) "
                          f"({', '.join(shared) or 'none'}); a cross-corpus test needs two or more")
    mapping = {f"{c.info.name}:{label}": canonical(label) for c in (train, test) for label in c.labels
               if canonical(label) in shared}

    tested = relabel(test.utterances, shared, canonical)
    clash = {u.id for u in train.utterances} & {u.id for u in tested}
    if clash:
        raise CorpusError(f"{train.info.name} and {test.info.name} both have utterance {sorted(clash)[0]!r}")
    folds = [fold_of(fold.index, relabel(fold.train, shared, canonical), relabel(fold.valid, shared, canonical), tested,
                     f"cross_{train.info.name}_{test.info.name}") for fold in train.folds]
    return shared, mapping, folds
