"""DownstreamModel assembled from DownstreamConfig; the aggregator catalog behind --list-downstreams."""
import dataclasses

import pytest
import torch

from downstream.catalog import (
    AGGREGATORS,
    AggregatorEntry,
    build_aggregator,
    count_parameters,
    format_downstream_table,
    register_aggregator,
)
from downstream.ecapa import EcapaAggregator, EcapaConfig
from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel
from downstream.pooling import MeanPooling


def test_defaults_are_the_lead_api() -> None:
    config = DownstreamConfig()
    assert (config.featurizer, config.aggregator, config.fusion) == ("last", "mean", "none")
    assert (config.classifier_hidden, config.dropout, config.num_classes) == (0, 0.0, 4)
    assert config.ecapa == EcapaConfig()
    hash(config)  # frozen and hashable: every field a plain value or a frozen dataclass (YAML-ready)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        assert isinstance(value, (str, int, float, bool, tuple)) or dataclasses.is_dataclass(value), f.name


def test_single_branch_last_layer_mean(make_output) -> None:
    output = make_output([7, 3], hidden_size=6, num_layers=4)
    model = DownstreamModel(DownstreamConfig(), [BranchSpec(4, 6, 320)])
    torch.testing.assert_close(model.embed([output]), MeanPooling(6)(output.hidden_states[-1], output.lengths))
    assert model([output]).shape == (2, 4) and model.output_size == 6
    assert model.layer_weights() == [None]


def test_layer_index_and_mlp_classifier(make_output) -> None:
    output = make_output([7, 3], hidden_size=6, num_layers=4)
    config = DownstreamConfig(featurizer=1, classifier_hidden=5, dropout=0.1, num_classes=3)
    model = DownstreamModel(config, [BranchSpec(4, 6, 320)])
    torch.testing.assert_close(model.embed([output]), MeanPooling(6)(output.hidden_states[1], output.lengths))
    assert model([output]).shape == (2, 3)


def test_ecapa_model_output_size() -> None:
    small = EcapaConfig(channels=16, embedding_size=24, attention_size=4, se_channels=4, res2net_scale=4)
    model = DownstreamModel(DownstreamConfig(aggregator="ecapa", ecapa=small), [BranchSpec(2, 10, 320)])
    assert model.output_size == 24


def test_per_branch_values_and_yaml_lists() -> None:
    yaml_lists: dict = {"featurizer": ["weighted", -1], "aggregator": ["mean", "mean"]}
    config = DownstreamConfig(fusion="late", **yaml_lists)
    assert config.featurizer == ("weighted", -1) and config.aggregator == ("mean", "mean")
    model = DownstreamModel(config, [BranchSpec(3, 4, 320), BranchSpec(2, 5, 0)])
    assert model.output_size == 9
    assert [w is None for w in model.layer_weights()] == [False, True]


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"featurizer": "mean"}, "featurizer"),
        ({"aggregator": "ecappa"}, "unknown aggregator"),
        ({"fusion": "concat"}, "unknown fusion"),
        ({"aggregator": ("mean", "ecapa")}, "fusion: late"),
        ({"fusion_frame_rate": "fastest"}, "fusion_frame_rate"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_config_errors(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DownstreamConfig(**changes)


def test_model_errors() -> None:
    two = [BranchSpec(2, 4, 320), BranchSpec(2, 4, 320)]
    with pytest.raises(ValueError, match="fusion: early or late"):
        DownstreamModel(DownstreamConfig(), two)
    with pytest.raises(ValueError, match="one value or one per branch"):
        DownstreamModel(DownstreamConfig(featurizer=(0, 1, 1), fusion="late"), two)
    with pytest.raises(ValueError, match="out of range"):
        DownstreamModel(DownstreamConfig(featurizer=2), [BranchSpec(2, 4, 320)])
    with pytest.raises(ValueError, match="fusion: late"):
        DownstreamModel(DownstreamConfig(fusion="early"), [BranchSpec(2, 4, 320), BranchSpec(2, 4, 0)])


def test_catalog_errors() -> None:
    with pytest.raises(ValueError, match="did you mean 'ecapa'"):
        build_aggregator("ecappa", 8)
    with pytest.raises(ValueError, match="already registered"):
        register_aggregator(AggregatorEntry("mean", "again", lambda size, _: MeanPooling(size)))


def test_downstream_table_reports_ecapa_size_and_parameters() -> None:
    table = format_downstream_table(input_size=768)
    ecapa_row = next(line for line in table.splitlines() if line.startswith("ecapa"))
    assert " 192 " in ecapa_row and f"{count_parameters(EcapaAggregator(768)):,}" in ecapa_row
    assert "7,955,328" in ecapa_row
    mean_row = next(line for line in table.splitlines() if line.startswith("mean"))
    assert mean_row.split()[1:3] == ["768", "0"]
    assert set(AGGREGATORS) == {"mean", "ecapa"}
