"""IEMOCAP as a registered corpus recipe: the reader (`iemocap`) and leave-one-session-out folds with
SUPERB's train/valid split (`splits`), unchanged."""
from __future__ import annotations

from pathlib import Path

from . import iemocap, splits
from .corpus import Corpus, CorpusInfo, CorpusOptions, register_corpus

INFO = CorpusInfo(
    name="iemocap", classes=iemocap.LABELS, folds=len(iemocap.SESSIONS), utterances=5531,
    licence="USC SAIL licence (research use, on request)", obtain="https://sail.usc.edu/iemocap/ (release form)",
    layout="the IEMOCAP_full_release folder (Session1 … Session5)", offline=True)


@register_corpus(INFO)
def read_iemocap(root: Path, options: CorpusOptions) -> Corpus:
    """4 classes (excited merged into happy), 5 folds, SUPERB's split (or `options.split`)."""
    utterances = iemocap.load(root, strict=options.strict, verbose=options.verbose, every_turn=options.every_rated)
    folds = splits.folds(utterances, options.split)  # type: ignore[arg-type]
    return Corpus(INFO, iemocap.LABELS, tuple(utterances), tuple(folds))
