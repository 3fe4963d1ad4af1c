"""A small synthetic emotional speech corpus in the IEMOCAP_full_release layout, made offline.

Five sessions of two synthetic speakers (a female-like and a male-like eSpeak NG voice each) speak
short sentences in four emotions. The emotion lives in the prosody (speaking rate, pitch, pitch range,
loudness), jittered per utterance so the classes overlap, and partly in the words (per-emotion sentence
pools plus a pool shared by all). Labels follow IEMOCAP: some happy turns are labelled `exc`, and a few
turns carry labels the reader drops (`fru`, `sur`, `xxx`). The same config and seed give byte-identical
files, so the real reader, folds and benchmark can run on it in CI.

`ensure_demo_corpus(root, config)` keeps one corpus per config under `root`, in a folder named after a
hash of the config and generator version (so a different config gets its own folder)."""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile

from .demo_text import BY_EMOTION, SHARED
from .espeak import Prosody, synthesize

VERSION = 1  # bump whenever the generated files change for the same config
MARKER = "DEMO_CORPUS.json"
SAMPLE_RATE = 16000
EMOTIONS: tuple[str, ...] = ("neu", "hap", "ang", "sad")
DROPPED_LABELS: tuple[str, ...] = ("fru", "xxx", "sur")
_FEMALE_VOICES = ("f1", "f2", "f3", "f4", "f5")
_MALE_VOICES = ("m1", "m2", "m3", "m4", "m6")
_ANNOTATION = {"neu": "Neutral state", "hap": "Happiness", "exc": "Excited", "ang": "Anger",
               "sad": "Sadness", "fru": "Frustration", "sur": "Surprise"}


@dataclass(frozen=True)
class _Style:
    """Prosody centre of a label: eSpeak rate/pitch/range and loudness in dB re. the speaker's level."""

    rate: float
    pitch: float
    pitch_range: float
    gain_db: float
    vad: tuple[float, float, float]


_STYLES = {
    "neu": _Style(165, 48, 45, 0.0, (2.5, 2.5, 2.5)),
    "hap": _Style(182, 64, 80, 2.5, (4.0, 3.5, 3.0)),
    "ang": _Style(200, 56, 70, 6.0, (1.5, 4.0, 4.0)),
    "sad": _Style(135, 38, 22, -5.0, (1.5, 2.0, 2.0)),
    "fru": _Style(180, 52, 55, 3.0, (2.0, 3.0, 3.0)),
    "sur": _Style(185, 66, 85, 2.0, (3.5, 3.5, 2.5)),
}
_JITTER = _Style(14, 7, 13, 2.5, (0.5, 0.5, 0.5))  # standard deviations at config.jitter = 1


@dataclass(frozen=True)
class DemoCorpusConfig:
    """What to generate; the default (670 turns, 640 of them in the 4 classes, ≈19 min of audio) suits CI."""

    seed: int = 0
    utterances_per_class: int = 16  # per speaker and emotion
    dropped_per_speaker: int = 3  # turns labelled fru/xxx/sur, which the reader drops
    excited_ratio: float = 0.4  # share of happy turns labelled `exc`
    shared_text_ratio: float = 0.5  # share of sentences drawn from the pool common to all emotions
    jitter: float = 1.0  # scale of the per-utterance prosody noise (0: every turn at its class centre)
    dialogs_per_session: int = 4  # improvised and scripted alternate; >= 3 puts the marker on F and M
    noise_dbfs: float = -60.0  # level of the white background noise

    def __post_init__(self) -> None:
        if self.utterances_per_class < 1 or self.dropped_per_speaker < 0 or self.dialogs_per_session < 1:
            raise ValueError(f"{self}: need utterances_per_class >= 1, dropped_per_speaker >= 0, dialogs >= 1")
        if not (0 <= self.excited_ratio <= 1 and 0 <= self.shared_text_ratio <= 1 and self.jitter >= 0):
            raise ValueError(f"{self}: ratios must lie in [0, 1] and jitter must be >= 0")


