"""Fingerprints of the data a result was computed on: which files (ids, sizes, modification times,
transcripts) and, for a fold, which utterance plays which role with which label.

They are cheap (file metadata, no audio decoding), so a report can check the data it points at
before reading any result. A re-synthesised, edited or copied-without-timestamps file changes them.
"""
from __future__ import annotations

import hashlib
import json
from typing import Sequence

from .iemocap import Utterance
from .splits import Fold


def data_fingerprint(utterances: Sequence[Utterance]) -> str:
    """Ids, sizes and modification times of the audio, and the transcripts (sha256 hex)."""
    digest = hashlib.sha256()
    for u in sorted(utterances, key=lambda u: u.id):
        stat = u.path.stat()
        digest.update(f"{u.id}|{stat.st_size}|{stat.st_mtime_ns}|{u.text}\n".encode())
    return digest.hexdigest()


def fold_fingerprint(fold: Fold) -> str:
    """The fold's data as a unit trained on it sees it: split, roles, labels and the files' fingerprints."""
    parts = {role: {"ids": [[u.id, u.label] for u in members], "files": data_fingerprint(members)}
             for role, members in (("train", fold.train), ("valid", fold.valid), ("test", fold.test))}
    payload = {"fold": fold.index, "split": fold.split, "split_hash": fold.split_hash, **parts}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
