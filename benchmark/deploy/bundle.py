"""A trained emotion model as one self-contained folder: safetensors weights + a JSON config, no pickle.

    DIR/config.json          what rebuilds the model (`BundleConfig`, validated on load)
    DIR/model.safetensors    state dict of the whole EmotionModel (`upstreams.<i>.*`, `downstream.*`)
    DIR/tokenizer-<i>/       tokenizer files of text upstream i (transformers' JSON/text files)

Upstreams whose architecture is data are rebuilt from the bundle alone, with no checkpoint and no
network: transformers speech models (HuBERT / wav2vec 2.0 / WavLM / data2vec-audio / UniSpeech, the
tiny ones, fairseq and WavLM imports), Whisper encoders (with their feature extractor) and BERT-family
text encoders, from their stored model config (+ tokenizer files). Any other
upstream (fbank, `s3prl:<name>`, plugins) is rebuilt through the registry by name and must build
offline there; the bundle's weights then replace whatever it loaded.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from downstream.model import DownstreamConfig
from upstream import UnknownUpstreamError, build_upstream, get_spec
from upstream.hf_speech import SpeechModelUpstream
from upstream.interface import SAMPLE_RATE, Upstream
from upstream.text import TextUpstream
from upstream.whisper import WhisperEncoderUpstream

from ..common.config import ConfigError, from_dict
from ..common.io import atomic_write_text
from ..training.cache import LayerSelection, weights_fingerprint
from ..training.checkpoints import CorruptCheckpointError, load_weights, save_weights
from ..training.model import EmotionModel

FORMAT = "ser-ssl-bench/emotion-model"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
DEFAULT_WINDOW_SECONDS = 20.0


class BundleError(ValueError):
    """A model folder cannot be written or loaded; the message names the folder and what to do."""


@dataclass(frozen=True)
class UpstreamEntry:
    """One branch of the model. `build` says how to rebuild it: {"kind": "transformers_speech" |
    "transformers_whisper" | "transformers_text" | "registry", ...}; `spec` is the registry's metadata at export time."""

    name: str
    modality: str
    fingerprint: str  # benchmark.training.cache.weights_fingerprint of the exported weights
    build: dict[str, object]
    spec: dict[str, object] = field(default_factory=dict)
    ckpt: str | None = None  # the checkpoint override the model was trained with, if any


@dataclass(frozen=True)
class BundleConfig:
    """Everything but the weights. `layers`: which hidden states of each upstream the downstream
    receives ("all", "last" or a layer index); `window_seconds`: chunk length for long audio."""

    labels: tuple[str, ...]
    downstream: DownstreamConfig
    stored_layers: tuple[int, ...]
    layers: str | int
    upstreams: tuple[UpstreamEntry, ...]
    weights_sha256: str
    sample_rate: int = SAMPLE_RATE
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    reference: dict[str, object] = field(default_factory=dict)  # provenance: run, experiment, fold, test WA/UA

    @property
    def needs_text(self) -> bool:
        return any(u.modality == "text" for u in self.upstreams)

    @property
    def text_only(self) -> bool:
        """Every branch reads transcripts: prediction reads no audio (row 10)."""
        return all(u.modality == "text" for u in self.upstreams)


def _describe(upstream: Upstream, folder: Path, index: int) -> dict[str, Any]:
    """How to rebuild `upstream` without its checkpoint (writing tokenizer files into `folder`)."""
    if type(upstream) is SpeechModelUpstream:
        return {"kind": "transformers_speech", "model_config": upstream.model.config.to_dict(),
                "do_normalize": upstream.do_normalize, "norm_eps": upstream.norm_eps,
                "attention_mask": upstream.use_attention_mask}
    if type(upstream) is WhisperEncoderUpstream:
        return {"kind": "transformers_whisper", "model_config": upstream.encoder.config.to_dict(),
                "feature_extractor": upstream.feature_extractor.to_dict()}
    if type(upstream) is TextUpstream:
        tokenizer_dir = f"tokenizer-{index}"
        upstream.tokenizer.save_pretrained(str(folder / tokenizer_dir))
        return {"kind": "transformers_text", "model_config": upstream.model.config.to_dict(),
                "max_length": upstream.max_length, "tokenizer": tokenizer_dir}
    return {"kind": "registry"}


