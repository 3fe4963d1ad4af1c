"""The corpus seam: a recipe is a pure function from a corpus folder to a typed `Corpus` (its ordered
label set, utterances and folds), registered by name like an upstream.

    @register_corpus(CorpusInfo("mycorpus", classes=(...), folds=5, utterances=1200, ...))
    def read_mycorpus(root: Path, options: CorpusOptions) -> Corpus: ...

`load_corpus(name, root)` reads one; `corpus_infos()` lists them (`run_benchmark.py --list-corpora`).
The built-in recipes register when this module is first asked for one: IEMOCAP (`iemocap`, SUPERB's
split) and the acted corpora with EmoBox's published folds (`acted`).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .iemocap import CorpusError, Utterance
from .splits import Fold

BUILTIN_RECIPES = ("benchmark.data.iemocap_recipe", "benchmark.data.acted")


@dataclass(frozen=True)
class CorpusInfo:
    """What `--list-corpora` says of a corpus before it is read."""

    name: str
    classes: tuple[str, ...]  # the label set, in the classifier's output order
    folds: int
    utterances: int  # in the complete corpus
    licence: str
    obtain: str  # where to get it
    layout: str  # what --data points at
    offline: bool = False  # usable here without any download (a generated stand-in)


@dataclass(frozen=True)
class CorpusOptions:
    strict: bool | None = None  # None: the recipe's default (on for a complete-looking copy)
    split: str = "superb"  # IEMOCAP's train/valid split; other corpora draw theirs (`partitioned`)
    verbose: bool = True


@dataclass(frozen=True)
class Corpus:
    info: CorpusInfo
    labels: tuple[str, ...]
    utterances: tuple[Utterance, ...]
    folds: tuple[Fold, ...]

    def fold(self, index: int) -> Fold:
        for fold in self.folds:
            if fold.index == index:
                return fold
        raise CorpusError(f"{self.info.name}: fold {index} does not exist; it has folds "
                          f"{', '.join(str(f.index) for f in self.folds)}")


Recipe = Callable[[Path, CorpusOptions], Corpus]
_RECIPES: dict[str, tuple[CorpusInfo, Recipe]] = {}


def register_corpus(info: CorpusInfo) -> Callable[[Recipe], Recipe]:
    def register(recipe: Recipe) -> Recipe:
        if info.name in _RECIPES and _RECIPES[info.name][1] is not recipe:
            raise ValueError(f"corpus {info.name!r} is registered twice")
        _RECIPES[info.name] = (info, recipe)
        return recipe
    return register


def _builtin() -> dict[str, tuple[CorpusInfo, Recipe]]:
    for module in BUILTIN_RECIPES:
        importlib.import_module(module)
    return _RECIPES


def corpus_infos() -> list[CorpusInfo]:
    return [info for info, _ in _builtin().values()]


def corpus_info(name: str) -> CorpusInfo:
    recipes = _builtin()
    if name not in recipes:
        raise CorpusError(f"--corpus: unknown corpus {name!r}; expected one of {', '.join(sorted(recipes))} "
                          "(run_benchmark.py --list-corpora)")
    return recipes[name][0]


def load_corpus(name: str, root: Path | str, strict: bool | None = None, split: str = "superb",
                verbose: bool = False) -> Corpus:
    """The corpus `name` read from `root` (`.labels`, `.utterances`, `.folds`, each fold with `.train`,
    `.valid`, `.test`)."""
    info = corpus_info(name)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus folder does not exist; expected {info.layout}")
    return _RECIPES[name][1](root, CorpusOptions(strict, split, verbose))


def format_corpus_table() -> str:
    """`--list-corpora`: one line per corpus."""
    header = ("name", "classes", "folds", "utterances", "offline", "licence", "where to obtain it")
    rows = [(i.name, f"{len(i.classes)} ({', '.join(i.classes)})", str(i.folds), str(i.utterances),
             "yes (demo)" if i.offline else "no", i.licence, i.obtain) for i in corpus_infos()]
    widths = [max(len(r[c]) for r in (header, *rows)) for c in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1]
                     for row in (header, *rows))
