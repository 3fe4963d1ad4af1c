"""Random upstream outputs for downstream tests: no real upstream needed."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import pytest
import torch

from upstream.interface import UpstreamOutput


def make_output(
    lengths: Sequence[int], hidden_size: int, num_layers: int, generator: torch.Generator, max_len: int | None = None
) -> UpstreamOutput:
    """(B,) lengths → num_layers random (B, T, H) states; padding frames hold large random garbage."""
    frames = max_len or max(lengths)
    mask = torch.arange(frames).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B, T)
    states = []
    for _ in range(num_layers):
        valid = torch.randn(len(lengths), frames, hidden_size, generator=generator)
        garbage = 100 * torch.randn(len(lengths), frames, hidden_size, generator=generator)
        states.append(torch.where(mask.unsqueeze(-1), valid, garbage))
    return UpstreamOutput(hidden_states=states, lengths=torch.tensor(lengths))


def crop(output: UpstreamOutput, row: int) -> UpstreamOutput:
    """Utterance `row` alone: a batch of one, no padding."""
    n = int(output.lengths[row])
    return UpstreamOutput([h[row : row + 1, :n] for h in output.hidden_states], output.lengths[row : row + 1])


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture(name="make_output")
def make_output_fixture(generator: torch.Generator) -> Callable[..., UpstreamOutput]:
    """make_output(lengths, hidden_size, num_layers=1, max_len=None) with the test's generator."""

    def make(
        lengths: Sequence[int], hidden_size: int, num_layers: int = 1, max_len: int | None = None
    ) -> UpstreamOutput:
        return make_output(lengths, hidden_size, num_layers, generator, max_len)

    return make


@pytest.fixture(name="crop")
def crop_fixture() -> Callable[[UpstreamOutput, int], UpstreamOutput]:
    return crop


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """These models are tiny: one intra-op thread is fastest and avoids OpenMP oversubscription
    (2-core CI shared with other jobs ran the training test 5-10x slower with 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