def _spec(name: str, required: bool) -> dict[str, object]:
    """The registry's metadata of `name`; an unregistered name is fine when the bundle holds its architecture."""
    try:
        spec = get_spec(name)
    except UnknownUpstreamError:
        if required:
            raise BundleError(f"upstream {name!r} is neither registered nor a transformers model: it could not "
                              "be rebuilt from the bundle; register it (see README, Add your own upstream)") from None
        return {}
    return {"backend": spec.backend, "source": spec.source, "reference": spec.reference, "licence": spec.licence}


def _check_target(folder: Path) -> None:
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG_FILE).is_file()):
        raise BundleError(f"{folder}: exists and is not a model folder; export to a new or empty folder")


def save_bundle(
    folder: Path,
    model: EmotionModel,
    layers: LayerSelection,
    labels: Sequence[str],
    *,
    ckpt: str | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    reference: dict[str, Any] | None = None,
) -> BundleConfig:
    """Write `model` (eval-ready weights loaded) into `folder`; returns the config written.

    An existing model folder is replaced: its config goes first, so a crash midway leaves a folder
    that refuses to load rather than a mix of two models.
    """
    _check_target(folder)
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    for old in folder.glob("tokenizer-*"):
        shutil.rmtree(old)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, upstream in enumerate(model.upstreams):
        build = _describe(upstream, folder, index)
        entries.append(UpstreamEntry(name=upstream.name, modality=upstream.modality,
                                     fingerprint=weights_fingerprint(upstream), build=build, ckpt=ckpt,
                                     spec=_spec(upstream.name, required=build["kind"] == "registry")))
    digest = save_weights(folder / WEIGHTS_FILE, model.state_dict())
    downstream = model.downstream
    config = BundleConfig(
        labels=tuple(labels), downstream=downstream.config,
        stored_layers=tuple(b.num_layers for b in downstream.branches), layers=layers, upstreams=tuple(entries),
        weights_sha256=digest, window_seconds=window_seconds, reference=reference or {})
    atomic_write_text(folder / CONFIG_FILE, json.dumps({"format": FORMAT, "version": VERSION, **asdict(config)},
                                                       indent=1, default=str) + "\n")
    return config


def read_config(folder: Path) -> BundleConfig:
    """The validated config of model folder `folder` (cheap: no weights are read)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise BundleError(f"{folder}: not a model folder (no {CONFIG_FILE}); create one with "
                          "`run_benchmark.py export --run DIR --experiment N --fold K --to FOLDER`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: unreadable model config ({error})") from None
    if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
        raise BundleError(f"{path}: not a model config of this toolkit (expected format {FORMAT!r})")
    if data.pop("version", None) != VERSION:
        raise BundleError(f"{path}: model format version is not {VERSION}; export it again with this version")
    try:
        config = from_dict(BundleConfig, data, path.name)
    except ConfigError as error:
        raise BundleError(f"{folder}: {error}") from None
    problem = _inconsistency(config, folder)
    if problem:
        raise BundleError(f"{path}: {problem}")
    return config


def _inconsistency(config: BundleConfig, folder: Path) -> str | None:
    """What in a parsed config cannot describe a working model, as one phrase naming the field."""
    if not config.window_seconds > 0:
        return f"window_seconds must be > 0, got {config.window_seconds}"
    if config.sample_rate != SAMPLE_RATE:
        return f"sample_rate {config.sample_rate} is not supported: models of this toolkit take {SAMPLE_RATE} Hz"
    if len(config.labels) != config.downstream.num_classes or len(set(config.labels)) != len(config.labels):
        return (f"labels lists {len(config.labels)} (distinct) names for a classifier of "
                f"downstream.num_classes = {config.downstream.num_classes} outputs")
    if len(config.stored_layers) != len(config.upstreams) or any(n < 1 for n in config.stored_layers):
        return f"stored_layers {list(config.stored_layers)} does not give >= 1 layer for each of the {len(config.upstreams)} upstream(s)"
    if config.layers not in ("all", "last") and not (isinstance(config.layers, int) and not isinstance(config.layers, bool)
                                                     and all(-n <= config.layers < n for n in config.stored_layers)):
        return f"layers {config.layers!r} is not 'all', 'last' or a layer index within the stored layers {list(config.stored_layers)}"
    for entry in config.upstreams:
        tokenizer = entry.build.get("tokenizer")
        if tokenizer is not None and not (folder / str(tokenizer)).resolve().is_relative_to(folder.resolve()):
            return f"upstream {entry.name!r}: tokenizer path {tokenizer!r} leaves the model folder"
    return None


def _from_model_config(model_config: dict[str, Any]) -> Any:
    """A randomly initialised transformers model of the stored architecture (weights replaced later)."""
    from transformers import AutoConfig, AutoModel

    with torch.random.fork_rng(devices=[]):  # initialisation must not move the caller's RNG
        return AutoModel.from_config(AutoConfig.for_model(**model_config)).eval()


def _whisper_from(build: dict[str, Any]) -> Upstream:
    """A Whisper encoder of the stored architecture with its stored feature extractor (weights replaced later)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    with torch.random.fork_rng(devices=[]):
        encoder = WhisperEncoder(WhisperConfig.from_dict(build["model_config"]))
    extractor = WhisperFeatureExtractor.from_dict(build["feature_extractor"])
    return WhisperEncoderUpstream(encoder.eval(), extractor)


