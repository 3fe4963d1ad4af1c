"""Published transformers audio-classification models scored as they are: `--upstream hfcls:<hub id or dir>`.

Nothing is trained: each fold's test utterances are classified by the model exactly as
`pipeline("audio-classification")` would (its own feature extractor, one file at a time, at its
sampling rate, softmax over its labels), so the row's scores are those a user of the published model
gets. Its labels are mapped onto the corpus' classes by name (`map_labels`; `--label-map` where names
differ); a class's probability is the sum over the model labels mapped to it, labels mapped to no
class are left out, and the prediction is the most probable class. The unit's result has the same
format as a trained unit's (both "checkpoints" are the model), so tables, bootstrap intervals and
paired tests treat the row like any other.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from upstream.interface import SAMPLE_RATE

from ..common.config import ConfigError
from ..common.io import atomic_write_text, path_label
from ..data.cross import canonical
from ..data.iemocap import Utterance
from ..data.splits import Fold
from ..reporting.metrics import score
from ..reporting.results import RESULT_FILE, TestScores, UnitResult, load_result
from ..training.batching import AudioStore

PREFIX = "hfcls:"
WEIGHT_PREFIXES = ("model", "pytorch_model")  # model.safetensors, model-00001-of-00002.safetensors, pytorch_model.bin


def weight_files(folder: Path) -> list[Path]:
    """The weights transformers loads from `folder`: its safetensors files where there are any, else its
    .bin ones (not training_args.bin, optimizer.bin and the like)."""
    files = [p for p in sorted(folder.iterdir()) if p.stem.split("-")[0] in WEIGHT_PREFIXES]
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return safetensors or [p for p in files if p.suffix == ".bin"]


SYNONYMS = {"anger": "angry", "happiness": "happy", "sadness": "sad", "fearful": "fear", "disgusted": "disgust",
            "surprised": "surprise", "neutrality": "neutral"}  # spellings of published models' labels


def is_published(name: str) -> bool:
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class LabelMapping:
    """Which of the model's labels count as which class of the corpus."""

    pairs: tuple[tuple[str, str], ...]  # (model label, corpus class), in the model's label order
    ignored: tuple[str, ...]  # model labels mapped to no class: their probability is left out
    unpredicted: tuple[str, ...]  # corpus classes no model label maps to: never predicted (recall 0)

    def describe(self) -> str:
        text = ", ".join(f"{a} → {b}" for a, b in self.pairs)
        text += f"; not mapped (left out): {', '.join(self.ignored)}" if self.ignored else ""
        return text + (f"; no model label for (never predicted): {', '.join(self.unpredicted)}" if self.unpredicted else "")


def _name(label: str) -> str:
    label = label.strip().lower()
    return canonical(SYNONYMS.get(label, label))


def map_labels(model_labels: Sequence[str], classes: Sequence[str], spec: str = "", source: str = "") -> LabelMapping:
    """Model labels → corpus classes: `spec` ("model=class,…", `--label-map`) first, the rest by name
    (case, IEMOCAP's abbreviations and common spellings aside: `happy` is IEMOCAP's `hap`)."""
    explicit: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        model_label, _, corpus_class = (s.strip() for s in item.partition("="))
        if not model_label or not corpus_class:
            raise ConfigError(f"--label-map: {item!r} is not model_label=class (e.g. anger=ang,happiness=hap)")
        if model_label not in model_labels:  # the model's spelling, else one label equal but for case
            same = [m for m in model_labels if m.lower() == model_label.lower()]
            if len(same) != 1:
                raise ConfigError(f"--label-map: {source} has no label {model_label!r}; its labels: "
                                  f"{', '.join(model_labels)}")
            model_label = same[0]
        if corpus_class not in classes:
            raise ConfigError(f"--label-map: {corpus_class!r} is not a class of the corpus; its classes: {', '.join(classes)}")
        if model_label in explicit:
            raise ConfigError(f"--label-map: {model_label!r} is mapped twice")
        explicit[model_label] = corpus_class
    by_name = {_name(c): c for c in classes}
    pairs = tuple((m, explicit.get(m) or by_name[_name(m)]) for m in model_labels
                  if m in explicit or _name(m) in by_name)
    if not pairs:
        raise ConfigError(f"{source}: none of its labels ({', '.join(model_labels)}) names a class of the corpus "
                          f"({', '.join(classes)}); map them with --label-map model_label=class,...")
    mapped = {b for _, b in pairs}
    return LabelMapping(pairs, tuple(m for m in model_labels if m not in dict(pairs)),
                        tuple(c for c in classes if c not in mapped))


