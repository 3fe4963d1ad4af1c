"""`s3prl:<name>`: the wrapper on a stand-in module, and a real s3prl upstream that needs no download."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from upstream import UnknownUpstreamError, build_upstream
from upstream.s3prl_hub import S3prlUpstream


class StandIn(nn.Module):
    """Mimics S3PRLUpstream, including its batch quirk: frames past a row's features are zeros in a
    batch but copies of the last frame alone."""

    num_layers, hidden_sizes, downsample_rates = 2, [3, 3], [160, 160]

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, wavs, wavs_len):
        lens = torch.div(wavs_len - 1, 160, rounding_mode="floor") + 1
        real = torch.div(wavs_len - 400, 160, rounding_mode="floor") + 1  # Kaldi-like: fewer real frames
        frames = int(lens.max())
        base = wavs[:, : frames * 160].reshape(len(wavs), -1, 160)[..., :3] if wavs.shape[1] >= frames * 160 else (
            nn.functional.pad(wavs, (0, frames * 160 - wavs.shape[1])).reshape(len(wavs), frames, 160)[..., :3])
        states = base * self.scale
        for row, n in enumerate(real.tolist()):
            states[row, n:] = states[row, n - 1] if len(wavs) == 1 else 0.0
        return [states, 2 * states], [lens, lens]


def test_wrapper_runs_rows_alone_by_default(fake_wavs):
    upstream = S3prlUpstream(StandIn())
    assert (upstream.num_layers, upstream.hidden_size, upstream.downsample_rate) == (2, 3, 160)
    assert upstream.padding_invariant
    wavs, lens = fake_wavs([4_000, 2_000])
    batch, alone = upstream(wavs, lens), upstream(wavs[1:, :2_000], lens[1:])
    assert batch.lengths.tolist() == [25, 13]
    torch.testing.assert_close(batch.hidden_states[1][1, :13], alone.hidden_states[1][0])


def test_batched_mode_is_flagged_padding_dependent(fake_wavs):
    upstream = S3prlUpstream(StandIn(), per_utterance=False)
    assert not upstream.padding_invariant
    wavs, lens = fake_wavs([4_000, 2_000])
    batch, alone = upstream(wavs, lens), upstream(wavs[1:, :2_000], lens[1:])
    assert not torch.allclose(batch.hidden_states[0][1, :13], alone.hidden_states[0][0, :13])


def test_layers_of_different_sizes_are_refused():
    stand_in = StandIn()
    stand_in.hidden_sizes = [3, 4]
    with pytest.raises(ValueError, match="one of each"):
        S3prlUpstream(stand_in)


def test_real_s3prl_upstream_matches_s3prl_itself(built, fake_wavs):
    pytest.importorskip("s3prl", reason="s3prl is not installed")
    from upstream._s3prl_compat import import_s3prl_upstream

    mfcc = built("s3prl:mfcc")
    reference = import_s3prl_upstream()("mfcc").eval()
    wavs, lens = fake_wavs([12_000])
    with torch.no_grad():
        ours, (expected, expected_lens) = mfcc(wavs, lens), reference(wavs, lens)
    assert torch.equal(ours.lengths, expected_lens[0])
    torch.testing.assert_close(ours.hidden_states[0], expected[0])


def test_unknown_s3prl_name_suggests_close_ones():
    pytest.importorskip("s3prl", reason="s3prl is not installed")
    with pytest.raises(UnknownUpstreamError, match="did you mean wavlm_large"):
        build_upstream("s3prl:wavlm_larg")


def test_shim_is_idempotent():
    import torchaudio

    from upstream._s3prl_compat import install

    install()
    install()
    assert callable(torchaudio.set_audio_backend)
    if "stand-in" not in (torchaudio.sox_effects.__doc__ or ""):
        return  # an older torchaudio that still has sox_effects: nothing was replaced
    with pytest.raises(RuntimeError, match="removed"):
        torchaudio.sox_effects.apply_effects_tensor(torch.zeros(1, 10), 16000, [])
