"""Data parallelism across the processes `torchrun` starts: NCCL on GPUs, gloo on CPU.

Every rank builds the same duration batches (same generator, same seed); each global batch is then
dealt out row by row, so a step sees exactly the utterances a single process would and duration
bucketing is kept. Gradients are averaged by `DistributedDataParallel`, with each rank's loss scaled
so that the result is the mean over the global batch. Evaluation deals out whole batches and gathers
the predictions: every utterance is scored once. Only rank 0 writes files or prints progress; the
others wait at `barrier()` where they must read what rank 0 wrote.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import ContextManager, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes (a single process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


TIMEOUT_ENV = "SER_PROCESS_GROUP_TIMEOUT_MIN"
DEFAULT_TIMEOUT_MIN = 240.0  # rank 0 alone fills a fold's feature cache while the others wait at a barrier


def process_group_timeout() -> timedelta:
    """How long a collective may wait: long enough for rank 0's feature precompute of a Large model over
    a whole fold (torch's default, 10 min for NCCL, is not); $SER_PROCESS_GROUP_TIMEOUT_MIN overrides."""
    minutes = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_MIN))
    if not minutes > 0:
        raise ValueError(f"${TIMEOUT_ENV}: expected minutes > 0, got {minutes}")
    return timedelta(minutes=minutes)


def local_device_index(local_rank: int, device_count: int) -> int:
    """The GPU of this process: LOCAL_RANK modulo the visible devices, so clusters that bind one GPU per
    task (each task sees one device, LOCAL_RANK still counts the tasks of the node) work too."""
    return local_rank % device_count


def init_from_env() -> World:
    """Join the process group that torchrun's environment describes (WORLD_SIZE > 1), else stay alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not dist.is_initialized():
        timeout = process_group_timeout()
        if torch.cuda.is_available():
            torch.cuda.set_device(local_device_index(int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timeout)
    return world()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world().parallel:
        dist.barrier()


def my_rows(batch: Sequence[T], min_rows: int = 2) -> tuple[list[T], int]:
    """This rank's share of one global batch (every size-th row) and how many of its rows are real.

    The global batches are the single process's, so a short one can leave a rank fewer than
    `min_rows` rows (BatchNorm needs two distinct ones) or none: the share is then filled up with
    other rows of the same global batch, which the trainer weights zero in the loss. They take part
    in BatchNorm's batch statistics like any row; in a model without BatchNorm they change nothing.
    Without parallelism the batch comes back whole.
    """
    current = world()
    share = list(batch[current.rank::current.size])
    real = len(share)
    if current.parallel and real < min_rows:
        start = current.rank % len(batch)
        others = [row for row in [*batch[start:], *batch[:start]] if row not in share]
        share += others[:min_rows - real]
    return share, real


def my_batches(batches: Sequence[T]) -> list[T]:
    """This rank's share of evaluation batches (whole batches, dealt round-robin)."""
    current = world()
    return list(batches[current.rank::current.size])


def gather_objects(value: T) -> list[T]:
    """`value` from every rank, in rank order (a one-element list without parallelism)."""
    current = world()
    if not current.parallel:
        return [value]
    gathered: list = [None] * current.size
    dist.all_gather_object(gathered, value)
    return gathered


def sum_across(values: Sequence[float]) -> list[float]:
    """Element-wise sum of `values` over the ranks."""
    if not world().parallel:
        return list(values)
    return [float(sum(column)) for column in zip(*gather_objects(list(values)))]


def wrap(module: nn.Module) -> nn.Module:
    """`module` under DistributedDataParallel when running in parallel, else unchanged.

    Unused parameters are allowed: a fine-tuned upstream may hold some that a forward never touches
    (e.g. wav2vec 2.0's masking embedding without SpecAugment).
    """
    if not world().parallel:
        return module
    device = next(module.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


def no_sync(module: nn.Module, skip: bool) -> ContextManager:
    """Skip DDP's gradient all-reduce for a micro-step that accumulates into the next one."""
    if skip and isinstance(module, nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


def sync_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank: after training each rank's
    own forward passes left them slightly different, and evaluation must use one model."""
    if world().parallel:
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)


def per_rank_rng_states() -> list[dict]:
    """Every rank's CPU (and CUDA) RNG state, in rank order: dropout draws differ between ranks."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return gather_objects(state)


def restore_rng_state(states: list[dict]) -> None:
    """This rank's entry of `per_rank_rng_states()`; a rank the saved run did not have keeps its own
    stream (see `stages.run_unit`) rather than sharing another rank's dropout masks."""
    if world().rank >= len(states):
        return
    state = states[world().rank]
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def from_main(value: T) -> T:
    """Rank 0's `value`, on every rank."""
    if not world().parallel:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block before the other ranks do (e.g. it fills a cache that they then read)."""
    main = world().is_main
    if not main:
        barrier()
    yield
    if main:
        barrier()
