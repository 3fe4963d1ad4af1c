"""`export --format transformers`: a fold's fine-tuned mean-pooling model as a standard transformers
audio-classification folder (`config.json` with id2label/label2id, `model.safetensors`,
`preprocessor_config.json`, a model card), loadable with `AutoModelForAudioClassification` and
`pipeline("audio-classification")` without this toolkit.

The head maps exactly onto transformers' `*ForSequenceClassification`: its projector is set to the
identity (`classifier_proj_size` = hidden size), its masked mean pooling is ours, its classifier is
our linear layer, and a weighted featurizer is `use_weighted_layer_sum` (both a softmax over free
logits of every hidden state). The feature extractor normalises the waveform exactly when the
upstream does (`do_normalize`) and passes an attention mask exactly when the upstream gives one.
Other rows (ECAPA, fusion, text, a hidden classifier layer, input normalisation, attributes) have no
transformers counterpart and are refused in one line.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from downstream.featurizer import WeightedLayerSum
from upstream import get_spec
from upstream.hf_speech import SpeechModelUpstream

from ..common.config import ConfigError
from ..common.io import atomic_write_text
from ..experiments.plan import FinetuneUnit
from .export import TrainedModel, find_experiment, reference

SUPPORTED = ("the fine-tuned mean-pooling rows (Table 1 rows 1-4) and --upstream X --downstream mean recipes on a "
             "transformers upstream")


def check_expressible(run: Path, experiment_id: int) -> None:
    """Refuse, before any model is built, a row that is not a fine-tuned mean-pooling model of a
    transformers upstream (`refusal` checks the built model's head as well)."""
    record, experiment = find_experiment(run, experiment_id)
    backend = get_spec(record.settings.profile.resolve(experiment.branches[0])).backend
    if not experiment.is_finetune_row or backend not in ("transformers", "tiny"):
        what = f"experiment {experiment.id} ({experiment.description})"
        raise ConfigError(f"export --format transformers: {what} is not a fine-tuned mean-pooling model of a "
                          f"transformers upstream; supported: {SUPPORTED} (the default --format bundle exports every row)")


def refusal(trained: TrainedModel) -> str | None:
    """Why the trained model has no transformers audio-classification form (None when it has one)."""
    model, config = trained.model, trained.model.downstream.config
    what = f"experiment {trained.experiment.id} ({trained.experiment.description})"
    if not isinstance(trained.unit, FinetuneUnit) or config.aggregator != "mean" or len(model.upstreams) != 1:
        return f"{what} is not a fine-tuned mean-pooling model"
    if not isinstance(model.upstreams[0], SpeechModelUpstream):
        return f"{what} runs upstream {model.upstreams[0].name!r}, which transformers has no audio-classification class for"
    if config.classifier_hidden or config.input_norm not in ("none", ("none",)) or config.task != "categorical":
        return f"{what} has a hidden classifier layer, input normalisation or attributes, which transformers' head lacks"
    if config.featurizer not in ("last", "weighted", ("last",), ("weighted",)):
        return f"{what} reads one inner layer ({config.featurizer}), which transformers' head cannot select"
    return None


def transformers_model(trained: TrainedModel) -> tuple[nn.Module, object]:
    """(the `*ForSequenceClassification` model holding the trained weights, its feature extractor)."""
    from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    upstream: SpeechModelUpstream = trained.model.upstreams[0]  # type: ignore[assignment]
    labels = list(trained.result.labels)
    featurizer = trained.model.downstream.featurizers[0]
    weighted = isinstance(featurizer, WeightedLayerSum)
    config = upstream.model.config.__class__.from_dict(upstream.model.config.to_dict())
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    config.classifier_proj_size = config.hidden_size
    config.use_weighted_layer_sum = weighted
    with torch.random.fork_rng(devices=[]):
        model = AutoModelForAudioClassification.from_config(config).eval()
    getattr(model, model.base_model_prefix).load_state_dict(upstream.model.state_dict())
    linear = trained.model.downstream.classifier.net[-1]
    with torch.no_grad():
        model.projector.weight.copy_(torch.eye(config.hidden_size))
        model.projector.bias.zero_()
        model.classifier.weight.copy_(linear.weight)
        model.classifier.bias.copy_(linear.bias)
        if weighted:
            model.layer_weights.copy_(featurizer.weights)
    model.config.architectures = [type(model).__name__]
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0,
                                         do_normalize=upstream.do_normalize,
                                         return_attention_mask=upstream.use_attention_mask)
    return model, extractor


def model_card(trained: TrainedModel) -> str:
    info = reference(trained)
    test = info["test"]
    assert isinstance(test, dict)
    labels = ", ".join(trained.result.labels)
    return f"""---
library_name: transformers
pipeline_tag: audio-classification
license: # fill in: the licence of the upstream checkpoint and of the training corpus apply
tags: [speech-emotion-recognition]
---

# Speech emotion recognition: {trained.experiment.description}

A `{type(trained.model.upstreams[0].model).__name__}` fine-tuned with mean pooling and a linear
classifier over the classes {labels}, exported from a benchmark run (`export --format transformers`).

- corpus and split: fold {trained.unit.fold} (its test part held out), split `{trained.result.split}`
  (hash `{trained.result.split_hash}`); {trained.result.n_train} training, {trained.result.n_valid} validation and
  {trained.result.n_test} test utterances
- training: profile `{info['profile']}`, seed {info['seed']}, the {trained.checkpoint} checkpoint
- this fold's test set: WA {test['wa']:.2f} %, UA {test['ua']:.2f} %, macro-F1 {test['macro_f1']:.2f} %
  (one fold: see the run's table for the mean over folds and its bootstrap interval)
- run record: `{info['run_record']}`, unit `{info['unit']}`

```python
from transformers import pipeline
classify = pipeline("audio-classification", model="THIS_FOLDER")
classify({{"raw": waveform_16khz, "sampling_rate": 16000}}, top_k=None)
```

Licence fields to fill: the upstream checkpoint's licence, the corpus licence (its terms may restrict
sharing models trained on it), and yours.
"""


def export_transformers(trained: TrainedModel, to: Path) -> Path:
    """Write the transformers folder of `trained` into `to` (new or empty); returns `to`."""
    why = refusal(trained)
    if why is not None:
        raise ConfigError(f"export --format transformers: {why}; supported: {SUPPORTED} (the default --format bundle "
                          "exports every row)")
    if to.exists() and any(to.iterdir()):
        raise ConfigError(f"--to: {to} is not empty; give a new or empty folder for a transformers export")
    model, extractor = transformers_model(trained)
    to.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(to)
    extractor.save_pretrained(to)  # type: ignore[attr-defined]
    atomic_write_text(to / "README.md", model_card(trained))
    return to
