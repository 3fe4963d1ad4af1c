"""The upstream contract, checked on every registered upstream buildable offline (grows with the registry).

Names whose checkpoint is not on this machine are skipped with the reason; each namespace
contributes its offline example (e.g. `s3prl:mfcc`), and `hf:` one tiny saved model per model_type.
"""
from __future__ import annotations

import pytest
import torch
from tiny_hf import MODEL_TYPES, TINY_HF_PREFIX

from upstream import Batch, Upstream, UpstreamOutput, get_spec, list_namespaces, list_upstreams

NAMES = (list_upstreams() + [namespace.example_name for namespace in list_namespaces() if namespace.example]
         + [f"{TINY_HF_PREFIX}{model_type}" for model_type in MODEL_TYPES])
LENGTHS = [16_000, 8_000, 12_345]  # longest first: it fills the padded tensor
TEXTS = ["the meeting was moved to friday afternoon", "i am so happy", "why"]
ATOL = 1e-4  # eval mode, float32: alone vs padded differ only by summation order


def run(upstream: Upstream, fake_wavs, rows: list[int] | None = None) -> UpstreamOutput:
    rows = rows if rows is not None else list(range(len(LENGTHS)))
    if upstream.modality == "text":
        return upstream([TEXTS[i] for i in rows])
    wavs, lens = fake_wavs(LENGTHS)
    longest = int(lens[rows].max())
    return upstream(wavs[rows, :longest], lens[rows])


@pytest.mark.parametrize("name", NAMES)
def test_hidden_states_match_declared_sizes(name, built, fake_wavs):
    upstream = built(name)
    with torch.no_grad():
        out = run(upstream, fake_wavs)
    assert len(out.hidden_states) == upstream.num_layers
    frames = out.hidden_states[0].shape[1]
    for states in out.hidden_states:
        assert states.shape == (len(LENGTHS), frames, upstream.hidden_size)
        assert torch.isfinite(states).all()
    assert out.lengths.shape == (len(LENGTHS),) and out.lengths.dtype == torch.long
    assert int(out.lengths.max()) == frames and int(out.lengths.min()) >= 1
    spec = get_spec(upstream.name)
    assert spec.modality == upstream.modality
    for field in ("hidden_size", "num_layers", "downsample_rate"):
        if getattr(spec, field):  # 0: known only once built (namespaces)
            assert getattr(spec, field) == getattr(upstream, field), field


@pytest.mark.parametrize("name", NAMES)
def test_lengths_follow_downsample_rate(name, built, fake_wavs):
    upstream = built(name)
    with torch.no_grad():
        out = run(upstream, fake_wavs)
    if upstream.modality == "text":
        assert upstream.downsample_rate == 0
        alone = [len(upstream.tokenizer(text)["input_ids"]) for text in TEXTS]
        assert out.lengths.tolist() == alone
        return
    rate, window = upstream.downsample_rate, upstream.receptive_field or upstream.downsample_rate
    expected = (torch.tensor(LENGTHS) - window) / rate + 1  # complete analysis windows
    assert ((out.lengths - expected).abs() <= 1).all(), (out.lengths, expected)


@pytest.mark.parametrize("name", NAMES)
def test_padding_does_not_change_valid_frames(name, built, fake_wavs):
    upstream = built(name)
    if not upstream.padding_invariant:
        pytest.skip(f"{name} declares padding_invariant=False (its outputs depend on the batch's padding)")
    with torch.no_grad():
        batch = run(upstream, fake_wavs)
        for row in range(1, len(LENGTHS)):
            alone = run(upstream, fake_wavs, [row])
            n = int(alone.lengths[0])
            assert int(batch.lengths[row]) == n
            for layer, (padded, single) in enumerate(zip(batch.hidden_states, alone.hidden_states)):
                torch.testing.assert_close(padded[row, :n], single[0, :n], atol=ATOL, rtol=1e-4, msg=f"layer {layer}")


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_in_eval_mode(name, built, fake_wavs):
    upstream = built(name)
    with torch.no_grad():
        first, second = run(upstream, fake_wavs), run(upstream, fake_wavs)
    assert torch.equal(first.lengths, second.lengths)
    for a, b in zip(first.hidden_states, second.hidden_states):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_parameters_when_not_frozen(name, built, fake_wavs):
    upstream = built(name)
    parameters = [p for p in upstream.parameters() if p.requires_grad]
    if not parameters:
        pytest.skip(f"{name} has no trainable parameters")
    upstream.train()
    try:
        out = run(upstream, fake_wavs)
        sum(states.pow(2).mean() for states in out.hidden_states).backward()
        with_grad = [p for p in parameters if p.grad is not None and p.grad.abs().sum() > 0]
        assert len(with_grad) >= 0.8 * len(parameters), f"{len(with_grad)}/{len(parameters)} parameters got gradients"
    finally:
        upstream.eval().zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", NAMES)
def test_extract_reads_the_batch_field_of_its_modality(name, built, fake_wavs):
    upstream = built(name)
    wavs, lens = fake_wavs(LENGTHS)
    batch = Batch(ids=["a", "b", "c"], wavs=wavs, wav_lens=lens, texts=TEXTS, labels=torch.zeros(3, dtype=torch.long))
    with torch.no_grad():
        via_batch, direct = upstream.extract(batch), run(upstream, fake_wavs)
    for a, b in zip(via_batch.hidden_states, direct.hidden_states):
        assert torch.equal(a, b)
