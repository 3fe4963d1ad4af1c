"""What a planned run will cost before it starts: disk, host RAM and GPU memory, per unit and in total.

Everything follows from parameter counts (`upstream.architecture`, the modules built on the meta
device: no weights needed, so the paper profile is sized offline) and the corpus' durations.
Written here because no library sizes this trainer's own files. The disk figures are exact up to
file headers: a checkpoint is the float32 state of what `training.resume.model_state` saves; a
resume state holds AdamW's two moments per trainable parameter (the weights it resumes are the epoch's
checkpoint file). `unit_peak` counts what a unit holds at once while it trains (see `training.resume`);
afterwards what `Profile.keep` retains. Memory is an approximation: host RAM = the run's audio as
int16 + the unit's cached features + the larger of averaging (top-k states and their mean) and
serialising a resume state twice; GPU = float32 weights + gradients + AdamW moments + activations
of one `max_batch_seconds` batch (per transformer layer and token 34·H + 5·heads·T bytes in 16 bits,
Korthikanti et al. 2022, twice that in float32; ECAPA ≈ 60 float32 maps of channels × frames).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from downstream.model import BranchSpec, DownstreamModel
from upstream import get_spec
from upstream.architecture import ArchitectureSize, architecture_size

from ..common.config import ConfigError
from ..common.io import free_bytes
from ..data.iemocap import Utterance
from ..data.splits import Fold
from ..reporting.results import CHECKPOINT_KINDS, load_result
from ..training.config import TrainConfig
from .definitions import Profile
from .plan import FinetuneUnit, FrozenUnit, Unit, cache_id, unit_layers
from .published import PublishedUnit, weight_files
from .stages import downstream_config

SAMPLE_RATE = 16_000
CACHE_BYTES = {"float16": 2, "float32": 4}
SAFETENSORS_ENTRY = 64  # header bytes per tensor besides its name (dtype, shape, offsets in JSON)
ECAPA_MAPS = 60
RECORD_BYTES = (1000, 32, 260)  # result.json: fixed + per test utterance (id, label, 2 predictions); log.jsonl per epoch
RESUME_PER_TENSOR, RESUME_FIXED = 800, 12_000  # torch.save records of AdamW's state per tensor; RNG states
TOKENS_PER_WORD = 1.3  # text upstreams: subword tokens per word, +2 special tokens (no tokenizer offline)


@dataclass(frozen=True)
class UnitCost:
    """Bytes of one unit. `peak_disk`: most it holds at once while training; `retained`: what stays."""

    unit: str
    checkpoint: int
    resume: int
    caches: dict[str, int]  # cache id -> bytes of the feature caches it reads (shared between units)
    peak_disk: int
    retained: int
    host_ram: int
    gpu: dict[str, int]
    finished: bool = False

    @property
    def gpu_total(self) -> int:
        return sum(self.gpu.values())


@dataclass(frozen=True)
class RunCost:
    units: list[UnitCost]
    peak_disk: int  # most the run adds to --out at once (units in plan order; finished ones add nothing)
    retained: int  # what the run leaves (retention applied)
    unsized: list[str] = field(default_factory=list)  # upstreams without an architecture (not counted)

    @property
    def host_ram(self) -> int:
        return max((u.host_ram for u in self.units), default=0)

    @property
    def gpu(self) -> int:
        return max((u.gpu_total for u in self.units), default=0)


def frames(samples: int, size: ArchitectureSize | None, name: str) -> int:
    """Frames an audio upstream emits for `samples` (its receptive field and stride, as its lengths)."""
    spec = get_spec(name)
    rate = spec.downsample_rate or 320
    window = 400 if spec.backend in ("fbank",) or (size and size.conv_channels) else rate
    return max(1, (samples - window) // rate + 1)


def _tokens(utterance: Utterance) -> int:
    return int(math.ceil(TOKENS_PER_WORD * len(utterance.text.split()))) + 2


def cache_bytes(utterances: Sequence[Utterance], name: str, size: ArchitectureSize | None, layers: int,
                dtype: str) -> int:
    """A feature cache file: per utterance its selected layers (frames × hidden) and a layer count."""
    spec = get_spec(name)
    per_frame = layers * spec.hidden_size * CACHE_BYTES[dtype]
    total = 0
    for u in utterances:
        n = _tokens(u) if spec.modality == "text" else frames(round(u.duration * SAMPLE_RATE), size, name)
        total += n * per_frame + 8 + (layers + 1) * (SAFETENSORS_ENTRY + len(u.id) + 3)
    return total


def _state_bytes(module: torch.nn.Module, prefix: str) -> tuple[int, int]:
    """(float32 bytes of the state dict saved under `prefix` incl. safetensors headers, trainable parameters)."""
    state = module.state_dict()
    nbytes = sum(t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in state.values())
    header = sum(len(prefix) + len(key) + SAFETENSORS_ENTRY for key in state)
    return nbytes + header, sum(p.numel() for p in module.parameters() if p.requires_grad)


def _downstream(unit: Unit, profile: Profile, branch_sizes: Sequence[tuple[int, int, int]]) -> torch.nn.Module:
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        return DownstreamModel(downstream_config(unit, profile), [BranchSpec(*sizes) for sizes in branch_sizes])


def _activations(size: ArchitectureSize | None, name: str, config: TrainConfig, longest: float, unit: Unit,
                 channels: int) -> int:
    """Activation bytes of one training batch of `config.max_batch_seconds` (see the module docstring)."""
    spec = get_spec(name)
    half = config.precision == "bf16"
    if isinstance(unit, FrozenUnit):  # features from the cache; the aggregator holds the activations
        tokens = int(config.max_batch_seconds * (spec.frame_rate or 50.0))
        return ECAPA_MAPS * channels * tokens * 4 if unit.aggregator == "ecapa" else tokens * spec.hidden_size * 4
    return finetune_activations(size, config.max_batch_seconds, longest, half, spec.frame_rate or 50.0)


def finetune_activations(size: ArchitectureSize | None, batch_seconds: float, longest_s: float, half: bool,
                         frame_rate: float = 50.0) -> int:
    """Activation bytes a fine-tuned transformer upstream keeps for backward over one batch of
    `batch_seconds` whose longest utterance lasts `longest_s` (also used by bench/gpu_check.py)."""
    if size is None or not size.transformer_layers:
        return 0
    tokens, length = int(batch_seconds * frame_rate), int(longest_s * frame_rate)
    per_layer = tokens * (34 * size.hidden_size + 5 * size.attention_heads * length)
    transformer = size.transformer_layers * per_layer * (1 if half else 2)
    conv = size.conv_channels * int(batch_seconds * SAMPLE_RATE / 5) * 4 * 2  # first conv layer, transient
    return max(transformer, conv)


def unit_peak(checkpoint: int, resume: int, top_k: int, epochs: int) -> int:
    """Most a unit holds at once (`training.resume`): while epoch e's resume state is written, the
    ranked epoch files, epoch e-1's and e's, and the old and new resume state; at the end, the ranked
    files, the last epoch's and the average beside one resume state."""
    training = min(top_k + 2, epochs) * checkpoint + (2 if epochs > 1 else 1) * resume
    averaging = (min(top_k + 1, epochs) + 1) * checkpoint + resume
    return max(training, averaging)


