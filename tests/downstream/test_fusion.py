"""Early fusion (frame alignment + concat) and late fusion (speech & text) of branches."""
import pytest
import torch

from downstream.ecapa import EcapaConfig
from downstream.fusion import EarlyFusion, LateFusion, pool_frames
from downstream.model import BranchSpec, DownstreamConfig, DownstreamModel
from downstream.pooling import MeanPooling

SMALL_ECAPA = EcapaConfig(channels=32, embedding_size=16, attention_size=8, se_channels=8, res2net_scale=4)
ATOL = 1e-5  # eval mode, float32: alone vs padded differ only by summation order


def test_early_fusion_10ms_and_20ms_coarsest(make_output) -> None:
    fbank = make_output([100, 73], hidden_size=6, max_len=104)  # 10 ms: 160 samples per frame
    ssl = make_output([50, 36], hidden_size=4)  # 20 ms: 320 samples per frame
    early = EarlyFusion([160, 320])
    fused, lengths = early([fbank.hidden_states[0], ssl.hidden_states[0]], [fbank.lengths, ssl.lengths])
    assert lengths.tolist() == [50, 36]  # min(ceil(100/2), 50), min(ceil(73/2) = 37, 36)
    assert fused.shape == (2, 50, 6 + 4)
    f, s = fbank.hidden_states[0], ssl.hidden_states[0]
    torch.testing.assert_close(fused[:, :, 6:], s[:, :50])
    torch.testing.assert_close(fused[0, 7, :6], (f[0, 14] + f[0, 15]) / 2)
    torch.testing.assert_close(fused[1, 35, :6], (f[1, 70] + f[1, 71]) / 2)


def test_early_fusion_10ms_and_20ms_finest(make_output) -> None:
    fbank = make_output([100, 73], hidden_size=6)
    ssl = make_output([50, 36], hidden_size=4)
    early = EarlyFusion([160, 320], frame_rate="finest")
    fused, lengths = early([fbank.hidden_states[0], ssl.hidden_states[0]], [fbank.lengths, ssl.lengths])
    assert lengths.tolist() == [100, 72]  # min(100, 50·2), min(73, 36·2)
    assert fused.shape == (2, 100, 10)
    torch.testing.assert_close(fused[:, :, :6], fbank.hidden_states[0])
    torch.testing.assert_close(fused[:, 8, 6:], ssl.hidden_states[0][:, 4])
    torch.testing.assert_close(fused[:, 9, 6:], ssl.hidden_states[0][:, 4])


def test_pooling_a_straddling_window_averages_valid_frames_only() -> None:
    features = torch.tensor([[[1.0], [3.0], [5.0], [1000.0]]])
    pooled, lengths = pool_frames(features, torch.tensor([3]), 2)
    assert lengths.tolist() == [2] and pooled[0, :, 0].tolist() == [2.0, 5.0]


def test_early_fusion_rejects_what_it_cannot_align(make_output) -> None:
    with pytest.raises(ValueError, match="fusion: late"):
        EarlyFusion([320, 0])
    with pytest.raises(ValueError, match="integer multiples"):
        EarlyFusion([320, 400])
    a, b = make_output([50], hidden_size=2), make_output([40], hidden_size=2)
    with pytest.raises(ValueError, match="downsample_rate"):
        EarlyFusion([320, 320])([a.hidden_states[0], b.hidden_states[0]], [a.lengths, b.lengths])


def test_late_fusion_concatenates_embeddings(make_output) -> None:
    speech, text = make_output([8, 5], hidden_size=6), make_output([3, 4], hidden_size=2)
    late = LateFusion([MeanPooling(6), MeanPooling(2)])
    embeddings = late([speech.hidden_states[0], text.hidden_states[0]], [speech.lengths, text.lengths])
    assert late.output_size == 8 and embeddings.shape == (2, 8)
    torch.testing.assert_close(embeddings[:, 6:], MeanPooling(2)(text.hidden_states[0], text.lengths))


@pytest.mark.parametrize("aggregator", ["mean", "ecapa"])
def test_early_fusion_model_padding_invariance(make_output, crop, aggregator: str) -> None:
    torch.manual_seed(0)
    config = DownstreamConfig(featurizer="weighted", aggregator=aggregator, fusion="early", ecapa=SMALL_ECAPA)
    model = DownstreamModel(config, [BranchSpec(2, 6, 160), BranchSpec(3, 4, 320)]).eval()
    fbank = make_output([61, 20, 33], hidden_size=6, num_layers=2, max_len=70)
    ssl = make_output([30, 10, 17], hidden_size=4, num_layers=3, max_len=40)
    with torch.no_grad():
        batched = model([fbank, ssl])
        for row in range(3):
            alone = model([crop(fbank, row), crop(ssl, row)])[0]
            torch.testing.assert_close(alone, batched[row], atol=ATOL, rtol=0)


def speech_and_text(aggregator: tuple[str, str]) -> DownstreamModel:
    torch.manual_seed(0)
    config = DownstreamConfig(featurizer="weighted", aggregator=aggregator, fusion="late", ecapa=SMALL_ECAPA)
    return DownstreamModel(config, [BranchSpec(3, 12, 320), BranchSpec(2, 8, 0)])


@pytest.mark.parametrize("aggregator", [("mean", "mean"), ("ecapa", "mean"), ("ecapa", "ecapa")])
def test_late_fusion_speech_and_text_padding_invariance(make_output, crop, aggregator: tuple[str, str]) -> None:
    model = speech_and_text(aggregator).eval()
    speech = make_output([25, 40, 9], hidden_size=12, num_layers=3, max_len=45)
    text = make_output([4, 11, 1], hidden_size=8, num_layers=2, max_len=12)
    with torch.no_grad():
        batched = model([speech, text])
        for row in range(3):
            torch.testing.assert_close(model([crop(speech, row), crop(text, row)])[0], batched[row], atol=ATOL, rtol=0)


def test_late_fusion_speech_and_text_trains_and_both_branches_get_gradients(make_output) -> None:
    model = speech_and_text(("ecapa", "mean")).train()
    speech = make_output([30, 22, 18, 35, 26, 12, 31, 20], hidden_size=12, num_layers=3)
    text = make_output([5, 9, 3, 7, 6, 4, 8, 2], hidden_size=8, num_layers=2)
    for state in speech.hidden_states + text.hidden_states:
        state.requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(25):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model([speech, text]), labels)
        loss.backward()
        if step == 0:
            for featurizer in model.featurizers:  # both branches' layer weights learn
                assert featurizer.weights.grad is not None and featurizer.weights.grad.abs().sum() > 0
            for output in (speech, text):  # gradient reaches each upstream's valid frames, not padding
                grad = output.hidden_states[-1].grad
                valid = torch.arange(grad.shape[1]).unsqueeze(0) < output.lengths.unsqueeze(1)
                assert grad[valid].abs().sum() > 0 and grad[~valid].abs().sum() == 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    weights = model.layer_weights()
    assert [w.shape for w in weights if w is not None] == [(3,), (2,)]
