"""Memory that `predict` adds for one long recording: a generated 48 kHz stereo file (default one hour).

    python -m bench.predict_memory MODEL_DIR [--minutes 60]

Prints the process' resident memory after loading the model and warming it up on a short file,
its peak while predicting the long one (the kernel's VmHWM, reset just before), and the difference; decoding the file whole, as v0.1 did,
would hold its float32 samples at the native rate alone (1.38 GB for an hour of 48 kHz stereo).
Run in a fresh process so that the peak belongs to this measurement (`tests` call it that way).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

RATE, CHANNELS = 48_000, 2


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> bool:
    """Restart the kernel's peak-RSS count (VmHWM) at the current RSS; False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident set size since the last `reset_peak` (else since the start: ru_maxrss, KiB)."""
    try:
        return _status_mib("VmHWM")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_long_file(path: Path, minutes: float, seed: int = 0) -> None:
    """Low-level noise with a slow tone, written one minute at a time (the writer never holds it whole)."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE * 60) / RATE
    minute = (0.05 * rng.standard_normal((RATE * 60, CHANNELS)) + 0.1 * np.sin(2 * np.pi * 220 * t)[:, None])
    with soundfile.SoundFile(str(path), "w", RATE, CHANNELS, subtype="PCM_16") as handle:
        whole, rest = divmod(minutes * 60, 60)
        for _ in range(int(whole)):
            handle.write(minute.astype(np.float32))
        handle.write(minute[: int(rest * RATE)].astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an exported model folder")
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from benchmark.predict import load_model

    predictor = load_model(args.model, "cpu")
    with tempfile.TemporaryDirectory() as folder:
        short, long = Path(folder) / "short.wav", Path(folder) / "long.wav"
        write_long_file(short, 0.5)
        write_long_file(long, args.minutes)
        predicted, failed = predictor.predict_files([short])
        assert predicted and not failed, failed
        if not reset_peak():
            print("note: this kernel does not let the peak RSS be reset; the figure includes writing the file")
        before = rss_mib()
        started = time.perf_counter()
        (prediction,), failed = predictor.predict_files([long])
        seconds = time.perf_counter() - started
        peak = peak_rss_mib()
    whole = args.minutes * 60 * RATE * CHANNELS * 4 / 2**20
    print(f"{args.minutes:g} min of {RATE} Hz {CHANNELS}-channel audio: {prediction.chunks} chunks in {seconds:.1f} s; "
          f"RSS {before:.0f} MiB before, peak {peak:.0f} MiB while predicting: added {peak - before:.0f} MiB "
          f"(the file's float32 samples alone: {whole:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
