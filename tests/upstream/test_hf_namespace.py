"""`hf:<hub id or dir>`: any transformers speech encoder by its config's model_type; Whisper's encoder."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_hf import WHISPER_WINDOW_SECONDS, save_tiny

from upstream import CheckpointNotFoundError, build_upstream, get_spec
from upstream.hf_speech import SpeechModelUpstream

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(model_type: str) -> Path:
        if model_type not in cache:
            cache[model_type] = save_tiny(model_type, tmp_path_factory.mktemp(model_type))
        return cache[model_type]

    return get


@pytest.mark.parametrize("model_type, model_class", [
    ("hubert", "HubertModel"), ("wav2vec2", "Wav2Vec2Model"), ("wavlm", "WavLMModel"),
    ("data2vec-audio", "Data2VecAudioModel"), ("unispeech", "UniSpeechModel"), ("unispeech-sat", "UniSpeechSatModel"),
])
def test_each_wav2vec2_family_type_becomes_its_transformers_model(model_type, model_class, tiny_dirs, fake_wavs):
    directory = tiny_dirs(model_type)
    upstream = build_upstream(f"hf:{directory}", normalize=False)  # the direct call below gets raw audio
    assert isinstance(upstream, SpeechModelUpstream) and type(upstream.model).__name__ == model_class
    spec = get_spec(f"hf:{directory}")  # from config.json alone
    assert (spec.hidden_size, spec.num_layers, spec.downsample_rate) == (32, 3, 320)
    wavs, lens = fake_wavs([16_000])
    with torch.no_grad():
        ours = upstream(wavs, lens)
        direct = upstream.model(wavs, output_hidden_states=True)
    torch.testing.assert_close(ours.hidden_states[-1], direct.last_hidden_state, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.hidden_states[1], direct.hidden_states[1], atol=1e-6, rtol=0)


def _whisper_direct(upstream, samples: torch.Tensor) -> torch.Tensor:
    """transformers' own path on one window: its feature extractor, then the encoder; the last state."""
    features = upstream.feature_extractor(samples.numpy(), sampling_rate=16_000, return_tensors="pt").input_features
    return upstream.encoder(features).last_hidden_state[0]


def test_whisper_encoder_chunks_long_input_into_its_windows(tiny_dirs, fake_wavs):
    upstream = build_upstream(f"hf:{tiny_dirs('whisper')}")
    window = 16_000 * WHISPER_WINDOW_SECONDS
    assert upstream.window_samples == window and upstream.downsample_rate == 320 and upstream.num_layers == 3
    wavs, lens = fake_wavs([int(2.5 * window), 7_000])
    with torch.no_grad():
        out = upstream(wavs, lens)
        long_row = torch.cat([_whisper_direct(upstream, wavs[0, start : start + window])[:frames]
                              for start, frames in ((0, 50), (window, 50), (2 * window, 25))])
        short_row = _whisper_direct(upstream, wavs[1, :7_000])[:22]  # ceil(7000 / 160) = 44 mel → 22 frames
    assert out.lengths.tolist() == [125, 22]
    torch.testing.assert_close(out.hidden_states[-1][0, :125], long_row, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.hidden_states[-1][1, :22], short_row, atol=1e-5, rtol=0)
    assert (out.hidden_states[-1][1, 22:] == 0).all()


def test_whisper_freeze_stops_only_its_convolutions(tiny_dirs, fake_wavs):
    upstream = build_upstream(f"hf:{tiny_dirs('whisper')}").train()
    upstream.freeze_feature_encoder()
    wavs, lens = fake_wavs([8_000])
    upstream(wavs, lens).hidden_states[-1].pow(2).mean().backward()
    assert upstream.encoder.conv1.weight.grad is None and upstream.encoder.layers[0].fc1.weight.grad is not None


def test_hf_directory_is_fed_as_its_preprocessor_says(tiny_dirs, tmp_path):
    directory = tmp_path / "w2v"
    save_tiny("wav2vec2", directory)
    (directory / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False}))
    assert build_upstream(f"hf:{directory}").do_normalize is False
    assert build_upstream(f"hf:{directory}", normalize=True).do_normalize is True
    assert build_upstream(f"hf:{tiny_dirs('data2vec-audio')}").do_normalize is True  # layer-norm convs, no file


def test_offline_and_unsupported_are_one_clear_line(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"'hf:someone/no-such-model'.*offline") as err:
        build_upstream("hf:someone/no-such-model")
    assert "\n" not in str(err.value)
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
              ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match=r"model_type 'bert' is not a supported speech encoder \(supported: hubert"):
        build_upstream(f"hf:{tmp_path / 'bert'}")


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["whisper", "data2vec-audio"])
def test_a_recipe_runs_on_an_hf_directory(model_type, tiny_dirs, tone_corpus, tmp_path):
    directory = tiny_dirs(model_type)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), "--upstream", f"hf:{directory}",
                           "--downstream", "mean", "--folds", "1", "--profile", "demo", "--epochs", "1",
                           "--data", str(tone_corpus), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    [csv_file] = out.glob("hf_*_mean.csv")
    rows = list(csv.DictReader(csv_file.open()))
    assert rows[0]["upstream"] == f"hf:{directory}" and float(rows[0]["ua"]) >= 0
    [result] = out.glob("runs/hf_*/finetune-*/fold1/result.json")
    record = json.loads(result.read_text())
    assert record["n_test"] > 0 and len(record["scores"]["best"]["predictions"]) == record["n_test"]
