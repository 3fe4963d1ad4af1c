"""Builders of small IEMOCAP-format trees for tests (hand-made layout, synthetic tones as audio)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

SR = 16_000
# class → (base frequency Hz, amplitude): separable by pitch and loudness, so fbank features learn it
TONE = {"neu": (180.0, 0.10), "hap": (320.0, 0.20), "exc": (340.0, 0.22), "ang": (260.0, 0.45),
        "sad": (120.0, 0.05), "fru": (200.0, 0.3), "xxx": (150.0, 0.1), "sur": (400.0, 0.3),
        "dis": (230.0, 0.25)}


@dataclass(frozen=True)
class Turn:
    utterance_id: str
    label: str
    text: str
    seconds: float = 1.0
    vad: tuple[float, float, float] = (2.5, 3.0, 2.5)  # the label line's [V, A, D]


def tone(label: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    frequency, amplitude = TONE[label]
    frequency *= rng.uniform(0.9, 1.1)
    t = np.arange(int(seconds * SR)) / SR
    wave = amplitude * np.sin(2 * np.pi * frequency * t) + 0.5 * amplitude * np.sin(4 * np.pi * frequency * t)
    return (wave + rng.normal(0, 0.01, t.shape)).astype(np.float32)


def write_tree(root: Path, turns: list[Turn], seed: int = 0, annotator_lines: bool = True) -> Path:
    """Write EmoEvaluation, transcriptions and wavs for `turns` (grouped by dialog) under `root`."""
    rng = np.random.default_rng(seed)
    dialogs: dict[str, list[Turn]] = {}
    for turn in turns:
        dialogs.setdefault(turn.utterance_id.rsplit("_", 1)[0], []).append(turn)
    for dialog, members in dialogs.items():
        session_dir = root / f"Session{int(dialog[3:5])}"
        labels = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        transcript = []
        start = 1.0
        for turn in members:
            end = start + turn.seconds
            labels.append(f"[{start:.4f} - {end:.4f}]\t{turn.utterance_id}\t{turn.label}\t[{turn.vad[0]:.4f}, {turn.vad[1]:.4f}, {turn.vad[2]:.4f}]")
            if annotator_lines:
                labels += ["C-E1:\tNeutral state;\t()", "C-E2:\tAnger;\t(a bit)", "A-E1:\tval 3; act 2; dom  2;\t()"]
            labels.append("")
            transcript.append(f"{turn.utterance_id} [{start:08.4f}-{end:08.4f}]: {turn.text}")
            wav_dir = session_dir / "sentences" / "wav" / dialog
            wav_dir.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(wav_dir / f"{turn.utterance_id}.wav"), tone(turn.label, turn.seconds, rng), SR,
                            subtype="PCM_16")
            start = end + 0.5
        for sub, text in (("EmoEvaluation", labels), ("transcriptions", transcript)):
            folder = session_dir / "dialog" / sub
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{dialog}.txt").write_text("\n".join(text) + "\n")
    return root


# class → [V, A, D] that follow its tone's pitch and loudness (`TONE`), for the dimensional task
RATED = {"neu": (3.0, 2.5, 2.5), "hap": (4.2, 3.6, 3.2), "exc": (4.0, 4.0, 3.5), "ang": (1.8, 4.4, 4.2),
         "sad": (1.8, 1.6, 1.8), "fru": (2.2, 3.2, 3.0), "xxx": (3.0, 2.8, 2.8)}


def synthetic_turns(per_class: int = 4, seed: int = 0, extra_labels: bool = True, rated: bool = False) -> list[Turn]:
    """Every session × speaker × class gets `per_class` turns across one impro and one script dialog;
    with `rated`, [V, A, D] ratings per class (`RATED`) with some spread, else a constant one."""
    rng = np.random.default_rng(seed)
    turns = []
    for session in range(1, 6):
        for actor in "FM":
            counters = {"impro01": 0, "script01_1": 0}
            for gender in "FM":
                labels = ["neu", "hap", "ang", "sad"] * per_class + (["exc", "fru", "xxx"] if extra_labels else [])
                for i, label in enumerate(labels):
                    kind = "impro01" if i % 2 == 0 else "script01_1"
                    if (actor == "F") != (i % 4 < 2):
                        continue  # split the turns between the F-led and M-led dialogs
                    number = counters[kind]
                    counters[kind] += 1
                    uid = f"Ses{session:02d}{actor}_{kind}_{gender}{number:03d}"
                    seconds = float(rng.uniform(0.6, 1.4))
                    vad = tuple(float(np.clip(v + rng.normal(0, 0.3), 1, 5)) for v in RATED[label]) if rated else None
                    turns.append(Turn(uid, label, f"{label} sentence {number}", seconds, *([vad] if vad else [])))
    return turns
