"""fairseq checkpoints without fairseq: key/config mapping, trust flag, and agreement with fairseq's own code."""
from __future__ import annotations

import argparse
import re
import sys
import types

import pytest
import torch

from upstream import UntrustedCheckpointError, build_upstream
from upstream.fairseq_ckpt import parse_conv_layers
from upstream.hf_speech import FAIRSEQ_NORM_EPS, SpeechModelUpstream
from upstream.tiny import TINY_ARCHITECTURE, build_tiny_model

_C = TINY_ARCHITECTURE["conv_dim"][0]  # the tiny models' conv width
CONV = f"[({_C}, 10, 5)] + [({_C}, 3, 2)] * 4 + [({_C}, 2, 2)] * 2"
# (architecture, fairseq extractor_mode, layer_norm_first): Large-style (layer norm, pre-LN) and
# Base-style (group norm, post-LN) encoders of both architectures.
VARIANTS = [("hubert", "layer_norm", True), ("hubert", "default", False), ("wav2vec2", "default", False),
            ("wav2vec2", "layer_norm", True)]
PADDED = [16_000, 9_000, 12_345]


def fairseq_model_cfg(arch: str, extractor_mode: str, layer_norm_first: bool) -> dict:
    """A model config with fairseq's field names (as `cfg.model` of a hydra-era checkpoint)."""
    return {
        "_name": arch, "extractor_mode": extractor_mode, "encoder_layers": 2, "encoder_embed_dim": 32,
        "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2, "activation_fn": "gelu",
        "layer_type": "transformer", "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0,
        "encoder_layerdrop": 0.05, "dropout_input": 0.0, "dropout_features": 0.0, "final_dim": 16,
        "layer_norm_first": layer_norm_first, "conv_feature_layers": CONV, "conv_bias": extractor_mode == "layer_norm",
        "feature_grad_mult": 0.1, "conv_pos": 16, "conv_pos_groups": 2, "mask_prob": 0.65, "label_rate": 50.0,
    }


