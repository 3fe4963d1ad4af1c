import numpy as np
import pytest
import torch

from downstream.ecapa import EcapaConfig
from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel
from downstream.normalization import MaskedFeatureNorm, build_input_norm


def test_statistics_come_from_valid_frames_only_and_padding_is_zero():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 10, 4, generator=generator) * 5 + 7
    lengths = torch.tensor([10, 6, 3])
    features[1, 6:] = 1e6  # padding garbage must not enter the statistics
    features[2, 3:] = -1e6
    norm = MaskedFeatureNorm(4).train()
    output = norm(features, lengths)
    valid = torch.cat([features[0], features[1, :6], features[2, :3]])
    expected = (valid - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(torch.cat([output[0], output[1, :6], output[2, :3]]), expected, atol=1e-5, rtol=1e-5)
    assert not output[1, 6:].any() and not output[2, 3:].any()
    torch.testing.assert_close(norm.norm.running_mean, 0.1 * valid.mean(0))


def test_eval_mode_is_padding_invariant():
    generator = torch.Generator().manual_seed(1)
    norm = MaskedFeatureNorm(4).train()
    norm(torch.randn(4, 8, 4, generator=generator) * 3 + 2, torch.tensor([8, 7, 5, 2]))
    norm.eval()
    alone = torch.randn(1, 5, 4, generator=generator)
    padded = torch.cat([alone, torch.full((1, 7, 4), 1e4)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 12, 4, generator=generator)])
    out_alone = norm(alone, torch.tensor([5]))
    out_batch = norm(batch, torch.tensor([5, 12]))
    torch.testing.assert_close(out_batch[0, :5], out_alone[0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("mode, std", [("sentence", True), ("sentence_mean", False)])
def test_sentence_norm_is_speechbrains_per_utterance_normalisation_over_valid_frames(mode, std):
    torch.manual_seed(0)
    features = torch.randn(3, 9, 5) * 4 + 2
    lengths = torch.tensor([9, 6, 3])
    norm = build_input_norm(mode, 5).eval()
    out = norm(features, lengths)
    for row, n in enumerate(lengths.tolist()):
        valid = features[row, :n].numpy().astype(np.float64)
        expected = valid - valid.mean(0)
        if std:
            expected = expected / valid.std(0)
        np.testing.assert_allclose(out[row, :n].numpy(), expected, rtol=1e-4, atol=1e-4)
        assert not out[row, n:].any()  # padding stays zero
        alone = norm(features[row:row + 1, :n], lengths[row:row + 1])  # padding invariance
        torch.testing.assert_close(alone[0], out[row, :n])


def test_per_branch_modes_build_one_module_each():
    branches = [BranchSpec(1, 80, 160), BranchSpec(7, 384, 0)]
    model = DownstreamModel(DownstreamConfig(aggregator="ecapa", fusion="late", input_norm=("global", "none"),
                                             ecapa=EcapaConfig(channels=8, embedding_size=4, attention_size=4,
                                                               se_channels=4, res2net_scale=2)), branches)
    assert isinstance(model.input_norms[0], MaskedFeatureNorm) and isinstance(model.input_norms[1], torch.nn.Identity)
    assert DownstreamConfig(input_norm=True).input_norm == "global"  # configs written before per-branch modes
    assert DownstreamModel(DownstreamConfig(), [BranchSpec(1, 8, 160)]).input_norms is None
    with pytest.raises(ValueError, match="input_norm: unknown mode 'cmvn'"):
        DownstreamConfig(input_norm="cmvn")
