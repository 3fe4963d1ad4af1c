import pytest
import torch

from benchmark.training.averaging import RankedCheckpoint, average_state_dicts, update_top_k


def test_average_of_known_state_dicts_is_their_mean_and_counters_come_from_the_first():
    states = [
        {"w": torch.tensor([1.0, 2.0]), "half": torch.tensor([1.0], dtype=torch.float16),
         "num_batches_tracked": torch.tensor(10)},
        {"w": torch.tensor([3.0, 6.0]), "half": torch.tensor([2.0], dtype=torch.float16),
         "num_batches_tracked": torch.tensor(20)},
        {"num_batches_tracked": torch.tensor(30), "w": torch.tensor([5.0, 10.0]),  # order does not matter
         "half": torch.tensor([3.0], dtype=torch.float16)},
    ]
    averaged = average_state_dicts(states)
    torch.testing.assert_close(averaged["w"], torch.tensor([3.0, 6.0]))
    assert averaged["half"].dtype == torch.float16 and averaged["half"].item() == 2.0
    assert averaged["num_batches_tracked"].dtype == torch.int64 and averaged["num_batches_tracked"].item() == 10


def test_average_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="different entries"):
        average_state_dicts([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}])
    with pytest.raises(ValueError, match="no state dicts"):
        average_state_dicts([])


def test_top_k_keeps_exactly_the_k_best_with_earlier_epochs_winning_ties():
    accuracies = [0.30, 0.50, 0.40, 0.50, 0.20, 0.60, 0.45, 0.50, 0.10]
    kept: list[RankedCheckpoint] = []
    entered_flags = []
    for epoch, accuracy in enumerate(accuracies, 1):
        kept, entered = update_top_k(kept, RankedCheckpoint(epoch, accuracy, f"e{epoch}", ""), 3)
        entered_flags.append(entered)
    assert [(e.epoch, e.accuracy) for e in kept] == [(6, 0.60), (2, 0.50), (4, 0.50)]
    assert entered_flags == [True, True, True, True, False, True, False, False, False]  # epoch 8 only ties
    assert len(update_top_k([], RankedCheckpoint(1, 0.1, "f", ""), 5)[0]) == 1