@dataclass(frozen=True)
class PublishedModel:
    """A resolved `hfcls:` name: where its files are, what they are, and how its labels map."""

    name: str  # as given: hfcls:<hub id or dir>
    directory: Path  # the local folder (a Hub model's cached snapshot)
    labels: tuple[str, ...]  # config.id2label, by index
    sampling_rate: int  # its feature extractor's
    fingerprint: str  # of the config, preprocessor and weight files' contents
    mapping: LabelMapping
    multi_label: bool = False  # problem_type multi_label_classification: sigmoid per label, as the pipeline
    local: bool = True  # a folder given by path (else a Hub id, `directory` its cached snapshot)

    @property
    def source(self) -> str:
        return self.name[len(PREFIX):]

    def record(self) -> dict:
        """What `run.json` keeps of it, enough for `--report-only` without the model (`from_record`)."""
        return {"model": self.name, "folder": str(self.directory), "fingerprint": self.fingerprint,
                "labels": list(self.labels), "mapping": [list(p) for p in self.mapping.pairs],
                "ignored": list(self.mapping.ignored), "unpredicted": list(self.mapping.unpredicted),
                "described": self.mapping.describe(), "sampling_rate": self.sampling_rate,
                "multi_label": self.multi_label, "local": self.local}

    @staticmethod
    def from_record(name: str, data: dict) -> "PublishedModel":
        mapping = LabelMapping(tuple(tuple(p) for p in data["mapping"]), tuple(data["ignored"]),
                               tuple(data["unpredicted"]))
        return PublishedModel(name, Path(data["folder"]), tuple(data["labels"]), int(data["sampling_rate"]),
                              str(data["fingerprint"]), mapping, bool(data["multi_label"]), bool(data["local"]))

    @property
    def label(self) -> str:
        """Names its run folder: the Hub id, or a local folder's own name (however the path was written)."""
        return PREFIX + (self.directory.resolve().name if self.local else self.source)


def _local_folder(source: str) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or source.startswith((".", "~")) or source.count("/") != 1:
        raise ConfigError(f"--upstream {PREFIX}{source}: no such folder (and not a Hub id owner/name)")
    from huggingface_hub import snapshot_download

    try:  # the configs and one format of weights: safetensors where the repo has them, else the .bin
        folder = Path(snapshot_download(source, allow_patterns=["*.json", "model*.safetensors"]))
        if not weight_files(folder):
            folder = Path(snapshot_download(source, allow_patterns=["*.json", "pytorch_model*.bin"]))
        return folder
    except Exception as error:  # offline, unknown repo, gated: the hub raises several types
        raise ConfigError(f"--upstream {PREFIX}{source}: not a folder, and the Hub model could not be fetched "
                          f"({type(error).__name__}); download it where there is network and pass its folder") from None


def resolve_published(name: str, classes: Sequence[str], label_map: str = "") -> PublishedModel:
    """Check `name`'s folder holds an audio-classification model with labels and a feature extractor."""
    from transformers import AutoConfig, AutoFeatureExtractor
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES

    folder = _local_folder(name[len(PREFIX):])
    files = {p: folder / p for p in ("config.json", "preprocessor_config.json")}
    missing = [p for p, path in files.items() if not path.is_file()]
    weights = weight_files(folder)
    if missing or not weights:
        raise ConfigError(f"--upstream {name}: {folder} has no {missing[0] if missing else 'weights file'}; expected a "
                          "transformers audio-classification folder (config.json, preprocessor_config.json, "
                          "model.safetensors or pytorch_model.bin)")
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"--upstream {name}: {files['config.json']}: not a transformers config "
                          f"({str(error).splitlines()[0][:160]})") from None
    if config.model_type not in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES:
        raise ConfigError(f"--upstream {name}: model type {config.model_type!r} is not an audio-classification model "
                          "of transformers (AutoModelForAudioClassification)")
    if config.problem_type == "regression":
        raise ConfigError(f"--upstream {name}: its head regresses values (problem_type regression); hfcls: scores "
                          "classifiers")
    try:
        rate = AutoFeatureExtractor.from_pretrained(folder).sampling_rate
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise ConfigError(f"--upstream {name}: {files['preprocessor_config.json']}: not a feature extractor config "
                          f"({str(error).splitlines()[0][:160]})") from None
    labels = tuple(config.id2label[i] for i in range(config.num_labels))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in files.values()))
    for path in weights:
        digest.update(f"{path.name}:{content_hash(path, path.stat().st_size, path.stat().st_mtime_ns)}".encode())
    return PublishedModel(name, folder, labels, int(rate), digest.hexdigest()[:16],
                          map_labels(labels, classes, label_map, name), config.problem_type == "multi_label_classification",
                          Path(name[len(PREFIX):]).expanduser().is_dir())


