"""The s3prl process's compatibility fixes (bench/s3prl_compat/sitecustomize.py), in a fresh interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from bench.s3prl_side_by_side import COMPAT_DIR, s3prl_env

CHECK = """
import argparse, sys, torch, torchaudio
import torchaudio.sox_effects
torchaudio.set_audio_backend("sox_io")
wav, rate = torchaudio.load(sys.argv[1])
assert wav.dtype == torch.float32 and tuple(wav.shape) == (2, 1600) and rate == 16000, (wav.shape, rate)
assert abs(float(wav[1, 10]) - 0.25) < 1e-3
part, _ = torchaudio.load(sys.argv[1], frame_offset=100, num_frames=50)
assert tuple(part.shape) == (2, 50)
from huggingface_hub import HfApi, HfFolder, Repository
torch.save({"Args": argparse.Namespace(a=1)}, sys.argv[2])
assert torch.load(sys.argv[2])["Args"].a == 1  # weights_only default, Namespace allow-listed
print("ok")
"""


def test_fixes_apply_in_a_fresh_interpreter(tmp_path: Path) -> None:
    stereo = np.stack([np.zeros(1600), np.full(1600, 0.25)], axis=1).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", stereo, 16000, subtype="PCM_16")
    result = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "a.wav"), str(tmp_path / "c.pt")],
                            env=s3prl_env(), capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_compat_folder_is_only_on_the_s3prl_path() -> None:
    assert str(COMPAT_DIR) not in sys.path
    assert s3prl_env()["PYTHONPATH"].split(os.pathsep)[0] == str(COMPAT_DIR)
