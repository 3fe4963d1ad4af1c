"""transformers backend: local-dir round trip, normalisation, offline errors, fine-tuning hooks, tiny models."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from upstream import CheckpointNotFoundError, build_upstream
from upstream.checkpoints import hf_snapshot
from upstream.hf_speech import SpeechModelUpstream, normalize_valid
from upstream.releases import read_releases
from upstream.tiny import KINDS, build_tiny_model


def outputs_equal(a, b, atol: float = 0.0) -> None:
    assert torch.equal(a.lengths, b.lengths)
    for x, y in zip(a.hidden_states, b.hidden_states, strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_local_directory_round_trip(kind, tmp_path, fake_wavs):
    model = build_tiny_model(kind, seed=3)
    model.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 16000}))
    loaded = build_upstream("hubert", ckpt=str(tmp_path))  # any transformers name takes a directory override
    assert loaded.do_normalize and type(loaded.model) is type(model)
    wavs, lens = fake_wavs([16_000, 9_000])
    with torch.no_grad():
        outputs_equal(loaded(wavs, lens), SpeechModelUpstream(model, do_normalize=True)(wavs, lens))


def test_normalisation_matches_transformers_feature_extractor(fake_wavs):
    from transformers import Wav2Vec2FeatureExtractor

    wavs, lens = fake_wavs([16_000, 7_000])
    wavs = wavs * 3 + 0.5 * (torch.arange(wavs.shape[1]) < lens[:, None])  # offset only on valid samples
    extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    reference = extractor([w[:n].numpy() for w, n in zip(wavs, lens)], sampling_rate=16_000, padding=True,
                          return_tensors="np")["input_values"]
    ours = normalize_valid(wavs, lens)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-5)
    assert (ours[1, 7_000:] == 0).all()


def test_offline_release_fails_fast_with_one_actionable_line():
    if hf_snapshot("facebook/hubert-large-ll60k") is not None:
        pytest.skip("facebook/hubert-large-ll60k is in this machine's HF cache")
    code = "import upstream\ntry:\n    upstream.build_upstream('hubert')\nexcept upstream.CheckpointNotFoundError as e:\n    print(e)"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    message = result.stdout.strip()
    assert result.returncode == 0 and elapsed < 30, (elapsed, result.stderr)
    assert "\n" not in message and "Traceback" not in result.stderr
    assert "facebook/hubert-large-ll60k" in message and "--upstream-ckpt PATH_OR_ID" in message


def test_missing_override_names_the_value():
    with pytest.raises(CheckpointNotFoundError, match="--upstream-ckpt value '/nowhere/model'"):
        build_upstream("wavlm_large", ckpt="/nowhere/model")


def test_releases_yaml_is_validated(tmp_path):
    assert [r.name for r in read_releases()][:2] == ["hubert", "wav2vec2"]
    bad = tmp_path / "releases.yaml"
    bad.write_text("- {name: x, repo_id: a/b, hidden_size: 8, num_layers: 2, reference: r, colour: red}\n")
    with pytest.raises(ValueError, match="entry 1 \\(x\\).*colour"):
        read_releases(bad)


def test_last_state_is_the_encoder_output_after_its_final_norm(fake_wavs):
    upstream = build_upstream("tiny_wav2vec2")
    wavs, lens = fake_wavs([8_000])
    with torch.no_grad():
        out = upstream(wavs, lens)
        reference = upstream.model(wavs, attention_mask=torch.ones_like(wavs, dtype=torch.long))
    torch.testing.assert_close(out.hidden_states[-1], reference.last_hidden_state)


def test_utterance_shorter_than_the_receptive_field_gets_one_frame(fake_wavs):
    upstream = build_upstream("tiny_hubert")
    wavs, lens = fake_wavs([4_000, 100])
    with torch.no_grad():
        batch, alone = upstream(wavs, lens), upstream(wavs[1:, :100], lens[1:])
    assert batch.lengths.tolist() == [12, 1] and alone.lengths.tolist() == [1]
    torch.testing.assert_close(batch.hidden_states[-1][1, :1], alone.hidden_states[-1][0], atol=1e-5, rtol=1e-4)


def test_freeze_feature_encoder_stops_only_conv_gradients(fake_wavs):
    upstream = build_upstream("tiny_hubert").train()
    upstream.freeze_feature_encoder()
    wavs, lens = fake_wavs([8_000, 6_000])
    out = upstream(wavs, lens)
    sum(h.pow(2).mean() for h in out.hidden_states).backward()
    conv = list(upstream.model.feature_extractor.parameters())
    assert all(not p.requires_grad and p.grad is None for p in conv)
    assert all(p.grad is not None for p in upstream.model.encoder.layers.parameters())


def test_train_and_eval_reach_every_submodule(fake_wavs):
    upstream = build_upstream("tiny_wavlm")
    wavs, lens = fake_wavs([8_000])
    assert all(m.training for m in upstream.train().modules())
    with torch.no_grad():
        first, second = upstream(wavs, lens), upstream(wavs, lens)
    assert not torch.equal(first.hidden_states[-1], second.hidden_states[-1])  # dropout is active
    assert not any(m.training for m in upstream.eval().modules())


def test_tiny_weights_depend_on_the_seed_only_and_leave_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_upstream("tiny_wavlm").state_dict(), build_upstream("tiny_wavlm").state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = build_upstream("tiny_wavlm", seed=1).state_dict()
    key = "model.encoder.layers.0.attention.k_proj.weight"
    assert not torch.equal(a[key], other[key])


def test_padding_values_do_not_matter(fake_wavs):
    upstream = build_upstream("tiny_hubert")
    wavs, lens = fake_wavs([16_000, 300])
    garbage = wavs.clone()
    garbage[1, 300:] = 1.0
    with torch.no_grad():
        outputs_equal(upstream(garbage, lens), upstream(wavs, lens))


def test_directory_without_preprocessor_config_loads_as_float32(tmp_path):
    build_tiny_model("wav2vec2").half().save_pretrained(tmp_path)
    loaded = build_upstream("wav2vec2", ckpt=str(tmp_path))
    assert next(loaded.parameters()).dtype == torch.float32
    assert loaded.do_normalize  # layer-norm conv encoder: fairseq's Large recipe normalises