def retained_checkpoints(keep: str, top_k: int, reported: frozenset[str]) -> int:
    """Checkpoint files a finished unit keeps: all (top-k + average), reported (the average, and the
    best epoch when `reported` has it), average."""
    return {"all": top_k + 1, "reported": 1 + ("best" in reported), "average": 1}[keep]


def unit_cost(unit: Unit, profile: Profile, fold: Fold, out: Path, audio_bytes: int,
              measured: dict[str, ArchitectureSize | None] | None = None,
              reported: frozenset[str] = frozenset(CHECKPOINT_KINDS)) -> tuple[UnitCost, list[str]]:
    """The cost of `unit`, and the upstreams it reads that have no architecture to size. `measured`:
    architecture sizes by upstream name, filled as they are measured (one run sizes each upstream once);
    `reported`: the checkpoint kinds the run's rows read from it (`plan.reported_checkpoints`)."""
    if isinstance(unit, PublishedUnit):  # no training: its weights in memory, its result on disk
        weights = sum(p.stat().st_size for p in weight_files(unit.model.directory))
        records = RECORD_BYTES[0] + RECORD_BYTES[1] * len(fold.test)
        return UnitCost(str(unit.directory(out).relative_to(out)), 0, 0, {}, records, records, audio_bytes + weights,
                        {"weights": weights, "gradients": 0, "optimizer": 0, "activations": 0},
                        load_result(unit.directory(out)) is not None), []
    names = [unit.upstream] if isinstance(unit, FinetuneUnit) else list(unit.upstreams)
    measured = {} if measured is None else measured
    for name in names:
        if name not in measured:
            measured[name] = architecture_size(name)
    sizes = {name: measured[name] for name in names}
    unsized = [name for name, size in sizes.items() if size is None]
    finished = load_result(unit.directory(out)) is not None
    if unsized:  # only loading its checkpoint would tell its size: the unit is left out of the totals
        return UnitCost(str(unit.directory(out).relative_to(out)), 0, 0, {}, 0, 0, 0,
                        {"weights": 0, "gradients": 0, "optimizer": 0, "activations": 0}, finished), unsized
    specs = {name: get_spec(name) for name in names}
    config = profile.for_task(profile.finetune_for(unit.upstream) if isinstance(unit, FinetuneUnit) else profile.frozen,
                              unit.task)
    utterances = [*fold.train, *fold.valid, *fold.test]
    layers = [specs[n].num_layers if unit_layers(unit) == "all" else 1 for n in names]
    downstream = _downstream(unit, profile, [(n_layers, specs[n].hidden_size, specs[n].downsample_rate)
                                             for n_layers, n in zip(layers, names)])
    head_bytes, head_trainable = _state_bytes(downstream, "downstream.")
    upstream_bytes = sum(s.state_bytes for s in sizes.values() if s)
    if isinstance(unit, FinetuneUnit):
        size = sizes[unit.upstream]
        trainable = head_trainable + (size.trainable_when_finetuned if size and config.freeze_feature_encoder
                                      else size.parameters if size else 0)
        header = (size.key_chars + size.tensors * (len("upstreams.0.") + SAFETENSORS_ENTRY)) if size else 0
        checkpoint = upstream_bytes + head_bytes + header
        caches: dict[str, int] = {}
    else:
        trainable, checkpoint = head_trainable, head_bytes
        caches = {cache_id(unit, i): cache_bytes(utterances, name, sizes[name], n_layers, profile.cache_dtype)
                  for i, (name, n_layers) in enumerate(zip(names, layers))}
    tensors = len(list(downstream.parameters())) + (size.tensors if isinstance(unit, FinetuneUnit) and size else 0)
    resume = 8 * trainable + RESUME_PER_TENSOR * tensors + RESUME_FIXED  # the weights are an epoch file
    kept = min(config.top_k, config.epochs)
    peak_disk = unit_peak(checkpoint, resume, config.top_k, config.epochs)
    base, per_test, per_epoch = RECORD_BYTES
    records = base + per_test * len(fold.test) + per_epoch * (config.epochs + 1)
    retained = retained_checkpoints(profile.keep, kept, reported) * checkpoint + records
    host_ram = audio_bytes + sum(caches.values()) + max((kept + 1) * checkpoint, 2 * resume + checkpoint)
    longest = max((u.duration for u in fold.train), default=0.0)
    activations = sum(_activations(sizes[n], n, config, longest, unit, profile.ecapa.channels) for n in names)
    gpu = {"weights": upstream_bytes + head_bytes, "gradients": 4 * trainable, "optimizer": 8 * trainable,
           "activations": activations}
    return UnitCost(str(unit.directory(out).relative_to(out)), checkpoint, resume, caches, peak_disk, retained,
                    host_ram, gpu, finished), unsized


