"""`--corpus emobox:<dataset>`: any dataset of an EmoBox checkout (github emo-box/EmoBox, MIT licence),
read from its metadata (`--emobox-meta`: the checkout or its `data/` folder) with the audio under `--data`.

EmoBox keeps, per dataset, `data/<dataset>/label_map.json` (raw emotion → class) and
`fold_<k>/<dataset>_{train,test}_fold_<k>.jsonl` (one JSON object per utterance: `key`, `wav`,
`emo`, ...). `wav` is a path in EmoBox's download layout (`downloads/<dataset>/...`); it is looked up
under `--data` with that prefix removed, else by file name. Class names are the label map's values
in lower case, sorted. EmoBox ships no speakers and no valid part: each fold's valid part is 20 % of
each class of its training part (`partitioned.draw_valid`).
"""
from __future__ import annotations

import json
from pathlib import Path

import soundfile

from .corpus import Corpus, CorpusInfo, CorpusOptions, register_namespace
from .iemocap import CorpusError, Utterance
from .partitioned import first_names, fold_with_valid
from .splits import Fold

PREFIX = "emobox:"


def dataset_dir(meta: Path, dataset: str) -> Path:
    for candidate in (meta / dataset, meta / "data" / dataset):
        if (candidate / "label_map.json").is_file():
            return candidate
    raise CorpusError(f"--emobox-meta: {meta} holds no {dataset}/label_map.json (nor data/{dataset}/); "
                      "pass an EmoBox checkout or its data/ folder")


def _entries(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as error:
        raise CorpusError(f"{path}: not readable EmoBox metadata ({error})") from None


def _label(label_map: dict[str, str], emo: str, where: str) -> str:
    if emo in label_map:
        return label_map[emo].lower()
    folded = {k.lower(): v for k, v in label_map.items()}  # EmoDB's map says Neutral where its jsonl says neutral
    if emo.lower() in folded:
        return folded[emo.lower()].lower()
    raise CorpusError(f"{where}: emotion {emo!r} is not in the dataset's label_map.json ({', '.join(label_map)})")


@register_namespace("emobox")
def read_emobox(dataset: str, root: Path, options: CorpusOptions) -> Corpus:
    if options.emobox_meta is None:
        raise CorpusError(f"--corpus {PREFIX}{dataset} needs --emobox-meta DIR (an EmoBox checkout or its data/ folder)")
    folder = dataset_dir(options.emobox_meta, dataset)
    try:
        label_map = json.loads((folder / "label_map.json").read_text(encoding="utf-8"))
        assert isinstance(label_map, dict)
    except (OSError, ValueError, AssertionError):
        raise CorpusError(f"{folder / 'label_map.json'}: not a JSON object mapping emotions to classes") from None
    classes = tuple(sorted({v.lower() for v in label_map.values()}))
    fold_dirs = sorted((d for d in folder.glob("fold_*") if d.is_dir() and d.name[5:].isdigit()),
                       key=lambda d: int(d.name[5:]))
    if not fold_dirs:
        raise CorpusError(f"{folder}: no fold_<k> folders")
    roles: dict[int, dict[str, str]] = {}
    entries: dict[str, dict] = {}
    for fold_dir in fold_dirs:
        k = int(fold_dir.name.split("_")[1])
        roles[k] = {}
        for role in ("train", "test"):
            path = fold_dir / f"{dataset}_{role}_fold_{k}.jsonl"
            for number, entry in enumerate(_entries(path), 1):
                missing_fields = [f for f in ("key", "wav", "emo") if f not in entry]
                if missing_fields:
                    raise CorpusError(f"{path}:{number}: no {', '.join(missing_fields)} in the entry; expected EmoBox's "
                                      "key, wav and emo fields")
                entries.setdefault(entry["key"], entry | {"_from": str(path)})
                roles[k][entry["key"]] = role
    by_name: dict[str, Path] | None = None
    utterances, missing = [], []
    for key in sorted(entries):
        entry = entries[key]
        relative = entry["wav"].removeprefix(f"downloads/{dataset}/")
        path = root / relative
        if not path.is_file():
            if by_name is None:
                by_name = {p.name: p for p in sorted(root.rglob("*")) if p.is_file()}
            path = by_name.get(Path(relative).name, path)
        if not path.is_file():
            missing.append(relative)
            continue
        label = _label(label_map, str(entry["emo"]), f"{entry['_from']} ({key})")
        meta = soundfile.info(str(path))
        utterances.append(Utterance(key, path, label, 0, "", "", "", meta.frames / meta.samplerate, classes.index(label),
                                    sample_rate=int(meta.samplerate)))
    if missing and (options.strict if options.strict is not None else True):
        raise CorpusError(f"{root}: {len(missing)} of the {len(entries)} files that EmoBox's {dataset} folds list are "
                          f"not there (first: {first_names(missing)}); pass --no-strict to run without them")
    if options.verbose:
        print(f"{PREFIX}{dataset}: {len(utterances)} utterances of {len(classes)} classes, {len(roles)} fold(s)"
              + (f"; {len(missing)} listed files missing, left out" if missing else ""))
    info = CorpusInfo(f"{PREFIX}{dataset}", classes, len(roles), len(entries), "see the dataset's own licence",
                      "the dataset's own distribution (EmoBox lists where)", f"the {dataset} audio, as EmoBox's downloads/{dataset}/")
    return Corpus(info, classes, tuple(utterances), tuple(_folds(utterances, roles, info)))


def _folds(utterances: list[Utterance], roles: dict[int, dict[str, str]], info: CorpusInfo) -> list[Fold]:
    return [fold_with_valid(k, [u for u in utterances if fold_roles.get(u.id) == "test"],
                            [u for u in utterances if fold_roles.get(u.id) == "train"], utterances, info.name)
            for k, fold_roles in sorted(roles.items())]