@dataclass(frozen=True)
class _Turn:
    dialog: str
    utterance_id: str
    label: str
    text: str
    voice: str
    prosody: Prosody
    level_dbfs: float
    vad: tuple[float, float, float]
    pad: tuple[float, float]  # silence before / after the speech, seconds
    gap: float  # pause before the turn, seconds
    seed: int


def config_key(config: DemoCorpusConfig) -> str:
    """Short hash naming a corpus of this config and generator version."""
    text = json.dumps({"version": VERSION, "config": asdict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _dialog_names(session: int, count: int) -> list[str]:
    """Improvised and scripted dialogs alternate; the marker actor (F/M) changes every two dialogs."""
    names = []
    for k in range(count):
        actor = "FM"[k // 2 % 2]
        names.append(f"Ses{session:02d}{actor}_script{k // 4 + 1:02d}_{k // 2 % 2 + 1}" if k % 2
                     else f"Ses{session:02d}{actor}_impro{k // 2 + 1:02d}")
    return names


def _plan(config: DemoCorpusConfig) -> list[_Turn]:
    """Every random decision, drawn in a fixed order from one `random.Random(seed)`."""
    rng = random.Random(config.seed)
    turns = []
    for session in range(1, 6):
        speakers = {}
        for gender, voices in (("F", _FEMALE_VOICES), ("M", _MALE_VOICES)):
            language = "en-us" if session % 2 else "en"
            speakers[gender] = (f"{language}+{voices[session - 1]}", rng.uniform(-6, 6),
                                rng.uniform(0.92, 1.08), rng.uniform(-2.0, 2.0))
        items = [(gender, emotion) for gender in "FM" for emotion in EMOTIONS
                 for _ in range(config.utterances_per_class)]
        items += [(gender, DROPPED_LABELS[i % len(DROPPED_LABELS)]) for gender in "FM"
                  for i in range(config.dropped_per_speaker)]
        rng.shuffle(items)
        dialogs = _dialog_names(session, config.dialogs_per_session)
        counters: dict[tuple[str, str], int] = {}
        for index, (gender, label) in enumerate(items):
            dialog = dialogs[index % len(dialogs)]
            number = counters[dialog, gender] = counters.get((dialog, gender), -1) + 1
            style_label = rng.choice(EMOTIONS) if label == "xxx" else label
            style, scale = _STYLES[style_label], config.jitter
            if label == "hap" and rng.random() < config.excited_ratio:
                label = "exc"
            pool_label = {"fru": "ang", "sur": "hap"}.get(style_label, style_label)
            pool = SHARED if rng.random() < config.shared_text_ratio else BY_EMOTION[pool_label]
            voice, pitch_offset, rate_factor, level_offset = speakers[gender]
            prosody = Prosody(
                rate=round(min(max(rng.gauss(style.rate, _JITTER.rate * scale) * rate_factor, 80), 450)),
                pitch=round(min(max(rng.gauss(style.pitch + pitch_offset, _JITTER.pitch * scale), 0), 100)),
                pitch_range=round(min(max(rng.gauss(style.pitch_range, _JITTER.pitch_range * scale), 0), 100)),
            )
            vad = tuple(min(max(round(rng.gauss(v, 0.5) * 2) / 2, 1.0), 5.0) for v in style.vad)
            turns.append(_Turn(
                dialog=dialog, utterance_id=f"{dialog}_{gender}{number:03d}", label=label,
                text=rng.choice(pool), voice=voice, prosody=prosody,
                level_dbfs=-28.0 + level_offset + rng.gauss(style.gain_db, _JITTER.gain_db * scale),
                vad=vad, pad=(rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)),
                gap=rng.uniform(0.3, 2.0), seed=rng.getrandbits(31),
            ))
    return turns


@lru_cache(maxsize=4)
def _resampling_filter(rate_in: int, rate_out: int, zeros: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Hann-windowed sinc taps, one row per output phase: (rate_out / g, 2 * half + 1), g = gcd."""
    up, down = rate_out // math.gcd(rate_in, rate_out), rate_in // math.gcd(rate_in, rate_out)
    cutoff = rolloff * min(up, down) / down  # in cycles per input sample, times 2
    width = zeros / cutoff
    half = math.ceil(width)
    x = np.arange(-half, half + 1)[None, :] - (np.arange(up) * down % up / up)[:, None]
    window = np.where(np.abs(x) <= width, np.cos(np.pi * x / (2 * width)) ** 2, 0.0)
    return cutoff * np.sinc(cutoff * x) * window


def _resample(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Sinc resampling (S,) → (ceil(S * out / in),); equals torchaudio.functional.resample to 1e-14, 20x faster."""
    taps = _resampling_filter(rate_in, rate_out)
    up, half = taps.shape[0], taps.shape[1] // 2
    down = up * rate_in // rate_out
    n = np.arange(math.ceil(signal.size * up / down))
    padded = np.pad(signal, (half, half + down))
    windows = padded[(n * down // up)[:, None] + np.arange(2 * half + 1)[None, :]]
    return np.einsum("nk,nk->n", windows, taps[n % up])


def _render(turn: _Turn, noise_dbfs: float) -> np.ndarray:
    """The turn's 16 kHz int16 waveform (S,): speech at the planned level, silence pads, light noise."""
    samples, rate = synthesize(turn.text, turn.voice, turn.prosody, seed=turn.seed)
    if samples.size == 0:
        raise RuntimeError(f"eSpeak produced no audio for {turn.utterance_id} ({turn.text!r})")
    speech = _resample(samples.astype(np.float64) / 32768.0, rate, SAMPLE_RATE)
    speech *= 10 ** (turn.level_dbfs / 20) / max(float(np.sqrt(np.mean(speech**2))), 1e-9)
    pads = [np.zeros(round(p * SAMPLE_RATE)) for p in turn.pad]
    wave = np.concatenate([pads[0], speech, pads[1]])
    noise = np.random.default_rng(turn.seed).standard_normal(wave.size)
    wave += noise * 10 ** (noise_dbfs / 20)
    peak = float(np.max(np.abs(wave)))
    if peak > 0.98:  # a limiter rather than clipping: the loudest turns stay loud, just not distorted
        wave *= 0.98 / peak
    return np.round(wave * 32767).astype(np.int16)


def _annotations(turn: _Turn, rng: random.Random) -> list[str]:
    """Evaluator lines like IEMOCAP's; readers must ignore them."""
    agreed = _ANNOTATION.get(turn.label, "Neutral state")
    names = list(_ANNOTATION.values())
    votes = [rng.choice(names) for _ in range(3)] if turn.label == "xxx" else [agreed, agreed, rng.choice(names)]
    lines = [f"C-E{k}:\t{vote};\t()" for k, vote in zip((1, 2, 4), votes)]
    v, a, d = (min(max(round(x + rng.uniform(-1, 1)), 1), 5) for x in turn.vad)
    return lines + [f"A-E{k}:\tval {v}; act {a}; dom  {d};\t()" for k in (1, 2)]


def _write_corpus(folder: Path, config: DemoCorpusConfig) -> dict[str, object]:
    turns, seconds = _plan(config), 0.0
    by_dialog: dict[str, list[tuple[_Turn, float, float]]] = {}
    clock: dict[str, float] = {}
    for turn in turns:
        session_dir = folder / f"Session{int(turn.utterance_id[3:5])}"
        wav_dir = session_dir / "sentences" / "wav" / turn.dialog
        wav_dir.mkdir(parents=True, exist_ok=True)
        wave = _render(turn, config.noise_dbfs)
        soundfile.write(wav_dir / f"{turn.utterance_id}.wav", wave, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        start = clock.get(turn.dialog, 0.0) + turn.gap
        clock[turn.dialog] = end = start + wave.size / SAMPLE_RATE
        by_dialog.setdefault(turn.dialog, []).append((turn, start, end))
        seconds += wave.size / SAMPLE_RATE
    rng = random.Random(config.seed + 1)
    for dialog, rows in sorted(by_dialog.items()):
        dialog_dir = folder / f"Session{int(dialog[3:5])}" / "dialog"
        for sub in ("EmoEvaluation/Categorical", "transcriptions"):
            (dialog_dir / sub).mkdir(parents=True, exist_ok=True)
        labels = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"]
        transcript, categorical = [], []
        for turn, start, end in rows:
            vad = ", ".join(f"{x:.4f}" for x in turn.vad)
            labels += ["", f"[{start:.4f} - {end:.4f}]\t{turn.utterance_id}\t{turn.label}\t[{vad}]"]
            labels += _annotations(turn, rng)
            transcript.append(f"{turn.utterance_id} [{start:08.4f}-{end:08.4f}]: {turn.text}")
            categorical.append(f"{turn.utterance_id} :{_ANNOTATION.get(turn.label, 'Other')}; ()")
        (dialog_dir / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(labels) + "\n\n", encoding="utf-8")
        (dialog_dir / "EmoEvaluation" / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
            "\n".join(categorical) + "\n", encoding="utf-8")
        (dialog_dir / "transcriptions" / f"{dialog}.txt").write_text("\n".join(transcript) + "\n", encoding="utf-8")
    counts = {label: sum(t.label == label for t in turns) for label in ("neu", "hap", "exc", "ang", "sad")}
    counts["dropped"] = sum(t.label in DROPPED_LABELS for t in turns)
    return {"utterances": len(turns), "labels": counts, "speakers": 10, "seconds": round(seconds, 2)}


def _marker(folder: Path) -> dict[str, object] | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _matches(folder: Path, config: DemoCorpusConfig) -> bool:
    marker = _marker(folder)
    return marker is not None and marker.get("version") == VERSION and marker.get("config") == asdict(config)


def generate_demo_corpus(out_dir: Path, config: DemoCorpusConfig = DemoCorpusConfig()) -> Path:
    """Write the corpus to `out_dir` (built in a temporary sibling, then renamed into place).

    An existing demo corpus in `out_dir` is replaced; any other non-empty folder is left untouched
    and a `FileExistsError` is raised.
    """
    out_dir, started = Path(out_dir).absolute(), time.perf_counter()
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and _marker(out_dir) is None)):
        raise FileExistsError(f"{out_dir} exists and is not a demo corpus (no {MARKER}); refusing to overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        summary = _write_corpus(temporary, config)
        marker = {"generator": "benchmark.data.demo", "version": VERSION, "config": asdict(config), **summary}
        (temporary / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)  # our own demo corpus or an empty folder (checked above)
        temporary.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    labels = ", ".join(f"{k} {v}" for k, v in summary["labels"].items())
    print(f"demo corpus: {summary['utterances']} utterances ({labels}), 10 speakers, "
          f"{summary['seconds'] / 60:.1f} min of audio, in {out_dir} ({time.perf_counter() - started:.1f} s)")
    return out_dir


def ensure_demo_corpus(root: Path, config: DemoCorpusConfig = DemoCorpusConfig()) -> Path:
    """The corpus of `config` under `root` (`root/IEMOCAP_demo-<config hash>`), generated on first use."""
    folder = Path(root).absolute() / f"IEMOCAP_demo-{config_key(config)}"
    if _matches(folder, config):
        return folder
    try:
        return generate_demo_corpus(folder, config)
    except (FileExistsError, OSError):
        if _matches(folder, config):  # another process generated it meanwhile
            return folder
        raise


def tiny_config(seed: int = 0) -> DemoCorpusConfig:
    """A corpus of 2 turns per speaker and emotion (≈ 90 turns), for fast tests."""
    return replace(DemoCorpusConfig(seed=seed), utterances_per_class=2, dropped_per_speaker=1, dialogs_per_session=2)
