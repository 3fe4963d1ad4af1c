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
# (architecture, fairseq extractor_mode, layer_norm_first): Large-style and Base-style encoders.
VARIANTS = [("hubert", "layer_norm", True), ("wav2vec2", "default", False), ("wav2vec2", "layer_norm", True)]


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
    reference = SpeechModelUpstream(model, do_normalize=layer_norm_first, norm_eps=FAIRSEQ_NORM_EPS)
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
    with pytest.raises(ValueError, match="'encoder.adapter.weight' has no transformers equivalent"):
        build_upstream("wav2vec2", ckpt=str(path))


def test_conv_layer_spec_is_parsed_without_eval():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    )
    with pytest.raises(ValueError, match="unsupported"):
        parse_conv_layers("__import__('os').getcwd()")


@pytest.mark.parametrize("arch, extractor_mode, layer_norm_first", VARIANTS[:2])
def test_outputs_match_fairseqs_own_model_code(arch, extractor_mode, layer_norm_first, tmp_path, fake_wavs):
    """s3prl ships fairseq's HuBERT / wav2vec 2.0 modules verbatim: same weights must give the same hidden states."""
    pytest.importorskip("s3prl", reason="s3prl provides the fairseq reference implementation")
    from upstream._s3prl_compat import import_s3prl_upstream

    s3prl_upstream = import_s3prl_upstream()
    if arch == "hubert":
        from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig
    else:
        from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config, Wav2Vec2Model

    model_cfg = fairseq_model_cfg(arch, extractor_mode, layer_norm_first)
    fields = {k: v for k, v in model_cfg.items() if k != "_name"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if arch == "hubert":
            fairseq_model = HubertModel(HubertConfig(**fields), HubertPretrainingConfig(), [["a", "b", "c", "d"]])
        else:
            fields = {k: v for k, v in fields.items() if k != "label_rate"}
            fairseq_model = Wav2Vec2Model(Wav2Vec2Config(**fields))
        with torch.no_grad():
            for parameter in fairseq_model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
    weights = fairseq_model.state_dict()
    task = {"normalize": layer_norm_first, "sample_rate": 16000}
    converted, original = tmp_path / "converted.pt", tmp_path / "original.pt"
    torch.save({"task_cfg": task, "model_cfg": model_cfg, "model_weight": weights, "dictionaries_symbols": [["a", "b", "c", "d"]]}, converted)
    torch.save({"cfg": {"model": model_cfg, "task": task}, "model": weights}, original)

    reference = s3prl_upstream(f"{arch}_local", path_or_url=str(converted)).eval()
    wavs, lens = fake_wavs([16_000])
    with torch.no_grad():
        expected, _ = reference(wavs, lens)
        for path in (original, converted):
            ours = build_upstream(arch, ckpt=str(path))(wavs, lens)
            assert len(ours.hidden_states) == len(expected)
            for layer, (a, b) in enumerate(zip(ours.hidden_states, expected)):
                frames = min(a.shape[1], b.shape[1])
                torch.testing.assert_close(a[:, :frames], b[:, :frames], atol=1e-4, rtol=1e-4, msg=f"layer {layer}")
