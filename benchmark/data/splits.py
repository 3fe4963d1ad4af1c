"""Leave-one-session-out folds with SUPERB's train/valid split.

SUPERB's emotion recipe lists, for fold k, the utterances of the four other sessions in the order of
its metadata files, then draws `random_split(lengths=[int(0.8 N), N - int(0.8 N)])` after
`torch.manual_seed(0)`. `superb_split.csv` (built by `benchmark.data.build_superb_split` from the
metadata SUPERB ships) keeps that order and the resulting role of each utterance in each fold, so the
exact split is reproduced without SUPERB's files. Corpora that are not the complete IEMOCAP release
(e.g. the demo corpus) get the same procedure applied to their own utterances, ordered by id.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal, Sequence

import torch

from .iemocap import SESSIONS, Utterance

SUPERB_SPLIT_FILE = Path(__file__).with_name("superb_split.csv")
VALID_RATIO = 0.2
SplitMethod = Literal["superb", "speaker"]
SPLIT_METHODS: tuple[str, ...] = ("superb", "speaker")


@dataclass(frozen=True)
class Fold:
    """Fold k tests on Session k; `split` names how train/valid were drawn, `split_hash` pins them."""

    index: int
    train: tuple[Utterance, ...]
    valid: tuple[Utterance, ...]
    test: tuple[Utterance, ...]
    split: str
    split_hash: str


def superb_train_valid(pool: Sequence[str]) -> tuple[list[str], list[str]]:
    """SUPERB's draw: a permutation from a generator seeded with 0, first int(0.8 N) are train."""
    n_train = int((1 - VALID_RATIO) * len(pool))
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(0)).tolist()
    return [pool[i] for i in order[:n_train]], [pool[i] for i in order[n_train:]]


@lru_cache(maxsize=1)
def shipped_superb_roles() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(utterance ids in SUPERB's metadata order, id → role in folds 1..5)."""
    with SUPERB_SPLIT_FILE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = tuple(row["utterance_id"] for row in rows)
    roles = {row["utterance_id"]: tuple(row[f"fold{k}"] for k in SESSIONS) for row in rows}
    return order, roles


def _session(utterance_id: str) -> int:
    return int(utterance_id[3:5])


def _roles_by_procedure(ordered_ids: Sequence[str], fold: int) -> dict[str, str]:
    roles = {uid: "test" for uid in ordered_ids if _session(uid) == fold}
    train, valid = superb_train_valid([uid for uid in ordered_ids if _session(uid) != fold])
    roles.update({uid: "train" for uid in train})
    roles.update({uid: "valid" for uid in valid})
    return roles


def _roles_speaker_disjoint(utterances: Sequence[Utterance], fold: int) -> dict[str, str]:
    """Valid = both speakers of the next session, so no speaker is shared by train and valid."""
    valid_session = fold % len(SESSIONS) + 1
    return {
        u.id: "test" if u.session == fold else "valid" if u.session == valid_session else "train"
        for u in utterances
    }


def split_hash(roles: dict[str, str]) -> str:
    text = "\n".join(f"{uid}\t{role}" for uid, role in sorted(roles.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def folds(
    utterances: Sequence[Utterance], method: SplitMethod = "superb", indices: Iterable[int] = SESSIONS
) -> list[Fold]:
    """The requested leave-one-session-out folds (fold k tests on Session k)."""
    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split method {method!r}; expected one of {', '.join(SPLIT_METHODS)}")
    by_id = {u.id: u for u in utterances}
    order, shipped = shipped_superb_roles()
    exact = method == "superb" and set(by_id) == set(order)
    name = "superb" if exact else "superb_procedure" if method == "superb" else "speaker_disjoint"
    result = []
    for k in indices:
        if k not in SESSIONS:
            raise ValueError(f"fold {k} does not exist; IEMOCAP has folds {SESSIONS[0]}..{SESSIONS[-1]}")
        if exact:
            roles = {uid: shipped[uid][k - 1] for uid in order}
        elif method == "superb":
            roles = _roles_by_procedure(sorted(by_id), k)
        else:
            roles = _roles_speaker_disjoint(utterances, k)
        parts = {role: tuple(by_id[uid] for uid in sorted(roles) if roles[uid] == role) for role in ("train", "valid", "test")}
        if not all(parts.values()):
            empty = [role for role, members in parts.items() if not members]
            raise ValueError(f"fold {k}: the {'/'.join(empty)} part is empty; the corpus is too small")
        result.append(Fold(k, parts["train"], parts["valid"], parts["test"], name, split_hash(roles)))
    return result
