"""ECAPA-TDNN aggregator: speechbrain's model, fed relative lengths, padding-invariant in eval mode."""
import copy

import pytest
import torch
from speechbrain.dataio.dataio import length_to_mask

from downstream.catalog import count_parameters
from downstream.ecapa import EcapaAggregator, EcapaConfig, relative_lengths

SMALL = EcapaConfig(channels=32, embedding_size=16, attention_size=8, se_channels=8, res2net_scale=4)
# Eval mode, float32: alone vs padded differ only by summation order (observed ~1e-7).
ATOL = 1e-5


def small_ecapa(input_size: int = 12, **changes: object) -> EcapaAggregator:
    torch.manual_seed(0)
    config = EcapaConfig(**{**SMALL.__dict__, **changes})  # type: ignore[arg-type]
    return EcapaAggregator(input_size, config).eval()


def test_relative_lengths_recover_exact_frame_counts() -> None:
    """speechbrain rebuilds masks as arange(T) < rel * T; every 1 <= n <= T must round-trip."""
    for max_len in range(1, 200):  # through speechbrain's own mask builder
        n = torch.arange(1, max_len + 1)
        mask = length_to_mask(relative_lengths(n, max_len) * max_len, max_len=max_len)
        assert torch.equal(mask.sum(dim=1).long(), n), max_len
    for max_len in range(200, 3000):  # closed form of that count: ceil(rel * T) in float32
        n = torch.arange(1, max_len + 1)
        rel = relative_lengths(n, max_len)
        assert ((rel > 0) & (rel < 1)).all()
        assert torch.equal(torch.ceil(rel * max_len).long(), n), max_len


def test_ecapa_padding_invariance(make_output, crop) -> None:
    ecapa = small_ecapa()
    output = make_output([40, 7, 23, 1], hidden_size=12, max_len=50)
    with torch.no_grad():
        batched = ecapa(output.hidden_states[0], output.lengths)
        assert batched.shape == (4, 16)
        for row in range(4):
            alone = crop(output, row)
            torch.testing.assert_close(ecapa(alone.hidden_states[0], alone.lengths)[0], batched[row], atol=ATOL, rtol=0)


def test_stock_reflect_padding_is_not_padding_invariant(make_output, crop) -> None:
    """Why mask_padding exists: speechbrain's reflect padding lets the batch's padding leak in."""
    ecapa = small_ecapa(mask_padding=False)
    output = make_output([20, 60], hidden_size=12)
    with torch.no_grad():
        batched = ecapa(output.hidden_states[0], output.lengths)
        alone = crop(output, 0)
        assert (ecapa(alone.hidden_states[0], alone.lengths)[0] - batched[0]).abs().max() > 1e-3


def test_deepcopy_keeps_masking_hooks_on_the_copy(make_output, crop) -> None:
    ecapa = copy.deepcopy(small_ecapa())
    output = make_output([5, 30], hidden_size=12)
    with torch.no_grad():
        batched = ecapa(output.hidden_states[0], output.lengths)
        alone = crop(output, 0)
        torch.testing.assert_close(ecapa(alone.hidden_states[0], alone.lengths)[0], batched[0], atol=ATOL, rtol=0)


def test_training_step_and_batch_of_one_error(make_output) -> None:
    ecapa = small_ecapa().train()
    output = make_output([9, 4, 6], hidden_size=12)
    ecapa(output.hidden_states[0], output.lengths).square().sum().backward()
    assert all(p.grad is not None for p in ecapa.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="at least 2 utterances"):
        ecapa(output.hidden_states[0][:1], output.lengths[:1])


def test_defaults_output_size_and_parameter_count() -> None:
    ecapa = EcapaAggregator(768)
    assert ecapa.output_size == 192
    assert count_parameters(ecapa) == 7_955_328
    with torch.no_grad():
        assert ecapa.eval()(torch.randn(2, 10, 768), torch.tensor([10, 3])).shape == (2, 192)


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="multiple of"):
        EcapaConfig(channels=30, res2net_scale=8)
    with pytest.raises(ValueError, match="positive"):
        EcapaConfig(embedding_size=0)
