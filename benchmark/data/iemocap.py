"""IEMOCAP recipe: a pure function from an `IEMOCAP_full_release` folder to labelled utterances.

Four classes as in SUPERB and Morais et al. (2022): excited is merged into happy, every other label
(frustrated, surprised, fear, disgust, other, no agreement) is dropped.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import soundfile

LABELS: tuple[str, ...] = ("neu", "hap", "ang", "sad")
LABEL_INDEX: dict[str, int] = {name: index for index, name in enumerate(LABELS)}
NO_CLASS = -2  # label_index of an utterance outside the label set, kept for its attributes
_RAW_TO_LABEL = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
SESSIONS: tuple[int, ...] = (1, 2, 3, 4, 5)
OFFICIAL_COUNTS: dict[str, int] = {"neu": 1708, "hap": 1636, "ang": 1103, "sad": 1084}

_TURN = re.compile(r"^\[(\d+(?:\.\d+)?) - (\d+(?:\.\d+)?)\]\t(\S+)\t(\w+)\t\[(.*)\]\s*$")
_UTTERANCE_ID = re.compile(r"^Ses(\d\d)[FM]_\w+_([FM])\w*$")
_TRANSCRIPT = re.compile(r"^(Ses\S+) \[[\d.]+-[\d.]+\]:\s?(.*)$")


class CorpusError(ValueError):
    """The corpus folder does not hold what the IEMOCAP layout promises; the message says where."""


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    label: str
    session: int
    speaker: str  # e.g. "Ses01F": session + the gender letter of the utterance's own suffix
    gender: str
    text: str
    duration: float  # seconds
    label_index: int = -1  # position of `label` in its corpus' label set; -1: IEMOCAP's (`LABELS`)
    attributes: tuple[float, float, float] | None = None  # arousal, valence, dominance, on the corpus' scale
    sample_rate: int = 16_000  # of the file as stored (it is read at 16 kHz, resampled once when loaded)
    attribute_range: tuple[float, float] = (1.0, 5.0)  # the corpus' rating scale (IEMOCAP 1–5, MSP-Podcast 1–7)

    @property
    def scaled_attributes(self) -> tuple[float, float, float]:
        """The attributes mapped from the corpus' scale onto [0, 1] (the regression targets)."""
        if self.attributes is None:
            raise ValueError(f"{self.id}: no arousal/valence/dominance ratings; the dimensional task needs them")
        low, high = self.attribute_range
        return tuple((value - low) / (high - low) for value in self.attributes)  # type: ignore[return-value]

    def __post_init__(self) -> None:
        if self.label_index == NO_CLASS:  # kept for its attributes only (the dimensional task)
            return
        if self.label_index < 0:
            if self.label not in LABEL_INDEX:
                raise ValueError(f"{self.id}: label {self.label!r} is not one of IEMOCAP's {', '.join(LABELS)}; "
                                 "a recipe of another corpus gives each utterance its label_index")
            object.__setattr__(self, "label_index", LABEL_INDEX[self.label])


def looks_official(corpus_dir: Path) -> bool:
    """The complete release ships a Documentation folder and is usually named IEMOCAP_full_release."""
    return corpus_dir.name == "IEMOCAP_full_release" or (corpus_dir / "Documentation").is_dir()


def _visible_files(folder: Path, suffix: str) -> list[Path]:
    """Files of `folder` with `suffix`, skipping macOS resource forks (`._*`)."""
    return sorted(p for p in folder.glob(f"*{suffix}") if p.is_file() and not p.name.startswith("._"))


def _attributes(text: str, where: str) -> tuple[float, float, float]:
    """The turn line's `[V, A, D]` (valence, activation, dominance; 1–5) as (arousal, valence, dominance)."""
    try:
        valence, arousal, dominance = (float(part) for part in text.split(","))
    except ValueError:
        raise CorpusError(f"{where}: malformed [V, A, D] [{text[:40]}]; expected three numbers, "
                          "e.g. [2.5000, 3.0000, 2.5000]") from None
    return arousal, valence, dominance


