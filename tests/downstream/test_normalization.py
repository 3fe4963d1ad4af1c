import torch

from downstream.normalization import MaskedFeatureNorm


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