def _rebuild(folder: Path, entry: UpstreamEntry) -> Upstream:
    build: dict[str, Any] = dict(entry.build)
    kind = build.get("kind")
    if kind == "transformers_speech":
        upstream: Upstream = SpeechModelUpstream(_from_model_config(build["model_config"]),
                                                 do_normalize=bool(build["do_normalize"]),
                                                 norm_eps=float(build["norm_eps"]),
                                                 attention_mask=build.get("attention_mask"))
    elif kind == "transformers_whisper":
        upstream = _whisper_from(build)
    elif kind == "transformers_text":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder / build["tokenizer"]), local_files_only=True)
        model = _from_model_config(build["model_config"])
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # as upstream.text.load_text_upstream: not part of the hidden states
        upstream = TextUpstream(model, tokenizer, int(build["max_length"]))
    elif kind == "registry":
        try:
            upstream = build_upstream(entry.name, ckpt=entry.ckpt)
        except Exception as error:  # unknown name, checkpoint missing offline, ...: say what the bundle needs
            raise BundleError(
                f"{folder}: upstream {entry.name!r} is rebuilt through the upstream registry (its architecture "
                f"is not stored in the bundle) and that failed: {error}. Make {entry.name!r} buildable offline "
                f"here (its source: {entry.ckpt or entry.spec.get('source', '?')}; a plugin upstream needs "
                "SER_UPSTREAM_PLUGINS), then load again") from None
    else:
        raise BundleError(f"{folder}: upstream {entry.name!r} has unknown build kind {kind!r}")
    upstream.name = entry.name
    return upstream.eval()


def load_bundle(folder: Path | str) -> tuple[EmotionModel, BundleConfig]:
    """Rebuild the exported model (eval mode, CPU) and check its weights against the recorded digests."""
    folder = Path(folder)
    config = read_config(folder)
    upstreams = [_rebuild(folder, entry) for entry in config.upstreams]
    model = EmotionModel(upstreams, config.downstream, stored_layers=list(config.stored_layers))
    try:
        state = load_weights(folder / WEIGHTS_FILE, config.weights_sha256)
    except CorruptCheckpointError as error:
        raise BundleError(str(error)) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise BundleError(f"{folder / WEIGHTS_FILE}: weights do not fit the model described by {CONFIG_FILE} "
                          f"({str(error).splitlines()[0]})") from None
    for upstream, entry in zip(model.upstreams, config.upstreams, strict=True):
        if weights_fingerprint(upstream) != entry.fingerprint:
            raise BundleError(f"{folder}: rebuilt upstream {entry.name!r} does not match the exported one "
                              "(fingerprint differs); export the model again")
    return model.eval(), config