def _read_turns(label_file: Path, session: int) -> list[tuple[str, str, tuple[float, float, float]]]:
    """(utterance id, raw label, attributes) of every turn line; annotator and header lines are skipped."""
    turns = []
    for number, line in enumerate(label_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.startswith("["):
            continue
        match = _TURN.match(line)
        if match is None:
            raise CorpusError(
                f"{label_file}:{number}: malformed turn line {line.strip()[:80]!r}; expected "
                "'[START - END]<TAB>UTTERANCE_ID<TAB>LABEL<TAB>[V, A, D]'"
            )
        utterance_id, raw_label = match.group(3), match.group(4)
        id_match = _UTTERANCE_ID.match(utterance_id)
        if id_match is None or int(id_match.group(1)) != session:
            raise CorpusError(
                f"{label_file}:{number}: utterance id {utterance_id!r} is not of the form "
                f"Ses{session:02d}<F|M>_<dialog>_<F|M><NNN> of Session{session}"
            )
        turns.append((utterance_id, raw_label, _attributes(match.group(5), f"{label_file}:{number}")))
    return turns


def _read_transcripts(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    if folder.is_dir():
        for path in _visible_files(folder, ".txt"):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                match = _TRANSCRIPT.match(line.strip())
                if match:
                    texts[match.group(1)] = match.group(2).strip()
    return texts


def _duration(wav: Path) -> float:
    try:
        info = soundfile.info(str(wav))
    except Exception as error:  # soundfile raises several types for unreadable files
        raise CorpusError(f"{wav}: unreadable wav ({str(error).splitlines()[0]})") from None
    if info.frames == 0:
        raise CorpusError(f"{wav}: empty wav (0 samples); expected speech audio")
    return info.frames / info.samplerate


def _load_session(corpus_dir: Path, session: int, every_turn: bool = False) -> list[Utterance]:
    session_dir = corpus_dir / f"Session{session}"
    label_dir = session_dir / "dialog" / "EmoEvaluation"
    label_files = _visible_files(label_dir, ".txt") if label_dir.is_dir() else []
    if not label_files:
        raise CorpusError(f"{label_dir}: no EmoEvaluation label files (<dialog>.txt) found")
    texts = _read_transcripts(session_dir / "dialog" / "transcriptions")
    utterances = []
    for label_file in label_files:
        for utterance_id, raw_label, attributes in _read_turns(label_file, session):
            label = _RAW_TO_LABEL.get(raw_label)
            if label is None and not every_turn:
                continue
            dialog = utterance_id.rsplit("_", 1)[0]
            wav = session_dir / "sentences" / "wav" / dialog / f"{utterance_id}.wav"
            if not wav.is_file():
                raise CorpusError(f"{wav}: wav missing for utterance labelled in {label_file}")
            gender = utterance_id.rsplit("_", 1)[1][0]
            utterances.append(
                Utterance(
                    id=utterance_id,
                    path=wav,
                    label=label or raw_label,
                    session=session,
                    speaker=f"Ses{session:02d}{gender}",
                    gender=gender,
                    text=texts.get(utterance_id, ""),
                    duration=_duration(wav),
                    attributes=attributes,
                    label_index=-1 if label else NO_CLASS,
                )
            )
    return utterances


def class_counts(utterances: list[Utterance]) -> dict[str, int]:
    counts = Counter(u.label for u in utterances)
    return {label: counts.get(label, 0) for label in LABELS}


def load(corpus_dir: Path | str, strict: bool | None = None, verbose: bool = True,
         every_turn: bool = False) -> list[Utterance]:
    """Every 4-class utterance of the corpus, sorted by id; with `every_turn` (the dimensional task)
    every rated turn, those outside the four classes with their raw label and `label_index` NO_CLASS.

    strict (default: on when the folder looks like the official release) requires exactly the 5531
    4-class utterances of the complete release, so a partial copy is never benchmarked silently.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus folder does not exist; expected an IEMOCAP_full_release folder")
    present = sorted(p.name for p in corpus_dir.glob("Session*") if p.is_dir())
    if not present:
        raise CorpusError(f"{corpus_dir}: no Session* folders; expected Session1 … Session5 of IEMOCAP")
    missing = [f"Session{k}" for k in SESSIONS if f"Session{k}" not in present]
    if missing:
        raise CorpusError(f"{corpus_dir}: missing {', '.join(missing)}; expected Session1 … Session5")
    utterances = sorted(
        (u for session in SESSIONS for u in _load_session(corpus_dir, session, every_turn)), key=lambda u: u.id
    )
    duplicates = [uid for uid, n in Counter(u.id for u in utterances).items() if n > 1]
    if duplicates:
        raise CorpusError(f"{corpus_dir}: utterance {duplicates[0]} is labelled more than once")
    counts = class_counts(utterances)
    no_text = sum(1 for u in utterances if not u.text)
    if verbose:
        summary = ", ".join(f"{label} {n}" for label, n in counts.items())
        others = sum(1 for u in utterances if u.label_index == NO_CLASS)
        note = (f"; {no_text} without transcript" if no_text else "") + (
            f"; {others} rated turns outside the four classes" if others else "")
        print(f"IEMOCAP reader: {len(utterances)} utterances ({summary}) in {corpus_dir}{note}")
    if strict if strict is not None else looks_official(corpus_dir):
        if counts != OFFICIAL_COUNTS:
            expected = ", ".join(f"{label} {n}" for label, n in OFFICIAL_COUNTS.items())
            raise CorpusError(
                f"{corpus_dir}: found {len(utterances)} utterances, the complete release has 5531 "
                f"({expected}); is the copy partial? (pass strict=False / --no-strict to use it anyway)"
            )
    return utterances
