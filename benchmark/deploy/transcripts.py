"""Transcripts for models with a text branch: a CSV of file,text, matched to the audio files by
path, file name or stem, with no silent choice between rows."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence


def read_transcripts(path: Path) -> dict[str, str]:
    """A CSV with columns `file` and `text`; `file` is a path, a file name or a name without suffix."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"file", "text"} <= set(reader.fieldnames):
                raise ValueError(f"--transcripts: {path}: expected a header with columns file,text, "
                                 f"got {reader.fieldnames}")
            return {row["file"]: row["text"] or "" for row in reader}
    except OSError as error:
        raise FileNotFoundError(f"--transcripts: {path}: cannot read ({error.strerror})") from None


def _keys(path: Path) -> list[str]:
    """The transcript keys that name `path`: as given, absolute, its file name, its stem."""
    return list(dict.fromkeys((str(path), str(path.resolve()), path.name, path.stem)))


def transcript_for(transcripts: dict[str, str], path: Path) -> str | None:
    for key in _keys(path):
        if key in transcripts:
            return transcripts[key]
    return None


def check_transcript_keys(transcripts: dict[str, str], files: Sequence[Path]) -> None:
    """No silent choice: a key that names several of the files, or a file named by several keys, is an
    error naming them."""
    named: dict[str, list[Path]] = {}
    for path in files:
        keys = [key for key in _keys(path) if key in transcripts]
        if len(keys) > 1:
            raise ValueError(f"--transcripts: {path} is named by several rows ({', '.join(map(repr, keys))}); "
                             "keep one row per file")
        for key in keys:
            named.setdefault(key, []).append(path)
    for key, paths in named.items():
        if len(paths) > 1:
            raise ValueError(f"--transcripts: {key!r} names several files ({', '.join(map(str, paths[:3]))}"
                             f"{' ...' if len(paths) > 3 else ''}); use their paths as keys")
