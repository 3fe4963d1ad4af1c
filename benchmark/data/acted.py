"""Acted emotion corpora read as their official downloads unpack, with EmoBox's published folds:
RAVDESS (speech), CREMA-D, EmoDB, SAVEE and TESS. Each names the emotion in its file names; the
recipes below read label, speaker and gender from them (`partitioned` does the rest). Label names are
the canonical lower-case ones (neutral, happy, angry, sad, ...) that cross-corpus mapping uses.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from .corpus import Corpus, CorpusInfo, CorpusOptions, register_corpus
from .partitioned import FileLabel, read_partitioned

RAVDESS = CorpusInfo(
    "ravdess", ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"), 6, 1440,
    "CC BY-NC-SA 4.0", "https://zenodo.org/records/1188976 (Audio_Speech_Actors_01-24.zip)",
    "the folder Audio_Speech_Actors_01-24.zip unpacks into (Actor_01 … Actor_24)")
CREMAD = CorpusInfo(
    "cremad", ("angry", "disgust", "fear", "happy", "neutral", "sad"), 1, 7442, "ODbL 1.0",
    "https://github.com/CheyneyComputerScience/CREMA-D (AudioWAV/, VideoDemographics.csv)",
    "the CREMA-D checkout (AudioWAV/1001_DFA_ANG_XX.wav …)")
EMODB = CorpusInfo(
    "emodb", ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"), 5, 535, "CC BY 4.0 (emodb.bilderbar.info)",
    "http://emodb.bilderbar.info/download/ (download.zip)", "the folder download.zip unpacks into (wav/03a01Fa.wav …)")
SAVEE = CorpusInfo(
    "savee", ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"), 4, 480,
    "free for research (University of Surrey, registration)", "http://kahlan.eps.surrey.ac.uk/savee/ (AudioData)",
    "the SAVEE folder (AudioData/DC/a01.wav …, or the flat DC_a01.wav layout)")
TESS = CorpusInfo(
    "tess", ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"), 1, 2800, "CC BY-NC-ND 4.0",
    "https://doi.org/10.5683/SP2/E8H2MF (University of Toronto Dataverse)",
    "the 'TESS Toronto emotional speech set data' folder (OAF_angry/OAF_back_angry.wav …)")

_RAVDESS_CODES = dict(zip(("01", "02", "03", "04", "05", "06", "07", "08"), RAVDESS.classes))
_RAVDESS_NAME = re.compile(r"^03-01-(0[1-8])-0[12]-0[12]-0[12]-(\d\d)\.wav$")
_CREMAD_CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMAD_NAME = re.compile(r"^(\d{4})_[A-Z]{3}_([A-Z]{3})_[A-Z]{1,2}\.wav$")
_EMODB_CODES = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "N": "neutral", "T": "sad"}
_EMODB_NAME = re.compile(r"^(\d\d)[a-z]\d\d([WLEAFNT])[a-z]\.wav$")
_EMODB_FEMALE = {"08", "09", "13", "14", "16"}  # the corpus documentation's speaker list
_SAVEE_CODES = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}
_SAVEE_NAME = re.compile(r"^(?:(DC|JE|JK|KL)_)?(a|d|f|h|n|sa|su)(\d\d)\.wav$")
_TESS_CODES = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
               "ps": "surprise", "sad": "sad"}
_TESS_NAME = re.compile(r"^(OAF|YAF)_([a-z]+)_([a-z]+)\.wav$", re.IGNORECASE)


@register_corpus(RAVDESS)
def read_ravdess(root: Path, options: CorpusOptions) -> Corpus:
    """Speech files 03-01-EE-II-SS-RR-AA.wav: EE emotion, AA actor (odd: male, even: female)."""
    def parse(path: Path) -> FileLabel | None:
        match = _RAVDESS_NAME.match(path.name)
        if match is None:
            return None
        actor = int(match.group(2))
        return FileLabel(path.name, _RAVDESS_CODES[match.group(1)], f"Actor_{actor:02d}", "M" if actor % 2 else "F")
    return read_partitioned(root, RAVDESS, parse, options)


def _cremad_genders(root: Path) -> dict[str, str]:
    """ActorID → M/F from VideoDemographics.csv when the checkout has it."""
    table = next(iter(sorted(root.rglob("VideoDemographics.csv"))), None)
    if table is None:
        return {}
    with table.open(newline="", encoding="utf-8-sig") as handle:
        return {row["ActorID"]: {"Male": "M", "Female": "F"}.get(row.get("Sex", ""), "")
                for row in csv.DictReader(handle) if row.get("ActorID")}


@register_corpus(CREMAD)
def read_cremad(root: Path, options: CorpusOptions) -> Corpus:
    """AudioWAV/AAAA_SSS_EEE_LL.wav: actor, sentence, emotion, level."""
    genders = _cremad_genders(root)

    def parse(path: Path) -> FileLabel | None:
        match = _CREMAD_NAME.match(path.name)
        if match is None:
            return None
        return FileLabel(path.name, _CREMAD_CODES[match.group(2)], match.group(1), genders.get(match.group(1), ""))
    return read_partitioned(root, CREMAD, parse, options)


@register_corpus(EMODB)
def read_emodb(root: Path, options: CorpusOptions) -> Corpus:
    """wav/SSTTTEV.wav: speaker, text, emotion letter (German initials), version."""
    def parse(path: Path) -> FileLabel | None:
        match = _EMODB_NAME.match(path.name)
        if match is None:
            return None
        speaker = match.group(1)
        return FileLabel(path.name, _EMODB_CODES[match.group(2)], speaker, "F" if speaker in _EMODB_FEMALE else "M")
    return read_partitioned(root, EMODB, parse, options)


@register_corpus(SAVEE)
def read_savee(root: Path, options: CorpusOptions) -> Corpus:
    """AudioData/<speaker>/<emotion code><nn>.wav (four male speakers); the partition names DC_a01.wav."""
    def parse(path: Path) -> FileLabel | None:
        match = _SAVEE_NAME.match(path.name)
        speaker = (match.group(1) or path.parent.name) if match else ""
        if match is None or speaker not in ("DC", "JE", "JK", "KL"):
            return None
        return FileLabel(f"{speaker}_{match.group(2)}{match.group(3)}.wav", _SAVEE_CODES[match.group(2)], speaker, "M")
    return read_partitioned(root, SAVEE, parse, options)


@register_corpus(TESS)
def read_tess(root: Path, options: CorpusOptions) -> Corpus:
    """<speaker>_<word>_<emotion>.wav, two female speakers (OAF, YAF); "ps" is pleasant surprise."""
    def parse(path: Path) -> FileLabel | None:
        match = _TESS_NAME.match(path.name)
        if match is None or match.group(3).lower() not in _TESS_CODES:
            return None
        speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
        return FileLabel(f"{speaker}_{word}_{emotion}.wav", _TESS_CODES[emotion], speaker, "F")
    return read_partitioned(root, TESS, parse, options)
