"""A full-size IEMOCAP-format tree for sizing runs (`--estimate`): real layout, no audio content.

The 5531 utterance ids and labels of the 4-class benchmark come from the split file we ship
(`benchmark/data/superb_split.csv`); durations are drawn log-normal (mean 4.5 s, clipped to
0.6–35 s: about 7 h, as IEMOCAP's 4-class set); each wav is a valid 16-bit header with a *sparse*
data chunk of that many samples, so the tree costs a few MB on disk while every reader sees its
true length. Transcripts hold 2.5 words per second.

    python -m bench.full_size_tree /tmp/full/IEMOCAP_full_release
    python run_benchmark.py --table 1 --profile paper --data /tmp/full/IEMOCAP_full_release --estimate
"""
from __future__ import annotations

import argparse
import csv
import struct
from pathlib import Path

import numpy as np

from benchmark.data.splits import SUPERB_SPLIT_FILE

SAMPLE_RATE = 16_000
MEAN_SECONDS, SIGMA = 4.5, 0.6


def write_sparse_wav(path: Path, samples: int) -> None:
    """A PCM16 mono wav header announcing `samples` samples, the data left as a hole in the file."""
    data = 2 * samples
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16) + b"data" + struct.pack("<I", data)
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + data)


def write_full_size_tree(root: Path, seed: int = 0) -> Path:
    with SUPERB_SPLIT_FILE.open(newline="") as handle:
        rows = [(row["utterance_id"], row["label"]) for row in csv.DictReader(handle)]
    rng = np.random.default_rng(seed)
    mu = np.log(MEAN_SECONDS) - SIGMA**2 / 2
    seconds = np.clip(rng.lognormal(mu, SIGMA, len(rows)), 0.6, 35.0)
    dialogs: dict[str, list[tuple[str, str, float]]] = {}
    for (utterance_id, label), duration in zip(rows, seconds):
        dialogs.setdefault(utterance_id.rsplit("_", 1)[0], []).append((utterance_id, label, float(duration)))
    for dialog, turns in dialogs.items():
        session_dir = root / f"Session{int(dialog[3:5])}"
        wav_dir = session_dir / "sentences" / "wav" / dialog
        wav_dir.mkdir(parents=True, exist_ok=True)
        labels, transcript, start = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""], [], 1.0
        for utterance_id, label, duration in turns:
            end = start + duration
            labels += [f"[{start:.4f} - {end:.4f}]\t{utterance_id}\t{'exc' if label == 'hap' else label}\t"
                       "[2.5000, 3.0000, 2.5000]", ""]
            transcript.append(f"{utterance_id} [{start:08.4f}-{end:08.4f}]: " + " ".join(["word"] * max(1, round(2.5 * duration))))
            write_sparse_wav(wav_dir / f"{utterance_id}.wav", round(duration * SAMPLE_RATE))
            start = end + 0.5
        for sub, lines in (("EmoEvaluation", labels), ("transcriptions", transcript)):
            folder = session_dir / "dialog" / sub
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
    (root / "Documentation").mkdir(parents=True, exist_ok=True)  # looks like the official release: strict reading
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder to create, e.g. /tmp/full/IEMOCAP_full_release")
    parser.add_argument("--seed", type=int, default=0)
    root = write_full_size_tree(parser.parse_args().root)
    print(root)


if __name__ == "__main__":
    main()
