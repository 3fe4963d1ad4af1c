"""Each checkpoint fed as it was pre-trained: attention mask by conv-encoder norm, batch-independent
evaluation, and the pre-training recipe's waveform normalisation pinned per release."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from upstream import build_upstream
from upstream.hf_speech import SpeechModelUpstream
from upstream.releases import Release, build_release, read_releases
from upstream.tiny import GROUP_NORM_FAMILY, build_tiny_model

LENGTHS = [16_000, 8_000, 12_345]


def _direct(model, wavs, mask: bool):
    """The transformers model called directly (hidden states, last = encoder output)."""
    attention_mask = (wavs != 0).long() if mask else None
    out = model(wavs, attention_mask=attention_mask, output_hidden_states=True)
    return [*out.hidden_states[:-1], out.last_hidden_state]


def _padded(fake_wavs):
    wavs, lens = fake_wavs(LENGTHS)
    for row, n in enumerate(lens.tolist()):
        wavs[row, :n] += 1e-3  # no exact zeros inside an utterance: `wavs != 0` is its mask
    return wavs, lens


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2", "wavlm"])
def test_layer_norm_family_gets_the_attention_mask_and_matches_transformers_on_a_padded_batch(kind, fake_wavs):
    model = build_tiny_model(kind, seed=2)
    upstream = SpeechModelUpstream(model).eval()
    assert upstream.use_attention_mask and not upstream.padding_reaches_outputs
    wavs, lens = _padded(fake_wavs)
    with torch.no_grad():
        ours, direct = upstream(wavs, lens), _direct(model, wavs, mask=True)
        lengths = model._get_feat_extract_output_lengths(lens)
        assert ours.lengths.tolist() == lengths.tolist()
        for layer, (a, b) in enumerate(zip(ours.hidden_states, direct, strict=True)):
            for row, n in enumerate(lengths.tolist()):
                torch.testing.assert_close(a[row, :n], b[row, :n], atol=1e-5, rtol=0, msg=f"layer {layer} row {row}")


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2", "wavlm"])
def test_group_norm_family_gets_no_mask_and_is_evaluated_as_each_row_alone(kind, fake_wavs):
    """Base models: transformers' guidance is zero padding and no mask; a padded batch leaks into the
    short rows through group norm, so evaluation runs equal-length groups (here: each row alone)."""
    model = build_tiny_model(kind, seed=2, **GROUP_NORM_FAMILY)
    upstream = SpeechModelUpstream(model).eval()
    assert not upstream.use_attention_mask and upstream.padding_reaches_outputs
    wavs, lens = _padded(fake_wavs)
    with torch.no_grad():
        ours = upstream(wavs, lens)
        padded_direct = _direct(model, wavs, mask=False)
        for row, n in enumerate(lens.tolist()):
            alone = _direct(model, wavs[row : row + 1, :n], mask=False)
            frames = alone[0].shape[1]
            assert int(ours.lengths[row]) == frames
            for layer, (a, b) in enumerate(zip(ours.hidden_states, alone, strict=True)):
                torch.testing.assert_close(a[row, :frames], b[0], atol=1e-5, rtol=0, msg=f"layer {layer} row {row}")
            if row:  # what the batch would have given: not the same (so grouping is needed)
                assert not torch.allclose(padded_direct[-1][row, :frames], alone[-1][0], atol=1e-3)
        # training pads (no mask): exactly transformers on the zero-padded batch
        batch = upstream.forward_padded(wavs, lens)
        for a, b in zip(batch.hidden_states, padded_direct, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_equal_length_rows_are_evaluated_together_and_in_order(fake_wavs):
    upstream = build_upstream("tiny_wav2vec2_groupnorm")
    wavs, lens = fake_wavs([9_000, 16_000, 9_000, 4_000])
    calls = []
    original = upstream.forward_padded
    upstream.forward_padded = lambda w, n: calls.append(n.tolist()) or original(w, n)  # type: ignore[method-assign]
    with torch.no_grad():
        out = upstream(wavs, lens)
        singles = [original(wavs[i : i + 1, : int(n)], lens[i : i + 1]) for i, n in enumerate(lens)]
    assert sorted(calls) == [[4_000], [9_000, 9_000], [16_000]]
    for row, single in enumerate(singles):
        n = int(single.lengths[0])
        torch.testing.assert_close(out.hidden_states[-1][row, :n], single.hidden_states[-1][0], atol=1e-5, rtol=0)


def test_the_release_file_overrides_the_family_rule(tmp_path):
    upstream = SpeechModelUpstream(build_tiny_model("hubert"), attention_mask=False)
    assert not upstream.use_attention_mask and upstream.padding_reaches_outputs
    with pytest.raises(ValueError, match="attention_mask_reason"):
        read_releases_from([{**_entry("x"), "attention_mask": False}], tmp_path)
    [release] = read_releases_from([_entry("x", attention_mask=False, attention_mask_reason="measured")], tmp_path)
    assert release.attention_mask is False


def _entry(name: str, **fields) -> dict:
    return {"name": name, "repo_id": "a/b", "hidden_size": 32, "num_layers": 3, "reference": "r",
            "do_normalize": False, "normalize_source": "recipe", **fields}


def read_releases_from(entries: list[dict], directory: Path):
    path = directory / "releases.yaml"
    path.write_text(json.dumps(entries))  # JSON is YAML
    return read_releases(path)


def test_every_release_pins_do_normalize_from_its_pretraining_recipe(tmp_path):
    releases = {release.name: release for release in read_releases()}
    expected = {"hubert": True, "wav2vec2": True, "hubert_base": False, "wav2vec2_base": False,
                "wavlm_base_plus": False, "wavlm_large": True}
    assert {name: release.do_normalize for name, release in releases.items()} == expected
    assert all(release.normalize_source for release in releases.values())
    with pytest.raises(ValueError, match=r"entry 1 \(x\).*do_normalize"):
        read_releases_from([{k: v for k, v in _entry("x").items() if k != "do_normalize"}], tmp_path)
    with pytest.raises(ValueError, match="true or false"):
        read_releases_from([_entry("x", do_normalize="yes")], tmp_path)


def test_a_release_is_fed_as_pinned_whatever_its_hub_preprocessor_says(tmp_path, fake_wavs):
    """facebook/wav2vec2-base's preprocessor_config.json says do_normalize true; pre-training did not."""
    build_tiny_model("wav2vec2", **GROUP_NORM_FAMILY).save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    release = Release(**_entry("wav2vec2_base", repo_id=str(tmp_path)))
    pinned = build_release(release)
    assert pinned.do_normalize is False and not pinned.use_attention_mask
    assert build_release(release, normalize=True).do_normalize is True  # an explicit choice still wins
    # a --upstream-ckpt directory is another checkpoint: fed as it says
    assert build_release(release, ckpt=str(tmp_path)).do_normalize is True
