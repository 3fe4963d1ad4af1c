"""Layer featurizers: last, index, weighted (SUPERB)."""
import pytest
import torch

from downstream.featurizer import LayerSelection, WeightedLayerSum, build_featurizer


def test_last_and_index_select_layers(make_output) -> None:
    states = make_output([4, 2], hidden_size=3, num_layers=5).hidden_states
    assert build_featurizer("last", 5)(states) is states[-1]
    assert build_featurizer(2, 5)(states) is states[2]
    assert build_featurizer(-2, 5)(states) is states[3]


@pytest.mark.parametrize("layer", [0, 3, 4])
def test_weighted_with_one_hot_weights_equals_layer_selection(make_output, layer: int) -> None:
    states = make_output([6, 3], hidden_size=5, num_layers=5).hidden_states
    weighted = build_featurizer("weighted", 5)
    assert isinstance(weighted, WeightedLayerSum)
    with torch.no_grad():  # softmax of these logits is exactly one-hot in float32
        weighted.weights.fill_(-1e4)
        weighted.weights[layer] = 0.0
    assert weighted.layer_weights.tolist() == [float(i == layer) for i in range(5)]
    torch.testing.assert_close(weighted(states), LayerSelection(5, layer)(states), atol=0, rtol=0)


def test_weighted_starts_uniform_and_learns(make_output) -> None:
    states = make_output([4], hidden_size=3, num_layers=4).hidden_states
    weighted = WeightedLayerSum(4)
    torch.testing.assert_close(weighted.layer_weights, torch.full((4,), 0.25))
    torch.testing.assert_close(weighted(states), torch.stack(states).mean(0))
    weighted(states).sum().backward()
    assert weighted.weights.grad is not None and weighted.weights.grad.abs().sum() > 0


@pytest.mark.parametrize("spec", ["first", 5, -6, 1.5, True])
def test_bad_featurizer_specs_are_errors(spec: object) -> None:
    with pytest.raises(ValueError, match="layer index|featurizer"):
        build_featurizer(spec, 5)  # type: ignore[arg-type]


def test_wrong_layer_count_is_an_error(make_output) -> None:
    with pytest.raises(ValueError, match="BranchSpec"):
        build_featurizer("weighted", 3)(make_output([2], hidden_size=2, num_layers=4).hidden_states)