def published_models(names: Sequence[str], classes: Sequence[str], label_map: str = "",
                     recorded: Path | None = None) -> dict[str, PublishedModel]:
    """Each `hfcls:` name resolved; with `recorded` (`--report-only`: the run's record), a model whose
    folder is not here (results copied elsewhere, or a Hub id: nothing is downloaded) as the run recorded it."""
    kept: dict = {}
    if recorded is not None and recorded.is_file():
        try:
            kept = json.loads(recorded.read_text(encoding="utf-8")).get("published") or {}
        except (OSError, ValueError, AttributeError):
            kept = {}
    models = {}
    for name in dict.fromkeys(names):
        if name in kept and not Path(name[len(PREFIX):]).expanduser().is_dir():
            try:
                models[name] = PublishedModel.from_record(name, kept[name])
                continue
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{recorded}: its record of {name} is incomplete; give the model's folder") from None
        models[name] = resolve_published(name, classes, label_map)
    return models


@functools.lru_cache(maxsize=16)
def content_hash(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of a weights file, once per process for the same (size, mtime): a model swapped in under
    the same name, size and time is still another model (≈ 2 s per GB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PublishedUnit:
    """One published model scored on one fold's test set."""

    model: PublishedModel
    fold: int
    key: str
    num_classes: int
    seed: int = 0  # nothing random: no training
    task: str = "categorical"

    @property
    def label(self) -> str:
        return self.model.label

    def directory(self, out: Path) -> Path:
        return out / "runs" / path_label(self.label) / f"published-{self.key}" / f"fold{self.fold}"


def class_probabilities(model: PublishedModel, classes: Sequence[str], utterances: Sequence[Utterance],
                        store: AudioStore, device: torch.device | str = "cpu") -> np.ndarray:
    """(N, classes) probabilities: the model's softmax per file (sigmoid for a multi-label head, as the
    pipeline), summed over the labels mapped to each class."""
    import torchaudio
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    extractor = AutoFeatureExtractor.from_pretrained(model.directory)
    network = AutoModelForAudioClassification.from_pretrained(model.directory).to(device).eval()
    onto = torch.zeros(len(model.labels), len(classes), dtype=torch.float64)
    for label, corpus_class in model.mapping.pairs:
        onto[model.labels.index(label), list(classes).index(corpus_class)] = 1.0
    rows = []
    with torch.inference_mode():
        for utterance in utterances:
            wav = store.get(utterance)  # 16 kHz mono, as every upstream reads it
            if model.sampling_rate != SAMPLE_RATE:
                wav = torchaudio.functional.resample(wav, SAMPLE_RATE, model.sampling_rate)
            inputs = extractor(wav.numpy(), sampling_rate=model.sampling_rate, return_tensors="pt")
            inputs = {k: v.to(device, network.dtype if v.is_floating_point() else v.dtype) for k, v in inputs.items()}
            logits = network(**inputs).logits[0].double()  # a half-precision model is fed as the pipeline feeds it
            probabilities = (logits.sigmoid() if model.multi_label else logits.softmax(-1)).cpu()
            rows.append((probabilities @ onto).numpy())
    return np.stack(rows) if rows else np.zeros((0, len(classes)))


def run_published(unit: PublishedUnit, fold: Fold, store: AudioStore, classes: Sequence[str], out: Path,
                  device: torch.device | str = "cpu") -> UnitResult:
    """Score the model on the fold's test set once (a finished unit is read back), written atomically."""
    unit_dir = unit.directory(out)
    finished = load_result(unit_dir)
    if finished is not None:
        return finished
    probabilities = class_probabilities(unit.model, classes, fold.test, store, device)
    predictions = probabilities.argmax(-1).astype(np.int64)
    s = score([u.label_index for u in fold.test], predictions, len(classes))
    scores = TestScores(100 * s.wa, 100 * s.ua, 100 * s.macro_f1, s.confusion.tolist(), predictions.tolist())
    result = UnitResult(fold.index, fold.split, fold.split_hash, 0, 0, len(fold.test), 0, [],
                        {"best": scores, "average": scores}, [u.id for u in fold.test],
                        [u.label_index for u in fold.test], {}, unit.key, list(classes))
    atomic_write_text(unit_dir / "published.json", json.dumps(unit.model.record(), indent=1) + "\n")
    atomic_write_text(unit_dir / RESULT_FILE, json.dumps(asdict(result)) + "\n")  # last: it marks the unit done
    return result