def estimate(units: Sequence[Unit], profile: Profile, folds: Mapping[int, Fold], out: Path,
             reported: Mapping[str, frozenset[str]] | None = None) -> RunCost:
    """Cost of running `units` in plan order into `out` (finished units add nothing; caches live until
    their last reader finishes when `profile.keep_cache` is false). `reported`: unit key → checkpoint
    kinds its rows read (default: both)."""
    everyone = {u.id: u for fold in folds.values() for u in (*fold.train, *fold.valid, *fold.test)}
    audio = sum(2 * round(u.duration * SAMPLE_RATE) for u in everyone.values())
    costs, unsized = [], []
    measured: dict[str, ArchitectureSize | None] = {}
    for unit in units:
        kinds = (reported or {}).get(unit.key, frozenset(CHECKPOINT_KINDS))
        cost, missing = unit_cost(unit, profile, folds[unit.fold], out, audio, measured, kinds)
        costs.append(cost)
        unsized += [name for name in missing if name not in unsized]
    last_reader = {cid: index for index, cost in enumerate(costs) for cid in cost.caches}
    held = peak = 0
    cache_sizes: dict[str, int] = {}
    for index, cost in enumerate(costs):
        if cost.finished:
            continue
        for cid, nbytes in cost.caches.items():
            if cid not in cache_sizes:
                cache_sizes[cid] = nbytes
                held += nbytes
        peak = max(peak, held + cost.peak_disk)
        held += cost.retained
        if not profile.keep_cache:
            for cid in [c for c in cache_sizes if last_reader[c] == index]:
                held -= cache_sizes.pop(cid)
    return RunCost(costs, peak, held, unsized)


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e7 else f"{nbytes / 1e6:.2f} MB"


