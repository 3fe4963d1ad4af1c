"""Microsoft's original WavLM `.pt` files onto transformers' WavLMModel, checked against the WavLM code s3prl ships."""
from __future__ import annotations

import pytest
import torch
from test_fairseq_ckpt import CONV

from upstream import build_upstream

LENGTHS = [16_000, 9_000, 12_345]


def wavlm_cfg(extractor_mode: str, layer_norm_first: bool) -> dict:
    """The `cfg` of an original WavLM file (WavLMConfig's fields), tiny."""
    return {
        "extractor_mode": extractor_mode, "encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
        "encoder_attention_heads": 2, "activation_fn": "gelu", "layer_norm_first": layer_norm_first,
        "conv_feature_layers": CONV, "conv_bias": extractor_mode == "layer_norm", "feature_grad_mult": 1.0,
        "normalize": layer_norm_first, "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0, "dropout_input": 0.0, "dropout_features": 0.0, "mask_prob": 0.65,
        "conv_pos": 16, "conv_pos_groups": 2, "relative_position_embedding": True, "num_buckets": 32,
        "max_distance": 100, "gru_rel_pos": True,
    }


def reference_model(cfg: dict):
    pytest.importorskip("s3prl", reason="s3prl ships Microsoft's WavLM implementation")
    from upstream._s3prl_compat import install

    install()
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WavLM(WavLMConfig(cfg))
        with torch.no_grad():
            for parameter in model.parameters():  # unit norms / zero biases would hide swapped tensors
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def reference_states(model, wav: torch.Tensor) -> list[torch.Tensor]:
    """All hidden states of one unpadded row, last = the encoder output after its final norm."""
    (_, layers), _ = model.extract_features(wav, output_layer=model.cfg.encoder_layers, ret_layer_results=True)
    final, _ = model.extract_features(wav)
    return [x.transpose(0, 1) for x, _ in layers[:-1]] + [final]


@pytest.mark.parametrize("extractor_mode, layer_norm_first", [("layer_norm", True), ("default", False)])
def test_original_wavlm_file_matches_the_reference_implementation(extractor_mode, layer_norm_first, tmp_path, fake_wavs):
    cfg = wavlm_cfg(extractor_mode, layer_norm_first)
    model = reference_model(cfg)
    path = tmp_path / "WavLM-tiny.pt"
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)

    upstream = build_upstream("wavlm_large", ckpt=str(path))
    assert type(upstream.model).__name__ == "WavLMModel" and upstream.do_normalize == layer_norm_first
    assert upstream.use_attention_mask == layer_norm_first
    wavs, lens = fake_wavs(LENGTHS)
    with torch.no_grad():
        ours = upstream(wavs, lens)  # a padded batch
        for row, n in enumerate(LENGTHS):
            wav = wavs[row : row + 1, :n]
            if layer_norm_first:  # what the original's own code does with cfg.normalize
                wav = torch.nn.functional.layer_norm(wav, wav.shape[1:])
            expected = reference_states(model, wav)
            frames = expected[0].shape[1]
            assert int(ours.lengths[row]) == frames and len(ours.hidden_states) == len(expected)
            for layer, (a, b) in enumerate(zip(ours.hidden_states, expected)):
                torch.testing.assert_close(a[row, :frames], b[0], atol=1e-4, rtol=0, msg=f"row {row} layer {layer}")


def test_an_unknown_tensor_in_a_wavlm_file_is_named(tmp_path):
    cfg = wavlm_cfg("layer_norm", True)
    weights = reference_model(cfg).state_dict()
    weights["encoder.layers.0.self_attn.extra_gate"] = torch.zeros(2)
    path = tmp_path / "odd.pt"
    torch.save({"cfg": cfg, "model": weights}, path)
    with pytest.raises(ValueError, match=r"odd.pt: checkpoint tensor 'encoder.layers.0.self_attn.extra_gate' has no place"):
        build_upstream("wavlm_large", ckpt=str(path))
