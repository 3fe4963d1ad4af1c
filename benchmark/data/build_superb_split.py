"""Build `superb_split.csv` from the per-fold metadata that SUPERB's emotion recipe ships.

Usage: python -m benchmark.data.build_superb_split DIR  (DIR holds Session{1..5}/{train,test}_meta_data.json)
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from .iemocap import SESSIONS
from .splits import SUPERB_SPLIT_FILE, superb_train_valid


def utterance_id(meta_path: str) -> str:
    return Path(meta_path).stem


def build(meta_dir: Path, out_file: Path = SUPERB_SPLIT_FILE) -> None:
    def entries(session: int, part: str) -> list[dict]:
        return json.loads((meta_dir / f"Session{session}" / f"{part}_meta_data.json").read_text())["meta_data"]

    # SUPERB's fold-k train list is the other sessions' test lists, concatenated in session order
    order = [e for k in SESSIONS for e in entries(k, "test")]
    roles: dict[str, list[str]] = {utterance_id(e["path"]): [] for e in order}
    for k in SESSIONS:
        pool = [utterance_id(e["path"]) for e in entries(k, "train")]
        train, valid = superb_train_valid(pool)
        assignment = {**{u: "train" for u in train}, **{u: "valid" for u in valid}}
        for e in entries(k, "test"):
            assignment[utterance_id(e["path"])] = "test"
        for uid in roles:
            roles[uid].append(assignment[uid])
    tmp = out_file.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["utterance_id", "label", *(f"fold{k}" for k in SESSIONS)])
        for entry in order:
            uid = utterance_id(entry["path"])
            writer.writerow([uid, entry["label"], *roles[uid]])
    tmp.replace(out_file)
    print(f"wrote {out_file} ({len(order)} utterances)")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