def format_estimate(cost: RunCost, free: int | None = None) -> str:
    """The estimate as a table (one unit a line) and its totals; `free`: free bytes on --out, if known."""
    header = ("unit", "checkpoint", "resume", "caches", "peak disk", "kept", "host RAM", "GPU", "of which activations")
    rows = [header]
    for u in cost.units:
        rows.append((u.unit + (" (finished)" if u.finished else ""), _gb(u.checkpoint), _gb(u.resume),
                     _gb(sum(u.caches.values())) if u.caches else "-", _gb(u.peak_disk), _gb(u.retained),
                     _gb(u.host_ram), _gb(u.gpu_total), _gb(u.gpu["activations"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    pending = sum(not u.finished for u in cost.units)
    lines.append(f"total ({pending} of {len(cost.units)} unit(s) to run, GB = 10^9 bytes): peak disk "
                 f"{_gb(cost.peak_disk)} at once" + (f" (free on the output folder: {_gb(free)})" if free is not None else "")
                 + f", {_gb(cost.retained)} left after the run; host RAM up to {_gb(cost.host_ram)}; "
                 f"GPU memory up to {_gb(cost.gpu)}")
    if cost.unsized:
        lines.append(f"not counted (no architecture to size them): {', '.join(cost.unsized)}")
    return "\n".join(lines)


def check_disk(out: Path, cost: RunCost) -> None:
    """Stop before training when the run would not fit on the disk of `out` (one line, both numbers)."""
    free = free_bytes(out)
    if free is not None and cost.peak_disk > free:
        raise ConfigError(f"{out}: the run needs up to {cost.peak_disk / 1e9:.1f} GB at once (see --estimate) but "
                          f"only {free / 1e9:.1f} GB are free there; free space, choose another --out, set the "
                          "profile's keep: average, or pass --no-disk-check")
