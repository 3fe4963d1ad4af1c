import pytest
import torch

from benchmark.training.checkpoints import (
    CorruptCheckpointError,
    load_training_state,
    load_weights,
    save_training_state,
    save_weights,
)


def test_weights_round_trip_and_corruption_is_detected(tmp_path):
    state = {"w": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), "n": torch.tensor(7)}
    path = tmp_path / "epoch001.safetensors"
    digest = save_weights(path, state)
    loaded = load_weights(path, digest)
    assert torch.equal(loaded["w"], state["w"]) and loaded["n"].item() == 7
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CorruptCheckpointError, match="checksum differs"):
        load_weights(path, digest)
    with pytest.raises(CorruptCheckpointError, match="not a readable safetensors checkpoint"):
        load_weights(path)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one flipped bit, same size
    with pytest.raises(CorruptCheckpointError, match="checksum differs"):
        load_weights(path, digest)


def test_resume_state_round_trip_and_corruption_is_detected(tmp_path):
    path = tmp_path / "resume.pt"
    state = {"epoch": 3, "top_k": [{"epoch": 2, "accuracy": 0.5, "file": "e", "sha256": "x"}],
             "generator": torch.Generator().manual_seed(1).get_state()}
    save_training_state(path, state)
    loaded = load_training_state(path)
    assert loaded["epoch"] == 3 and loaded["top_k"] == state["top_k"]
    assert torch.equal(loaded["generator"], state["generator"])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError, match="does not match its recorded checksum"):
        load_training_state(path)
