"""Bad input: non-zero exit, one line naming the file/field and what was expected, nothing written."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile
import torch

import run_benchmark
from benchmark.common.lock import run_lock
from benchmark.data import audio
from corpus_builder import synthetic_turns, write_tree

Case = Callable[[Path], tuple[list[str], str]]  # builds the input under tmp; returns (argv, expected text)


def _corpus(tmp: Path) -> Path:
    return write_tree(tmp / "corpus", synthetic_turns(per_class=1, extra_labels=False))


def _first_wav(corpus: Path) -> Path:
    return sorted((corpus / "Session1" / "sentences" / "wav").rglob("*.wav"))[0]


def _damage_wav(write: Callable[[Path], None]) -> Case:
    def case(tmp: Path) -> tuple[list[str], str]:
        corpus = _corpus(tmp)
        wav = _first_wav(corpus)
        write(wav)
        return ["--data", str(corpus)], str(wav)
    return case


def _label_file(corpus: Path) -> Path:
    return sorted((corpus / "Session1" / "dialog" / "EmoEvaluation").glob("*.txt"))[0]


def _malformed_line(tmp: Path) -> tuple[list[str], str]:
    corpus = _corpus(tmp)
    label_file = _label_file(corpus)
    label_file.write_text(label_file.read_text().replace("\tneu\t", " neu ", 1))
    return ["--data", str(corpus)], f"{label_file}:3: malformed turn line"


def _wav_missing(tmp: Path) -> tuple[list[str], str]:
    corpus = _corpus(tmp)
    wav = _first_wav(corpus)
    wav.unlink()
    return ["--data", str(corpus)], f"{wav}: wav missing"


def _session_missing(tmp: Path) -> tuple[list[str], str]:
    corpus = _corpus(tmp)
    (corpus / "Session4").rename(tmp / "elsewhere")
    return ["--data", str(corpus)], "missing Session4"


def _profile(text: str, expected: str) -> Case:
    def case(tmp: Path) -> tuple[list[str], str]:
        path = tmp / "settings.yaml"
        path.write_text(text)
        return ["--data", str(_corpus(tmp)), "--profile", str(path)], expected
    return case


def _checkpoint(write: Callable[[Path], None] | None, expected: str, trust: bool = False) -> Case:
    def case(tmp: Path) -> tuple[list[str], str]:
        path = tmp / "model.pt"
        if write is not None:
            write(path)
        flags = ["--trust-checkpoint"] if trust else []
        return ["--data", str(_corpus(tmp)), "--upstream", "hubert_base", "--upstream-ckpt", str(path), *flags], \
            expected.format(path=path)
    return case


def _pickled_config(path: Path) -> None:
    torch.save({"args": argparse.Namespace(arch="hubert"), "model": {}}, path)


def _not_writable(tmp: Path) -> tuple[list[str], str]:
    blocker = tmp / "a_file"
    blocker.write_text("not a folder")
    return ["--data", str(_corpus(tmp)), "--out", str(blocker / "results")], "output folder is not writable"


CASES: dict[str, Case] = {
    "data folder missing": lambda tmp: (["--data", str(tmp / "nowhere")], f"{tmp / 'nowhere'}: corpus folder does not exist"),
    "no sessions": lambda tmp: (["--data", str(tmp)], f"{tmp}: no Session* folders"),
    "a session missing": _session_missing,
    "malformed EmoEvaluation line": _malformed_line,
    "wav missing for a label": _wav_missing,
    "zero-length wav": _damage_wav(lambda p: soundfile.write(str(p), np.zeros(0, np.float32), 16000)),
    "corrupt wav bytes": _damage_wav(lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10)),
    "wav containing NaN": _damage_wav(lambda p: soundfile.write(str(p), np.full(1600, np.nan, np.float32), 16000,
                                                                 subtype="FLOAT")),
    "wav containing inf": _damage_wav(lambda p: soundfile.write(str(p), np.r_[np.zeros(800), np.inf].astype(np.float32),
                                                                 16000, subtype="FLOAT")),
    "unknown upstream": lambda tmp: (["--upstream", "hubret", "--data", str(tmp)], "unknown upstream 'hubret'; did you mean hubert"),
    "unknown downstream": lambda tmp: (["--downstream", "lstm", "--data", str(tmp)], "--downstream: unknown downstream 'lstm'"),
    "unknown experiment": lambda tmp: (["--table", "1", "--experiment", "12", "--data", str(tmp)], "--experiment: no experiment 12"),
    "malformed YAML": _profile("name: x\nfrozen: [1\n", "settings.yaml:3: malformed YAML"),
    "unknown YAML key": _profile("name: x\nfrozen:\n  epoks: 3\n", "settings.yaml: frozen: unknown key 'epoks'"),
    "wrong type in YAML": _profile("name: x\nfrozen:\n  epochs: three\n", "settings.yaml: frozen.epochs: expected int, got 'three'"),
    "epochs below one": _profile("name: x\nfrozen:\n  epochs: 0\n",
                                 "settings.yaml: frozen: epochs: expected an integer >= 1, got 0"),
    "no gradient clipping value": _profile("name: x\nfrozen:\n  grad_clip: 0\n",
                                           "settings.yaml: frozen: grad_clip: expected a number > 0, got 0.0"),
    "accumulation below one": _profile("name: x\nfrozen:\n  grad_accumulation: 0\n",
                                       "settings.yaml: frozen: grad_accumulation: expected an integer >= 1, got 0"),
    "top-k of zero": _profile("name: x\nfrozen:\n  top_k: 0\n", "settings.yaml: frozen: top_k: expected an integer >= 1"),
    "negative learning rate": _profile("name: x\nfinetune:\n  finetune_upstream: true\n  upstream_lr: -1.0e-5\n",
                                       "settings.yaml: finetune: upstream_lr: expected a number > 0, got -1e-05"),
    "warm-up fraction of one": _profile("name: x\nfrozen:\n  warmup_fraction: 1.0\n",
                                        "settings.yaml: frozen: warmup_fraction: expected a fraction in [0, 1), got 1.0"),
    "profile file missing": lambda tmp: (["--profile", str(tmp / "mine.yaml")], "mine.yaml: profile file does not exist"),
    "checkpoint path missing": _checkpoint(None, "{path}"),
    "corrupt checkpoint": _checkpoint(lambda p: p.write_bytes(b"\x00not a checkpoint" * 100), "{path}: not a PyTorch checkpoint"),
    "truncated checkpoint": _checkpoint(lambda p: (_pickled_config(p), p.write_bytes(p.read_bytes()[:500])), "{path}: not a PyTorch checkpoint"),
    "untrusted pickle without the trust flag": _checkpoint(_pickled_config, "--trust-checkpoint"),
    "output folder not writable": _not_writable,
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_with_one_line_and_writes_nothing(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative default (results/, data/) would land here
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv, expected = CASES[name](inputs)
    out = tmp_path / "out"
    if "--out" not in argv:
        argv += ["--out", str(out)]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    code = run_benchmark.main([*argv, "--folds", "1", "--epochs", "1"])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1, error
    assert expected in error
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing created or removed
    assert not out.exists()


def test_unknown_fold_is_an_argument_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_benchmark.main(["--folds", "0"])
    assert exit_info.value.code == 2
    assert "fold 0 does not exist; folds are numbered from 1" in capsys.readouterr().err
    # which folds exist is the corpus' to say (IEMOCAP: 5; RAVDESS: 6), once it is read
    assert run_benchmark.main(["--data", str(_corpus(tmp_path)), "--folds", "7", "--out", str(tmp_path / "o")]) == 2
    assert "fold 7 does not exist; IEMOCAP has folds 1..5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_second_runner_on_the_same_folder_is_refused(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    out = tmp_path / "out"
    with run_lock(out):
        before = sorted(out.rglob("*"))
        code = run_benchmark.main(["--data", str(corpus), "--out", str(out), "--folds", "1", "--epochs", "1"])
        assert sorted(out.rglob("*")) == before
    error = capsys.readouterr().err
    assert code == 2 and f"another run (PID {__import__('os').getpid()})" in error and str(out) in error


def test_a_stale_lock_is_recovered(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".run.lock").write_text("999999")  # left by a killed process: no one holds the lock
    with run_lock(out):
        pass
    assert "recovered the lock of a run that ended without releasing it (PID 999999)" in capsys.readouterr().out


def test_stereo_and_other_rates_are_converted_and_said_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(audio, "_NOTICES_SHOWN", set())
    t = np.arange(8000) / 8000
    left, right = np.sin(2 * np.pi * 200 * t), 0.5 * np.sin(2 * np.pi * 300 * t)
    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([left, right], axis=1).astype(np.float32), 16000, subtype="FLOAT")
    mixed = audio.load_wav(stereo)
    np.testing.assert_allclose(mixed.numpy(), ((left + right) / 2).astype(np.float32), atol=1e-6)
    low_rate = tmp_path / "8k.wav"
    soundfile.write(str(low_rate), left.astype(np.float32), 8000, subtype="FLOAT")
    resampled = audio.load_wav(low_rate)
    assert resampled.shape == (16000,)
    reference = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)
    assert np.abs(resampled.numpy()[200:-200] - reference[200:-200]).max() < 0.02
    audio.load_wav(stereo)
    audio.load_wav(low_rate)
    notes = capsys.readouterr().out.splitlines()
    assert sum("mixing down to mono" in n for n in notes) == 1
    assert sum("resampling to 16000 Hz" in n for n in notes) == 1
