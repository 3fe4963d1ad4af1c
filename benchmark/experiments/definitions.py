"""Experiments (one Table 1 row each) and profiles (which models and settings a run uses), as data."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from downstream.ecapa import EcapaConfig

from ..common.config import ConfigError, load_config
from ..training.loop import TrainConfig

EXPERIMENTS_DIR = Path(__file__).parent  # table<N>/*.yaml rows and profiles/*.yaml beside this module
PROFILES_DIR = EXPERIMENTS_DIR / "profiles"


@dataclass(frozen=True)
class ExperimentConfig:
    """One row: branches (paper upstream names) → [fusion] → aggregator → linear, and what it reports.

    A row with one fine-tuned branch and `mean` is read from that branch's fine-tuning unit (stage 1);
    every other row trains its aggregator on frozen features (stage 2), taken from each branch's
    averaged fine-tuned upstream where `finetune` is true, else from the upstream as it is.
    """

    id: int
    description: str
    branches: tuple[str, ...]
    finetune: tuple[bool, ...]
    aggregator: Literal["mean", "ecapa"]
    fusion: Literal["none", "early", "late"] = "none"
    checkpoint: Literal["best", "average"] = "average"
    featurizer: str | int = "last"
    input_norm: bool = False
    set: str = ""

    def __post_init__(self) -> None:
        if not self.branches or len(self.finetune) != len(self.branches):
            raise ValueError(f"finetune lists {len(self.finetune)} flags for {len(self.branches)} branches; give one per branch")
        if (self.fusion == "none") != (len(self.branches) == 1):
            raise ValueError(f"fusion {self.fusion!r} does not fit {len(self.branches)} branch(es): use none for one, early/late for more")

    @property
    def is_finetune_row(self) -> bool:
        return self.aggregator == "mean" and len(self.branches) == 1 and self.finetune[0]


@dataclass(frozen=True)
class Profile:
    """How paper names map to registered upstreams, and the training settings of both stages."""

    name: str
    upstreams: dict[str, str] = field(default_factory=dict)
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(finetune_upstream=True))
    frozen: TrainConfig = field(default_factory=TrainConfig)
    ecapa: EcapaConfig = field(default_factory=EcapaConfig)
    cache_dtype: Literal["float16", "float32"] = "float16"

    def __post_init__(self) -> None:
        if not self.finetune.finetune_upstream or self.frozen.finetune_upstream:
            raise ValueError("finetune.finetune_upstream must be true and frozen.finetune_upstream false")

    def resolve(self, name: str) -> str:
        return self.upstreams.get(name, name)


def load_profile(name: str) -> Profile:
    """A shipped profile by name (`demo`, `paper`) or a profile YAML file of the user's."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        if path.suffix in (".yaml", ".yml"):
            raise ConfigError(f"--profile: {path}: profile file does not exist")
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ConfigError(f"--profile: unknown profile {name!r} (known: {known})")
    return load_config(Profile, path)


def load_table(table: int | str) -> list[ExperimentConfig]:
    """Every experiment of `experiments/table<table>/`, by id; ids must be unique."""
    folder = EXPERIMENTS_DIR / f"table{table}"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"--table: no experiment files in {folder}")
    experiments = [load_config(ExperimentConfig, path) for path in files]
    seen: dict[int, str] = {}
    for path, experiment in zip(files, experiments):
        if experiment.id in seen:
            raise ConfigError(f"{path.name}: id {experiment.id} is also used by {seen[experiment.id]}")
        seen[experiment.id] = path.name
    return sorted(experiments, key=lambda e: e.id)


def select(experiments: list[ExperimentConfig], ids: tuple[int, ...]) -> list[ExperimentConfig]:
    by_id = {e.id: e for e in experiments}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ConfigError(f"--experiment: no experiment {missing[0]} (known: {', '.join(map(str, by_id))})")
    return [by_id[i] for i in ids]
