"""MSP-Podcast (UT Dallas; academic licence) read from its release folder: `Labels/labels_consensus.csv`
and `Audios/` (`Audio/` in older releases).

`labels_consensus.csv` gives per file its consensus class (`EmoClass`: N, H, S, A, U, C, D, F; O
"other" and X "no agreement" are not used), its attributes (`EmoAct`, `EmoVal`, `EmoDom`, 1–7, kept
on each utterance for the dimensional task), speaker, gender and `Split_Set`. The release's own
partition is the folds: train = Train, valid = Development, and one fold per test set (Test1, Test2,
and Test3 where the release has it). `--labels` chooses the classes (e.g. the usual four:
`neutral,happy,sad,angry`); by default all eight categorical classes are used.
"""
from __future__ import annotations

import csv
from pathlib import Path

import soundfile

from .corpus import Corpus, CorpusInfo, CorpusOptions, register_corpus
from .iemocap import NO_CLASS, CorpusError, Utterance
from .partitioned import first_names
from .splits import Fold, split_hash

CLASSES = {"N": "neutral", "H": "happy", "S": "sad", "A": "angry", "U": "surprise", "C": "contempt",
           "D": "disgust", "F": "fear"}
INFO = CorpusInfo(
    "msp_podcast", tuple(CLASSES.values()), 2, 0, "academic licence (UT Dallas, on request)",
    "https://ecs.utdallas.edu/research/researchlabs/msp-lab/MSP-Podcast.html",
    "the release folder (Labels/labels_consensus.csv, Audios/)")
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
TEST_SETS = ("Test1", "Test2", "Test3")


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
            rows = list(reader)
    except OSError as error:
        raise CorpusError(f"{path}: cannot read ({error.strerror}); expected {INFO.layout}") from None
    for number, row in enumerate(rows, start=2):
        if any(row.get(c) is None for c in COLUMNS):
            raise CorpusError(f"{path}:{number}: the row has fewer fields than the header ({', '.join(COLUMNS)})")
    return rows


def _attributes(row: dict[str, str], where: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(row[c]) for c in ("EmoAct", "EmoVal", "EmoDom"))
    except ValueError:
        raise CorpusError(f"{where}: EmoAct/EmoVal/EmoDom must be numbers, got "
                          f"{row['EmoAct']!r}, {row['EmoVal']!r}, {row['EmoDom']!r}") from None
    return values  # type: ignore[return-value]


@register_corpus(INFO)
def read_msp_podcast(root: Path, options: CorpusOptions) -> Corpus:
    labels_file = root / "Labels" / "labels_consensus.csv"
    audio_dir = next((d for d in (root / "Audios", root / "Audio") if d.is_dir()), root / "Audios")
    utterances, parts, missing = [], {}, []
    for number, row in enumerate(_rows(labels_file), start=2):
        code, split = row["EmoClass"].strip(), row["Split_Set"].strip()
        if (code not in CLASSES and not options.every_rated) or split not in ("Train", "Development", *TEST_SETS):
            continue  # other / no agreement (kept for the dimensional task), or a split this reader does not use
        path = audio_dir / row["FileName"]
        if not path.is_file():
            missing.append(row["FileName"])
            continue
        meta = soundfile.info(str(path))
        label = CLASSES.get(code, f"class {code}")
        utterance = Utterance(Path(row["FileName"]).stem, path, label, 0, row["SpkrID"].strip(),
                              row["Gender"].strip()[:1].upper(), "", meta.frames / meta.samplerate,
                              INFO.classes.index(label) if code in CLASSES else NO_CLASS,
                              _attributes(row, f"{labels_file}:{number}"),
                              int(meta.samplerate), (1.0, 7.0))
        utterances.append(utterance)
        parts[utterance.id] = split
    if missing and (options.strict if options.strict is not None else True):
        raise CorpusError(f"{audio_dir}: {len(missing)} files that labels_consensus.csv lists are not there "
                          f"(first: {first_names(missing)}); pass --no-strict to run without them")
    tests = [t for t in TEST_SETS if t in parts.values()]
    if not tests:
        raise CorpusError(f"{labels_file}: no utterance of a test set ({', '.join(TEST_SETS)}) in Split_Set")
    if options.verbose:
        print(f"msp_podcast reader: {len(utterances)} utterances of {len(CLASSES)} classes in {root}"
              + (f"; {len(missing)} listed files missing, left out" if missing else ""))
    folds = []
    for index, test_set in enumerate(tests, start=1):
        roles = {uid: {"Train": "train", "Development": "valid", test_set: "test"}.get(split, "")
                 for uid, split in parts.items()}
        roles = {uid: role for uid, role in roles.items() if role}
        members = {r: tuple(u for u in utterances if roles.get(u.id) == r) for r in ("train", "valid", "test")}
        if not all(members.values()):
            raise CorpusError(f"{labels_file}: the Train, Development or {test_set} part is empty")
        folds.append(Fold(index, members["train"], members["valid"], members["test"], f"msp_{test_set.lower()}",
                          split_hash(roles)))
    info = CorpusInfo(INFO.name, INFO.classes, len(folds), len(utterances), INFO.licence, INFO.obtain, INFO.layout)
    return Corpus(info, INFO.classes, tuple(utterances), tuple(folds))
