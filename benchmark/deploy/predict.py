"""Emotions of new recordings with an exported model: `load_model(DIR).predict(wav, sample_rate)`.

Audio of any sample rate and channel count is mixed down to mono and resampled to 16 kHz. A
recording longer than the model's window (`window_seconds`, 20 s unless exported otherwise) is cut
into equal chunks no longer than the window; each chunk is classified on its own and the file's
probabilities are the chunks' probabilities averaged, weighted by chunk length. Files are read a
few minutes of audio at a time; one longer than `STREAM_SECONDS` is streamed block by block
(`audio_stream`), so an hour-long recording never sits in memory whole. Models with a text branch
need each recording's transcript (every chunk sees the whole transcript); a text-only model reads
no audio at all, so its "files" are only names to look the transcripts up by.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from upstream.interface import SAMPLE_RATE, Batch

from ..data.audio import AudioError
from ..reporting.dimensional import ATTRIBUTES
from ..training.batching import duration_batches
from ..training.cache import select_layers
from ..training.model import EmotionModel
from .audio_stream import AudioFile, chunks, to_model_audio
from .bundle import BundleConfig, load_bundle
from .transcripts import check_transcript_keys, transcript_for

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
FILES_PER_GROUP = 32  # short files read into memory at once when predicting many
GROUP_SECONDS = 600.0  # ... and at most this much audio (16 kHz float32: 38 MB)
STREAM_SECONDS = 120.0  # a longer file is streamed, its chunks classified as they are read


class TranscriptsNeeded(ValueError):
    """The model reads transcripts and none were given (the message says how to pass them)."""


@dataclass(frozen=True)
class Prediction:
    file: str
    emotion: str
    probabilities: dict[str, float]  # empty for a dimensional-only model
    seconds: float | None  # of audio at 16 kHz; None for text-only models, which read none
    chunks: int
    attributes: dict[str, float] | None = None  # arousal, valence, dominance on [0, 1] (dimensional models)


@dataclass(frozen=True)
class Failure:
    file: str
    reason: str


def find_audio(inputs: Sequence[Path]) -> tuple[list[Path], list[Failure]]:
    """Files as given, folders searched recursively for audio files; missing paths are failures."""
    files: list[Path] = []
    failures: list[Failure] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                failures.append(Failure(str(path), f"folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})"))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            failures.append(Failure(str(path), "does not exist"))
    return files, failures


class EmotionPredictor:
    """An exported model ready to classify audio; `labels` are the class names in logit order."""

    def __init__(self, model: EmotionModel, config: BundleConfig, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.labels: tuple[str, ...] = config.labels if config.downstream.class_outputs else ()
        self.window_seconds = config.window_seconds
        self.classes, self.width = config.downstream.class_outputs, config.downstream.outputs

    @property
    def needs_text(self) -> bool:
        return self.config.needs_text

    def _require_text(self, what: str) -> TranscriptsNeeded:
        names = ", ".join(u.name for u in self.config.upstreams if u.modality == "text")
        return TranscriptsNeeded(f"this model reads transcripts (text upstream {names}) besides the audio: {what}")

    @torch.no_grad()
    def logits(self, batch: Batch) -> Tensor:
        """(B, outputs) float32 head outputs of a padded 16 kHz batch (texts used by text upstreams): the
        class logits, then the attributes for dimensional models."""
        batch = batch.to(self.device)
        outputs = []
        for upstream in self.model.upstreams:
            output = upstream.extract(batch)
            output.hidden_states = select_layers(output.hidden_states, self.config.layers)  # type: ignore[arg-type]
            outputs.append(output)
        return self.model.downstream(outputs).float()

    def _probabilities(self, items: Sequence[tuple[Tensor, str]], batch_seconds: float) -> Tensor:
        """(N, width) of (wav, text) items, batched by duration: softmax probabilities of the classes,
        then the attributes as regressed."""
        result = torch.zeros(len(items), self.width)
        for indices in duration_batches([len(w) / SAMPLE_RATE for w, _ in items], batch_seconds):
            wavs = [items[i][0] for i in indices]
            lengths = torch.tensor([len(w) for w in wavs], dtype=torch.long)
            padded = torch.zeros(len(wavs), int(lengths.max()))
            for row, wav in enumerate(wavs):
                padded[row, : len(wav)] = wav
            batch = Batch([str(i) for i in indices], padded, lengths, [items[i][1] for i in indices],
                          torch.zeros(len(indices), dtype=torch.long))
            outputs = self.logits(batch).cpu()
            result[indices] = torch.cat([outputs[:, : self.classes].softmax(-1), outputs[:, self.classes:]], -1)
        return result

    def _weighted_totals(self, items: Sequence[tuple[Tensor, str]], batch_seconds: float) -> Tensor:
        """(N, width + 1): each chunk's outputs × its length in samples, then that length."""
        weights = torch.tensor([float(len(w)) for w, _ in items])
        return torch.cat([self._probabilities(items, batch_seconds) * weights[:, None], weights[:, None]], -1)

    def _finish(self, total: Tensor) -> tuple[str, dict[str, float], dict[str, float] | None]:
        """(emotion, class probabilities, attributes) from a weighted total of `_weighted_totals` rows."""
        mean = total[:-1] / total[-1]
        probabilities = dict(zip(self.labels, mean[: self.classes].tolist()))
        emotion = max(probabilities, key=probabilities.__getitem__) if probabilities else ""
        attributes = dict(zip(ATTRIBUTES, mean[self.classes:].tolist())) if self.width > self.classes else None
        return emotion, probabilities, attributes

    def _predict_wavs(self, wavs: Sequence[Tensor], texts: Sequence[str], batch_seconds: float) -> list[Tensor]:
        """Per recording, the weighted total of its chunks' outputs (`_finish` averages it by chunk length)."""
        window = max(1, int(self.window_seconds * SAMPLE_RATE))
        items: list[tuple[Tensor, str]] = []
        owner: list[int] = []
        for index, (wav, text) in enumerate(zip(wavs, texts, strict=True)):
            for piece in chunks(wav, window):
                items.append((piece, text))
                owner.append(index)
        totals = torch.zeros(len(wavs), self.width + 1)
        totals.index_add_(0, torch.tensor(owner), self._weighted_totals(items, batch_seconds))
        return list(totals)

    def _predict_streamed(self, audio: AudioFile, text: str, batch_seconds: float) -> Prediction | Failure:
        """A long file's prediction, its chunks classified a batch at a time as they are decoded."""
        window = max(1, int(self.window_seconds * SAMPLE_RATE))
        total, batch, count = torch.zeros(self.width + 1), [], 0
        try:
            for piece in audio.chunks(window):
                batch.append((piece, text))
                count += 1
                if sum(len(w) for w, _ in batch) >= batch_seconds * SAMPLE_RATE:
                    total += self._weighted_totals(batch, batch_seconds).sum(0)
                    batch = []
            if batch:
                total += self._weighted_totals(batch, batch_seconds).sum(0)
        except AudioError as error:
            return Failure(str(audio.path), str(error).removeprefix(f"{audio.path}: "))
        except Exception as error:  # noqa: BLE001 — reported as this file's failure
            return Failure(str(audio.path), f"model failed on it ({type(error).__name__}: {error})")
        emotion, probabilities, attributes = self._finish(total)
        return Prediction(str(audio.path), emotion, probabilities, audio.samples / SAMPLE_RATE, count, attributes)

    def predict(self, wav: np.ndarray | Tensor, sample_rate: int, text: str | None = None) -> dict[str, float]:
        """{label: probability} for one recording ((S,), (S, C) or (C, S) samples at `sample_rate`); a
        dimensional model's arousal, valence and dominance (on [0, 1]) under their names."""
        if self.needs_text and text is None:
            raise self._require_text("pass text=TRANSCRIPT")
        (total,) = self._predict_wavs([to_model_audio(wav, sample_rate)], [text or ""], 60.0)
        _, probabilities, attributes = self._finish(total)
        return probabilities | (attributes or {})

    def predict_text(self, text: str) -> dict[str, float]:
        """{label: probability} of one transcript, for a text-only model (no audio needed)."""
        if not self.config.text_only:
            raise ValueError("predict_text: this model also reads audio; use predict(wav, sample_rate, text)")
        (total,) = self._predict_wavs([torch.zeros(1)], [text], 60.0)
        _, probabilities, attributes = self._finish(total)
        return probabilities | (attributes or {})

    def predict_files(
        self,
        files: Sequence[Path | str],
        transcripts: dict[str, str] | None = None,
        batch_seconds: float = 60.0,
        progress: bool = False,
    ) -> tuple[list[Prediction], list[Failure]]:
        """Predict every readable file, in the order given; unreadable ones (and ones without a needed
        transcript, looked up by path, file name or stem) are failures."""
        if self.needs_text and transcripts is None:
            raise self._require_text("pass --transcripts FILE.csv (columns file,text)")
        paths = [Path(f) for f in files]
        if self.needs_text and transcripts is not None:
            check_transcript_keys(transcripts, paths)
        if self.config.text_only:
            return self._predict_texts(paths, transcripts or {}, batch_seconds)
        predictions: list[Prediction] = []
        failures: list[Failure] = []
        bar = tqdm(total=len(paths), desc="predict", unit="file", disable=not progress)
        group: list[tuple[Path, Tensor, str]] = []

        def flush() -> None:
            predictions.extend(self._predict_group(group, batch_seconds, failures))
            bar.update(len(group))
            group.clear()

        for path in paths:
            loaded = self._open(path, transcripts)
            if isinstance(loaded, Failure):
                failures.append(loaded)
                bar.update(1)
                continue
            audio, text = loaded
            if audio.seconds > STREAM_SECONDS:
                flush()  # predictions stay in the order of the files
                outcome = self._predict_streamed(audio, text, batch_seconds)
                (failures if isinstance(outcome, Failure) else predictions).append(outcome)  # type: ignore[arg-type]
                bar.update(1)
                continue
            try:
                group.append((path, audio.read(), text))
            except AudioError as error:
                failures.append(Failure(str(path), str(error).removeprefix(f"{path}: ")))
                bar.update(1)
            if len(group) == FILES_PER_GROUP or sum(len(w) for _, w, _ in group) >= GROUP_SECONDS * SAMPLE_RATE:
                flush()
        flush()
        bar.close()
        return predictions, failures

    def _predict_texts(self, names: Sequence[Path], transcripts: dict[str, str],
                       batch_seconds: float) -> tuple[list[Prediction], list[Failure]]:
        """A text-only model: each name's transcript classified; no audio is opened."""
        found = [(name, transcript_for(transcripts, name)) for name in names]
        failures = [Failure(str(name), "no transcript for it in --transcripts (looked up by path, name and stem)")
                    for name, text in found if text is None]
        known = [(name, text) for name, text in found if text is not None]
        silence = torch.zeros(1)  # the batch's waveform slot; text upstreams read only its texts
        predictions = []
        for start in range(0, len(known), FILES_PER_GROUP):
            group = known[start : start + FILES_PER_GROUP]
            for (name, _), total in zip(group, self._predict_wavs([silence] * len(group), [t for _, t in group],
                                                                    batch_seconds)):
                emotion, scores, attributes = self._finish(total)
                predictions.append(Prediction(str(name), emotion, scores, None, 1, attributes))
        return predictions, failures

    def _open(self, path: Path, transcripts: dict[str, str] | None) -> tuple[AudioFile, str] | Failure:
        text = ""
        if self.needs_text:
            found = transcript_for(transcripts or {}, path)
            if found is None:
                return Failure(str(path), "no transcript for it in --transcripts (looked up by path, name and stem)")
            text = found
        try:
            return AudioFile(path), text
        except AudioError as error:
            return Failure(str(path), str(error).removeprefix(f"{path}: "))

    def _predict_group(self, group: Sequence[tuple[Path, Tensor, str]], batch_seconds: float,
                       failures: list[Failure]) -> list[Prediction]:
        """Predictions of loaded files; when a batch fails, its files are retried alone so one bad file
        cannot take the others' results with it."""
        try:
            results: Iterable[Tensor | Exception] = self._predict_wavs([w for _, w, _ in group], [t for *_, t in group],
                                                                       batch_seconds)
        except Exception:  # noqa: BLE001 — isolate the offending file below
            results = [self._try_alone(wav, text, batch_seconds) for _, wav, text in group]
        predictions = []
        window = max(1, int(self.window_seconds * SAMPLE_RATE))
        for (path, wav, _), outcome in zip(group, results, strict=True):
            if isinstance(outcome, Exception):
                failures.append(Failure(str(path), f"model failed on it ({type(outcome).__name__}: {outcome})"))
                continue
            emotion, probabilities, attributes = self._finish(outcome)
            predictions.append(Prediction(str(path), emotion, probabilities, len(wav) / SAMPLE_RATE,
                                          len(chunks(wav, window)), attributes))
        return predictions

    def _try_alone(self, wav: Tensor, text: str, batch_seconds: float) -> Tensor | Exception:
        try:
            return self._predict_wavs([wav], [text], batch_seconds)[0]
        except Exception as error:  # noqa: BLE001 — reported as this file's failure
            return error


def load_model(folder: Path | str, device: torch.device | str | None = None) -> EmotionPredictor:
    """The exported model in `folder` (see `benchmark.deploy.bundle`), on `device` (default: CUDA if present)."""
    from ..training.device import default_device

    model, config = load_bundle(Path(folder))
    return EmotionPredictor(model, config, device if device is not None else default_device())