def fairseq_key(key: str, group_norm: bool) -> str:
    """transformers key -> the key fairseq's module tree gives the same tensor (written from fairseq's layout)."""
    rules = [
        (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
        (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
         r"feature_extractor.conv_layers.\1.2." if group_norm else r"feature_extractor.conv_layers.\1.2.1."),
        (r"^feature_projection\.layer_norm\.", "layer_norm."),
        (r"^feature_projection\.projection\.", "post_extract_proj."),
        (r"^masked_spec_embed$", "mask_emb"),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
        (r"^encoder\.pos_conv_embed\.conv\.", "encoder.pos_conv.0."),
        (r"\.attention\.", ".self_attn."),
        (r"(layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
        (r"\.feed_forward\.intermediate_dense\.", ".fc1."),
        (r"\.feed_forward\.output_dense\.", ".fc2."),
    ]
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def tiny_pair(arch: str, extractor_mode: str, layer_norm_first: bool):
    """A tiny transformers model (non-trivial norms) and its fairseq-named state dict, with pretraining heads."""
    group = extractor_mode == "default"
    model = build_tiny_model(arch, seed=5, feat_extract_norm="group" if group else "layer",
                             do_stable_layer_norm=layer_norm_first, conv_bias=not group)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():  # unit norms / zero biases would hide swapped keys
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    weights = {fairseq_key(k, group): v.clone() for k, v in model.state_dict().items()}
    if arch == "hubert":
        weights.update({"label_embs_concat": torch.randn(4, 16), "final_proj.weight": torch.randn(16, 32)})
    else:
        weights.update({"project_q.weight": torch.randn(16, 32), "quantizer.vars": torch.randn(1, 8, 8)})
    return model, weights


@pytest.mark.parametrize("arch, extractor_mode, layer_norm_first", VARIANTS)
def test_fairseq_checkpoint_loads_with_identical_outputs(arch, extractor_mode, layer_norm_first, tmp_path, fake_wavs):
    model, weights = tiny_pair(arch, extractor_mode, layer_norm_first)
    cfg = {"_name": None, "common": {"seed": 1}, "model": fairseq_model_cfg(arch, extractor_mode, layer_norm_first),
           "task": {"_name": f"{arch}_pretraining", "normalize": layer_norm_first, "sample_rate": 16000}}
    path = tmp_path / "checkpoint_best.pt"
    torch.save({"cfg": cfg, "model": weights, "optimizer_history": [], "extra_state": {}, "task_state": {}}, path)

    loaded = build_upstream("hubert", ckpt=str(path))  # a plain-dict cfg needs no trust flag
    assert type(loaded.model) is type(model) and loaded.do_normalize == layer_norm_first
    wavs, lens = fake_wavs([16_000, 9_000])
    reference = SpeechModelUpstream(model, do_normalize=layer_norm_first, norm_eps=FAIRSEQ_NORM_EPS).eval()
    with torch.no_grad():
        ours, expected = loaded(wavs, lens), reference(wavs, lens)
    assert torch.equal(ours.lengths, expected.lengths)
    for a, b in zip(ours.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_pickled_objects_need_the_trust_flag(tmp_path, monkeypatch, fake_wavs):
    """Legacy layout: argparse `args` and a fairseq Dictionary in `task_state` (fairseq is not importable)."""
    model, weights = tiny_pair("hubert", "layer_norm", True)
    fake_module = types.ModuleType("fairseq.data.dictionary")
    dictionary_class = type("Dictionary", (), {"__module__": "fairseq.data.dictionary"})
    fake_module.Dictionary = dictionary_class
    dictionary = dictionary_class()
    dictionary.symbols = ["<s>", "<pad>", "1", "2"]
    for name in ("fairseq", "fairseq.data"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "fairseq.data.dictionary", fake_module)
    args = argparse.Namespace(arch="hubert", normalize=True, **fairseq_model_cfg("hubert", "layer_norm", True))
    path = tmp_path / "hubert_legacy.pt"
    torch.save({"args": args, "model": weights, "task_state": {"dictionaries": [dictionary]}}, path)
    for name in ("fairseq", "fairseq.data", "fairseq.data.dictionary"):
        monkeypatch.delitem(sys.modules, name)

    with pytest.raises(UntrustedCheckpointError, match="--trust-checkpoint \\(trust_checkpoint=True\\)"):
        build_upstream("hubert", ckpt=str(path))
    loaded = build_upstream("hubert", ckpt=str(path), trust_checkpoint=True)
    wavs, lens = fake_wavs([8_000])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(wavs, lens).hidden_states[-1], SpeechModelUpstream(model, do_normalize=True, norm_eps=FAIRSEQ_NORM_EPS)(wavs, lens).hidden_states[-1]
        )


def test_unmapped_key_is_an_error(tmp_path):
    _, weights = tiny_pair("wav2vec2", "layer_norm", True)
    weights["encoder.adapter.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pt"
    torch.save({"cfg": {"model": fairseq_model_cfg("wav2vec2", "layer_norm", True), "task": {}}, "model": weights}, path)
    with pytest.raises(ValueError, match=r"odd.pt: checkpoint tensor 'encoder.adapter.weight' has no place in the "
                                         r"transformers model \(and is not a known pre-training-only tensor\)"):
        build_upstream("wav2vec2", ckpt=str(path))


def test_pretraining_only_tensors_are_dropped_and_a_wrong_shape_is_named(tmp_path, fake_wavs):
    model, weights = tiny_pair("hubert", "layer_norm", True)
    weights.update({"mask_emb": torch.randn(32), "final_proj.bias": torch.randn(16)})
    cfg = {"model": fairseq_model_cfg("hubert", "layer_norm", True), "task": {"normalize": False}}
    path = tmp_path / "hubert.pt"
    torch.save({"cfg": cfg, "model": weights}, path)
    wavs, lens = fake_wavs([8_000])
    with torch.no_grad():
        torch.testing.assert_close(build_upstream("hubert", ckpt=str(path))(wavs, lens).hidden_states[-1],
                                   SpeechModelUpstream(model)(wavs, lens).hidden_states[-1])
    weights["encoder.layers.0.fc1.weight"] = torch.zeros(3, 3)
    torch.save({"cfg": cfg, "model": weights}, path)
    with pytest.raises(ValueError, match=r"tensor 'encoder.layers.0.feed_forward.intermediate_dense.weight' has shape "
                                         r"\(3, 3\), the model expects \(64, 32\)"):
        build_upstream("hubert", ckpt=str(path))


@pytest.mark.parametrize("normalize_in", ["w2v_args", "fine-tuning task"])
def test_finetuned_checkpoint_with_a_namespace_w2v_args_reads_as_fairseq_does(normalize_in, tmp_path, fake_wavs):
    """Older fine-tuned files keep the pre-training config as one flat argparse.Namespace; `normalize`
    missing there falls back to the fine-tuning config's (fairseq asserts the two agree)."""
    model, weights = tiny_pair("wav2vec2", "layer_norm", True)
    flat = {**fairseq_model_cfg("wav2vec2", "layer_norm", True), "arch": "wav2vec2", "_name": None}
    if normalize_in == "w2v_args":
        flat["normalize"] = True
    finetuned = {f"w2v_encoder.w2v_model.{k}": v for k, v in weights.items()}
    finetuned["w2v_encoder.proj.weight"] = torch.randn(10, 32)  # the CTC head: not the encoder
    cfg = {"model": {"_name": "wav2vec_ctc", "w2v_args": argparse.Namespace(**flat), "normalize": True},
           "task": {"_name": "audio_finetuning", "normalize": True}}
    path = tmp_path / "finetuned.pt"
    torch.save({"cfg": cfg, "model": finetuned}, path)
    loaded = build_upstream("wav2vec2", ckpt=str(path), trust_checkpoint=True)  # a Namespace is pickled
    assert loaded.do_normalize is True
    wavs, lens = fake_wavs([8_000])
    with torch.no_grad():
        expected = SpeechModelUpstream(model, do_normalize=True, norm_eps=FAIRSEQ_NORM_EPS)(wavs, lens)
        torch.testing.assert_close(loaded(wavs, lens).hidden_states[-1], expected.hidden_states[-1])


def test_conv_layer_spec_is_parsed_without_eval():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    )
    with pytest.raises(ValueError, match="unsupported"):
        parse_conv_layers("__import__('os').getcwd()")


def _fairseq_reference(arch: str, model_cfg: dict):
    """fairseq's own model class (shipped in s3prl), randomly initialised with non-trivial norms."""
    if arch == "hubert":
        from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig
    else:
        from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config, Wav2Vec2Model

    fields = {k: v for k, v in model_cfg.items() if k != "_name"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if arch == "hubert":
            model = HubertModel(HubertConfig(**fields), HubertPretrainingConfig(), [["a", "b", "c", "d"]])
        else:
            model = Wav2Vec2Model(Wav2Vec2Config(**{k: v for k, v in fields.items() if k != "label_rate"}))
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


@pytest.mark.parametrize("arch, extractor_mode, layer_norm_first", VARIANTS)
def test_outputs_match_fairseqs_own_model_code(arch, extractor_mode, layer_norm_first, tmp_path, fake_wavs):
    """s3prl ships fairseq's HuBERT / wav2vec 2.0 modules verbatim: same weights must give the same hidden
    states, for a padded batch too; each row as fairseq computes it alone (its valid frames: the
    model's length formula)."""
    pytest.importorskip("s3prl", reason="s3prl provides the fairseq reference implementation")
    from upstream._s3prl_compat import import_s3prl_upstream

    s3prl_upstream = import_s3prl_upstream()
    model_cfg = fairseq_model_cfg(arch, extractor_mode, layer_norm_first)
    weights = _fairseq_reference(arch, model_cfg).state_dict()
    task = {"normalize": layer_norm_first, "sample_rate": 16000}
    converted, original = tmp_path / "converted.pt", tmp_path / "original.pt"
    torch.save({"task_cfg": task, "model_cfg": model_cfg, "model_weight": weights, "dictionaries_symbols": [["a", "b", "c", "d"]]}, converted)
    torch.save({"cfg": {"model": model_cfg, "task": task}, "model": weights}, original)

    reference = s3prl_upstream(f"{arch}_local", path_or_url=str(converted)).eval()
    wavs, lens = fake_wavs(PADDED)
    with torch.no_grad():
        alone = [reference(wavs[row : row + 1, :n], lens[row : row + 1])[0] for row, n in enumerate(PADDED)]
        for path in (original, converted):
            upstream = build_upstream(arch, ckpt=str(path))
            assert upstream.use_attention_mask == (extractor_mode == "layer_norm")
            ours = upstream(wavs, lens)
            assert len(ours.hidden_states) == len(alone[0])
            formula = upstream.model._get_feat_extract_output_lengths(lens)
            assert ours.lengths.tolist() == formula.tolist()
            for row, expected in enumerate(alone):
                frames = int(formula[row])  # s3prl's wrapper repeats the last frame up to ceil(n / 320)
                for layer, (a, b) in enumerate(zip(ours.hidden_states, expected)):
                    torch.testing.assert_close(a[row, :frames], b[0, :frames], atol=1e-4, rtol=1e-4,
                                               msg=f"row {row} layer {layer}")


def test_fairseq_hubert_padding_mask_keeps_more_frames_than_we_do():
    """fairseq HuBERT cuts the sample mask into one block per frame (16,000 samples, 49 frames: 326
    samples each) and marks a frame padding only if its whole block is: a 9,000-sample row keeps
    ceil(9000 / 326) = 28 frames in this batch, the last reaching into the padding, a count that depends
    on the batch's longest row; alone it has 27. We keep the model's own formula (27: complete
    receptive fields), i.e. the row as fairseq computes it alone."""
    pytest.importorskip("s3prl", reason="s3prl provides the fairseq reference implementation")
    from upstream._s3prl_compat import install

    install()
    model = _fairseq_reference("hubert", fairseq_model_cfg("hubert", "layer_norm", True))
    padding_mask = torch.arange(16_000)[None, :] >= torch.tensor([[16_000], [9_000]])
    features = torch.zeros(2, 49, 32)  # conv frames of 16,000 samples
    fairseq_valid = (~model.forward_padding_mask(features, padding_mask)).sum(1)
    ours = build_tiny_model("hubert")._get_feat_extract_output_lengths(torch.tensor([16_000, 9_000]))
    assert fairseq_valid.tolist() == [49, 28] and ours.tolist() == [49, 27]


