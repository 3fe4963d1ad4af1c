"""Trees of the acted corpora in the layouts their official downloads unpack to, with the file names
of the shipped partitions (all of them, or a chosen subset) and tones per emotion as audio, at each
corpus' own sample rate."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

from benchmark.data import acted
from benchmark.data.partitioned import read_partition

RATES = {"ravdess": 48_000, "cremad": 16_000, "emodb": 16_000, "savee": 44_100, "tess": 24_414}


def _where(corpus: str, name: str) -> Path:
    """Where the official download puts the file the partition calls `name`."""
    if corpus == "ravdess":
        return Path(f"Actor_{name[-6:-4]}") / name
    if corpus == "cremad":
        return Path("AudioWAV") / name
    if corpus == "emodb":
        return Path("wav") / name
    if corpus == "savee":
        speaker, stem = name.split("_", 1)
        return Path("AudioData") / speaker / stem
    speaker, _, emotion = Path(name).stem.split("_")
    return Path("TESS Toronto emotional speech set data") / f"{speaker}_{emotion}" / name


def label_of(corpus: str, name: str) -> str:
    """The label the corpus' own file name gives (through its recipe's parser)."""
    parse: Callable = {"ravdess": acted._RAVDESS_NAME, "cremad": acted._CREMAD_NAME, "emodb": acted._EMODB_NAME,
                       "savee": acted._SAVEE_NAME, "tess": acted._TESS_NAME}[corpus].match
    match = parse(name)
    assert match is not None, name
    codes = {"ravdess": acted._RAVDESS_CODES, "cremad": acted._CREMAD_CODES, "emodb": acted._EMODB_CODES,
             "savee": acted._SAVEE_CODES, "tess": acted._TESS_CODES}[corpus]
    group = {"ravdess": 1, "cremad": 2, "emodb": 2, "savee": 2, "tess": 3}[corpus]
    return codes[match.group(group).lower() if corpus == "tess" else match.group(group)]


def write_acted_tree(root: Path, corpus: str, names: list[str] | None = None, seconds: float = 0.02,
                     seed: int = 0) -> Path:
    """Write `names` (default: every file of the partition) under `root` as the corpus lays them out."""
    rng = np.random.default_rng(seed)
    rate = RATES[corpus]
    info = {c.name: c for c in (acted.RAVDESS, acted.CREMAD, acted.EMODB, acted.SAVEE, acted.TESS)}[corpus]
    t = np.arange(max(1, int(seconds * rate))) / rate
    encoded: dict[tuple[int, int], bytes] = {}  # (class, variant) → WAV bytes: writing thousands of files stays fast
    for number, name in enumerate(names if names is not None else sorted(read_partition(corpus))):
        key = (info.classes.index(label_of(corpus, name)), number % 4)
        if key not in encoded:
            frequency = 120.0 * (1.35 ** key[0]) * rng.uniform(0.95, 1.05)
            wave = (0.05 + 0.05 * key[0]) * np.sin(2 * np.pi * frequency * t) + rng.normal(0, 0.005, t.shape)
            buffer = io.BytesIO()
            soundfile.write(buffer, wave.astype(np.float32), rate, subtype="PCM_16", format="WAV")
            encoded[key] = buffer.getvalue()
        path = root / _where(corpus, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded[key])
    if corpus == "cremad":
        actors = sorted({n[:4] for n in (names or read_partition(corpus))})
        with (root / "VideoDemographics.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
            writer.writerows([[a, 30, "Male" if int(a) % 2 else "Female", "Caucasian", "Not Hispanic"] for a in actors])
    return root
