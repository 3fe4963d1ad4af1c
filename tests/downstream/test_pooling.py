"""Masked mean pooling: padding frames never count."""
import torch

from downstream.pooling import MeanPooling, length_mask

ATOL = 1e-6  # float32, sums of < 100 frames


def test_length_mask() -> None:
    mask = length_mask(torch.tensor([1, 3]), 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, True, False]]


def test_masked_mean_equals_hand_computed_mean(make_output) -> None:
    output = make_output([5, 2, 7], hidden_size=4)
    pooled = MeanPooling(4)(output.hidden_states[0], output.lengths)
    features = output.hidden_states[0]
    for row, n in enumerate([5, 2, 7]):
        expected = sum(features[row, t] for t in range(n)) / n
        torch.testing.assert_close(pooled[row], expected, atol=ATOL, rtol=0)


def test_mean_padding_invariance(make_output, crop) -> None:
    output = make_output([3, 9, 6], hidden_size=8, max_len=12)
    pool = MeanPooling(8)
    batched = pool(output.hidden_states[0], output.lengths)
    for row in range(3):
        alone = crop(output, row)
        torch.testing.assert_close(pool(alone.hidden_states[0], alone.lengths)[0], batched[row], atol=ATOL, rtol=0)
