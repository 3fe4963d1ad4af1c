"""The corpus seam: a recipe is a pure function from a corpus folder to a typed `Corpus` (its ordered
label set, utterances and folds), registered by name like an upstream.

    @register_corpus(CorpusInfo("mycorpus", classes=(...), folds=5, utterances=1200, ...))
    def read_mycorpus(root: Path, options: CorpusOptions) -> Corpus: ...

`load_corpus(name, root)` reads one; `corpus_infos()` lists them (`run_benchmark.py --list-corpora`).
The built-in recipes register when this module is first asked for one: IEMOCAP (`iemocap`, SUPERB's
split), the acted corpora with EmoBox's published folds (`acted`) and any dataset of an EmoBox
checkout (`emobox:<dataset>`, `emobox`).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .iemocap import CorpusError, Utterance
from .splits import Fold

BUILTIN_RECIPES = ("benchmark.data.iemocap_recipe", "benchmark.data.acted", "benchmark.data.msp_podcast",
                   "benchmark.data.emobox")


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
    emobox_meta: Path | None = None  # `emobox:<dataset>`: an EmoBox checkout or its data/ folder
    every_rated: bool = False  # the dimensional task: also utterances outside the label set that carry attributes


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
NamespaceRecipe = Callable[[str, Path, CorpusOptions], Corpus]  # (the name after "<namespace>:", root, options)
_RECIPES: dict[str, tuple[CorpusInfo, Recipe]] = {}
_NAMESPACES: dict[str, NamespaceRecipe] = {}


def register_namespace(namespace: str) -> Callable[[NamespaceRecipe], NamespaceRecipe]:
    """Corpora named `<namespace>:<name>` (e.g. `emobox:<dataset>`) are read by one recipe."""
    def register(recipe: NamespaceRecipe) -> NamespaceRecipe:
        _NAMESPACES[namespace] = recipe
        return recipe
    return register


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
    namespace, _, rest = name.partition(":")
    if rest and namespace in _NAMESPACES:
        return CorpusInfo(name, (), 0, 0, "the dataset's own", "its own distribution", f"the {rest} audio folder")
    if name not in recipes:
        raise CorpusError(f"--corpus: unknown corpus {name!r}; expected one of {', '.join(sorted(recipes))} "
                          f"or {', '.join(f'{n}:<name>' for n in sorted(_NAMESPACES))} (run_benchmark.py --list-corpora)")
    return recipes[name][0]


def load_corpus(name: str, root: Path | str, strict: bool | None = None, split: str = "superb",
                verbose: bool = False, emobox_meta: Path | None = None, every_rated: bool = False) -> Corpus:
    """The corpus `name` read from `root` (`.labels`, `.utterances`, `.folds`, each fold with `.train`,
    `.valid`, `.test`); `emobox:<dataset>` reads EmoBox's metadata from `emobox_meta`."""
    info = corpus_info(name)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus folder does not exist; expected {info.layout}")
    options = CorpusOptions(strict, split, verbose, emobox_meta, every_rated)
    namespace, _, rest = name.partition(":")
    if rest and namespace in _NAMESPACES:
        return _NAMESPACES[namespace](rest, root, options)
    return _RECIPES[name][1](root, options)


def format_corpus_table() -> str:
    """`--list-corpora`: one line per corpus."""
    header = ("name", "classes", "folds", "utterances", "offline", "licence", "where to obtain it")
    rows = [(i.name, f"{len(i.classes)} ({', '.join(i.classes)})", str(i.folds), str(i.utterances or "by release"),
             "yes (demo)" if i.offline else "no", i.licence, i.obtain) for i in corpus_infos()]
    rows += [(f"{namespace}:<dataset>", "its label_map.json", "its fold_<k>", "-", "no", "the dataset's own",
              "an EmoBox checkout (--emobox-meta) and the audio (--data)") for namespace in sorted(_NAMESPACES)]
    widths = [max(len(r[c]) for r in (header, *rows)) for c in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1]
                     for row in (header, *rows))
