"""Minimal ctypes binding to the libespeak-ng shipped by the PyPI package `espeakng-loader`.

eSpeak NG keeps synthesis state (oscillator phases, echo buffers, a noise generator) in static
variables, so the same request gives different samples depending on what was spoken before. To make
every utterance reproducible on its own, `synthesize` loads a fresh copy of the library, speaks one
text and unloads it again (≈10 ms per call).
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()  # the library is process-global: one synthesis at a time


class EspeakUnavailable(RuntimeError):
    """libespeak-ng or its data could not be loaded."""


@dataclass(frozen=True)
class Prosody:
    """eSpeak's own units: rate in words/min (80–450), pitch and range 0–100 (50 = the voice's default)."""

    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


def _locate() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakUnavailable(
            "speech synthesis needs the PyPI package 'espeakng-loader' (pip install espeakng-loader)"
        ) from None
    try:
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except Exception as error:
        raise EspeakUnavailable(f"espeakng-loader is installed but incomplete: {error}") from None


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes

    _ctypes.dlclose(lib._handle)


def synthesize(text: str, voice: str, prosody: Prosody = Prosody(), seed: int = 0) -> tuple[np.ndarray, int]:
    """Speak `text` with eSpeak voice name `voice` (e.g. "en-us+f3"); returns (int16 samples (S,), rate).

    The result depends only on the arguments (fresh library state per call, noise seeded by `seed`).
    """
    library_path, data_path = _locate()
    with _LOCK:
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as error:
            raise EspeakUnavailable(f"cannot load libespeak-ng from {library_path}: {error}") from None
        initialised = False
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            sample_rate = lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
            )
            if sample_rate <= 0:
                raise EspeakUnavailable(f"libespeak-ng could not initialise with data folder {data_path}")
            initialised = True
            chunks: list[np.ndarray] = []

            def collect(wav: ctypes._Pointer, count: int, events: int) -> int:
                if count > 0:
                    chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
                return 0

            callback = _CALLBACK(collect)  # kept alive until synthesis returns
            lib.espeak_SetSynthCallback(callback)
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak has no voice {voice!r}; expected e.g. 'en-us+f3' or 'en+m2'")
            for parameter, value in (
                (_RATE, prosody.rate), (_PITCH, prosody.pitch), (_RANGE, prosody.pitch_range), (_VOLUME, 100)
            ):
                lib.espeak_SetParameter(parameter, int(value), 0)
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(seed)
            data = text.encode("utf-8") + b"\0"
            lib.espeak_Synth.argtypes = [
                ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
            ]
            status = lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed with status {status} for text {text!r}")
        finally:
            if initialised:
                lib.espeak_Terminate()
            _unload(lib)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return samples.astype(np.int16, copy=False), int(sample_rate)
