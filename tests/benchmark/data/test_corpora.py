"""Corpus recipes: each read from a tree in its official layout, folds equal to the shipped partition."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
from acted_builder import RATES, label_of, write_acted_tree
from scipy import signal

from benchmark.data import iemocap, splits
from benchmark.data.audio import load_wav
from benchmark.data.build_partitions import PARTITIONS_DIR, compact
from benchmark.data.corpus import CorpusError, corpus_infos, load_corpus
from benchmark.data.partitioned import MIN_SPEAKERS, read_partition

ACTED = ("ravdess", "cremad", "emodb", "savee", "tess")
EMOBOX = Path(__file__).resolve().parents[4] / "shared" / "reference" / "emobox"


@pytest.mark.parametrize("name", ACTED)
def test_a_complete_tree_reads_with_exact_counts_folds_and_labels(name, tmp_path):
    root = write_acted_tree(tmp_path / name, name)
    corpus = load_corpus(name, root)
    info = next(i for i in corpus_infos() if i.name == name)
    partition = read_partition(name)
    assert len(corpus.utterances) == info.utterances == len(partition)
    assert corpus.labels == info.classes and len(corpus.folds) == info.folds
    for u in corpus.utterances:
        assert u.label == label_of(name, f"{u.id}.wav") and corpus.labels[u.label_index] == u.label
        assert u.duration == pytest.approx(0.02, abs=1e-3) and u.sample_rate == RATES[name]
    everyone = {u.id for u in corpus.utterances}
    for fold in corpus.folds:
        test = {u.id for u in fold.test}
        assert test == {Path(k).stem for k, f in partition.items() if f == fold.index}
        assert {u.id for u in (*fold.train, *fold.valid)} == everyone - test
        assert not {u.id for u in fold.train} & {u.id for u in fold.valid}
        share = len(fold.valid) / (len(fold.train) + len(fold.valid))
        assert 0.14 <= share <= 0.26 or (name == "savee" and share == pytest.approx(1 / 3))  # 1 of 3 speakers
        if len({u.speaker for u in (*fold.train, *fold.valid)}) >= MIN_SPEAKERS:
            assert fold.split.endswith("speaker_disjoint")
            assert not {u.speaker for u in fold.train} & {u.speaker for u in fold.valid}
        else:
            assert fold.split.endswith("stratified")
    again = load_corpus(name, root)
    assert [f.split_hash for f in again.folds] == [f.split_hash for f in corpus.folds]  # seeded: the same draw


def test_ravdess_folds_are_actor_disjoint_with_eight_classes(tmp_path):
    corpus = load_corpus("ravdess", write_acted_tree(tmp_path / "ravdess", "ravdess"))
    assert len(corpus.labels) == 8
    for fold in corpus.folds:
        assert len(fold.test) == 240 and len({u.speaker for u in fold.test}) == 4
        assert not {u.speaker for u in fold.test} & {u.speaker for u in (*fold.train, *fold.valid)}
        assert {u.gender for u in fold.test} <= {"F", "M"}


@pytest.mark.skipif(not EMOBOX.is_dir(), reason="EmoBox's reference partitions are not beside this checkout")
@pytest.mark.parametrize("name", ACTED)
def test_the_shipped_partitions_are_emobox_folds(name):
    """Rebuilt from EmoBox's published fold lists, each shipped partition is the same, byte for byte."""
    with (EMOBOX / f"{name}_folds.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = ["file,test_fold", *(f"{n},{f}" for n, f in compact(rows, name))]
    assert (PARTITIONS_DIR / f"{name}.csv").read_text() == "\n".join(lines) + "\n"


def test_missing_and_unlisted_files(tmp_path, capsys):
    names = sorted(read_partition("emodb"))
    root = write_acted_tree(tmp_path / "emodb", "emodb", names[3:])
    with pytest.raises(CorpusError, match=r"3 of the 535 files that emodb's partition lists are not there "
                                          r"\(first: 03a01Fa\.wav, 03a01Nc\.wav, 03a01Wa\.wav\).*--no-strict"):
        load_corpus("emodb", root)
    soundfile.write(str(root / "wav" / "99z99Zz.wav"), np.zeros(160, np.float32), 16_000)
    corpus = load_corpus("emodb", root, strict=False, verbose=True)
    printed = capsys.readouterr().out
    assert len(corpus.utterances) == 532
    assert "3 of the 535 partition files are missing; left out" in printed
    assert "1 audio file(s)" in printed and "99z99Zz.wav" in printed


def test_unknown_corpus_and_a_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus 'voxceleb'.*ravdess"):
        load_corpus("voxceleb", tmp_path)
    with pytest.raises(CorpusError, match="does not exist; expected the folder Audio_Speech_Actors_01-24"):
        load_corpus("ravdess", tmp_path / "nowhere")


def test_iemocap_through_the_seam_is_the_reader_and_superb_split(tone_corpus):
    corpus = load_corpus("iemocap", tone_corpus, strict=False)
    utterances = iemocap.load(tone_corpus, strict=False, verbose=False)
    assert corpus.labels == iemocap.LABELS and list(corpus.utterances) == utterances
    assert list(corpus.folds) == splits.folds(utterances, "superb")
    rated = load_corpus("iemocap", tone_corpus, strict=False, every_rated=True)  # the dimensional task
    assert len(rated.utterances) > len(utterances) and {u.label for u in rated.utterances} >= {"fru", "xxx"}
    from benchmark.data.corpus import format_corpus_table

    assert "emobox:<dataset>" in format_corpus_table()


@pytest.mark.parametrize("rate", [44_100, 24_414, 48_000])
def test_any_rate_is_resampled_to_16_khz_as_a_reference_resampler_does(rate, tmp_path):
    """A stereo chirp read as the corpora are (SAVEE's, TESS' and RAVDESS' rates): against scipy's
    polyphase resampler, in band."""
    t = np.arange(int(rate * 2.0)) / rate
    chirp = 0.5 * signal.chirp(t, f0=100, t1=2.0, f1=6_000).astype(np.float32)
    soundfile.write(str(tmp_path / "chirp.wav"), np.stack([chirp, chirp], 1), rate, subtype="FLOAT")
    ours = load_wav(tmp_path / "chirp.wav").numpy()
    divisor = math.gcd(rate, 16_000)
    reference = signal.resample_poly(chirp, 16_000 // divisor, rate // divisor)
    assert len(ours) == len(reference) == 32_000
    inner = slice(800, -800)  # the filters' edge effects differ
    assert np.max(np.abs(ours[inner] - reference[inner])) < 0.01


def test_a_corpus_of_ones_own_is_one_registered_recipe_and_one_partition_file(tmp_path):
    from benchmark.data.corpus import CorpusInfo, register_corpus
    from benchmark.data.partitioned import FileLabel, read_partitioned

    info = CorpusInfo("test_mine", ("neutral", "happy"), 2, 8, "CC0", "here", "a folder of wav/<spk>_<label>_<n>.wav")
    names = [f"s{s}_{label}_{n}.wav" for s in range(4) for label in info.classes for n in range(1)]
    partition = tmp_path / "mine_folds.csv"
    partition.write_text("file,test_fold\n" + "".join(f"{n},{1 + int(n[1]) % 2}\n" for n in names))

    @register_corpus(info)
    def read_mine(root, options):
        def parse(path):
            speaker, label, _ = path.stem.split("_")
            return FileLabel(path.name, label, speaker)
        return read_partitioned(root, info, parse, options, partition)

    for name in names:
        (tmp_path / "wav").mkdir(exist_ok=True)
        soundfile.write(str(tmp_path / "wav" / name), np.zeros(1600, np.float32), 8_000)
    corpus = load_corpus("test_mine", tmp_path)
    assert corpus.labels == ("neutral", "happy") and len(corpus.utterances) == 8
    assert [sorted(u.speaker for u in f.test) for f in corpus.folds] == [["s0", "s0", "s2", "s2"], ["s1", "s1", "s3", "s3"]]
    assert all(f.split.endswith("stratified") for f in corpus.folds)  # 2 training speakers: stratified valid


def test_labels_restrict_and_merge_classes_keeping_each_utterance_in_its_role(tmp_path):
    from benchmark.data.labels import parse_label_spec, restrict

    corpus = load_corpus("ravdess", write_acted_tree(tmp_path / "ravdess", "ravdess"))
    spec = parse_label_spec("angry,happy,neutral,sad,calm=neutral")
    folds = restrict(corpus.folds, corpus.labels, spec, "ravdess")
    assert spec.classes == ("angry", "happy", "neutral", "sad")
    for before, after in zip(corpus.folds, folds):
        kept = {u.id: u for u in before.test if u.label in ("angry", "happy", "neutral", "sad", "calm")}
        assert {u.id for u in after.test} == set(kept)
        for u in after.test:
            assert u.label == ("neutral" if kept[u.id].label == "calm" else kept[u.id].label)
            assert spec.classes[u.label_index] == u.label
        assert {u.id for u in after.train} <= {u.id for u in before.train}
        assert after.split_hash != before.split_hash
    counts = {c: sum(u.label == c for f in folds for u in f.test) for c in spec.classes}
    assert counts == {"angry": 192, "happy": 192, "neutral": 96 + 192, "sad": 192}
    with pytest.raises(CorpusError, match=r"'joy' is not a class of ravdess \(neutral, calm"):
        restrict(corpus.folds, corpus.labels, parse_label_spec("angry,joy"), "ravdess")
    with pytest.raises(CorpusError, match="calm=boredom merges into a class that is not kept"):
        parse_label_spec("angry,sad,calm=boredom")
    with pytest.raises(CorpusError, match="at least two classes"):
        parse_label_spec("angry")


def _emobox_checkout(meta: Path, audio: Path, dataset: str = "esd") -> list[str]:
    """EmoBox's layout for a 2-fold dataset: data/<ds>/label_map.json, fold_<k>/<ds>_{train,test}_fold_<k>.jsonl;
    the audio in its downloads layout (prefix downloads/<ds>/ in the jsonl), one file moved elsewhere."""
    import json

    folder = meta / "data" / dataset
    emotions = {"Angry": "Angry", "Happy": "Happy", "Neutral": "Neutral"}
    (folder).mkdir(parents=True)
    (folder / "label_map.json").write_text(json.dumps(emotions))
    keys = [f"{dataset}-{s:04d}-{n:02d}" for s in range(2) for n in range(9)]
    entries = {}
    for i, key in enumerate(keys):
        emo = list(emotions)[i % 3] if i != 4 else "neutral"  # EmoDB-style case mismatch, still mapped
        relative = f"wav/spk{key[-7:-3]}/{key}.wav" if i != 7 else f"elsewhere/{key}.wav"
        (audio / relative).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(audio / relative), np.zeros(800, np.float32), 16_000)
        entries[key] = {"key": key, "dataset": dataset, "wav": f"downloads/{dataset}/wav/spk{key[-7:-3]}/{key}.wav",
                        "sample_rate": 16000, "length": 0.05, "emo": emo, "channel": 1}
    for k in (1, 2):
        (folder / f"fold_{k}").mkdir()
        for role in ("train", "test"):
            chosen = [e for key, e in entries.items() if (int(key[-7:-3]) == k - 1) == (role == "test")]
            (folder / f"fold_{k}" / f"{dataset}_{role}_fold_{k}.jsonl").write_text(
                "".join(json.dumps(e) + "\n" for e in chosen))
    return keys


def test_an_emobox_dataset_is_read_from_its_metadata_and_the_audio_folder(tmp_path):
    keys = _emobox_checkout(tmp_path / "EmoBox", tmp_path / "audio")
    corpus = load_corpus("emobox:esd", tmp_path / "audio", emobox_meta=tmp_path / "EmoBox")
    assert corpus.labels == ("angry", "happy", "neutral") and len(corpus.utterances) == 18
    assert sorted(u.id for u in corpus.utterances) == sorted(keys)
    assert next(u for u in corpus.utterances if u.id == keys[4]).label == "neutral"
    assert next(u for u in corpus.utterances if u.id == keys[7]).path.parent.name == "elsewhere"  # found by name
    for fold in corpus.folds:
        assert {u.id[-7:-3] for u in fold.test} == {f"{fold.index - 1:04d}"}
        assert len(fold.valid) == 3 and {u.label for u in fold.valid} == set(corpus.labels)  # 1 of 3 per class
    (tmp_path / "audio" / "elsewhere" / f"{keys[7]}.wav").unlink()
    with pytest.raises(CorpusError, match=r"1 of the 18 files that EmoBox's esd folds list are not there"):
        load_corpus("emobox:esd", tmp_path / "audio", emobox_meta=tmp_path / "EmoBox")
    broken = tmp_path / "EmoBox" / "data" / "esd" / "fold_1" / "esd_test_fold_1.jsonl"
    saved = broken.read_text()
    broken.write_text(saved + '{"key": "esd-x", "wav": "downloads/esd/x.wav"}\n')
    with pytest.raises(CorpusError, match=r"esd_test_fold_1.jsonl:\d+: no emo in the entry"):
        load_corpus("emobox:esd", tmp_path / "audio", emobox_meta=tmp_path / "EmoBox", strict=False)
    broken.write_text(saved)
    with pytest.raises(CorpusError, match="needs --emobox-meta"):
        load_corpus("emobox:esd", tmp_path / "audio")
    with pytest.raises(CorpusError, match="holds no crema/label_map.json"):
        load_corpus("emobox:crema", tmp_path / "audio", emobox_meta=tmp_path / "EmoBox")


def _msp_release(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    """labels_consensus.csv (FileName, EmoClass, attributes, speaker, gender, Split_Set) and Audios/."""
    (root / "Labels").mkdir(parents=True)
    (root / "Audios").mkdir()
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    for i, (name, code, split) in enumerate(rows):
        lines.append(f"{name},{code},{1 + i % 7}.0,4.2,3.6,{100 + i % 3},{'Female' if i % 2 else 'Male'},{split}")
        soundfile.write(str(root / "Audios" / name), np.zeros(1600, np.float32), 16_000)
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(lines) + "\n")
    return root


def test_msp_podcast_folds_are_its_release_partition_with_attributes_kept(tmp_path):
    splits_ = ["Train"] * 8 + ["Development"] * 4 + ["Test1"] * 4 + ["Test2"] * 4
    codes = ["N", "H", "S", "A", "U", "C", "D", "F", "N", "H", "S", "A", "N", "H", "X", "O", "N", "H", "S", "A"]
    rows = [(f"MSP-PODCAST_{i:04d}_0001.wav", c, s) for i, (c, s) in enumerate(zip(codes, splits_))]
    corpus = load_corpus("msp_podcast", _msp_release(tmp_path / "MSP", rows))
    assert corpus.labels == ("neutral", "happy", "sad", "angry", "surprise", "contempt", "disgust", "fear")
    assert len(corpus.utterances) == 18  # O and X left out
    (one, two) = corpus.folds
    assert (len(one.train), len(one.valid), len(one.test), len(two.test)) == (8, 4, 2, 4)
    assert one.train == two.train and one.valid == two.valid and one.split == "msp_test1" and two.split == "msp_test2"
    first = next(u for u in corpus.utterances if u.id == "MSP-PODCAST_0000_0001")
    assert first.attributes == (1.0, 4.2, 3.6) and first.speaker == "100" and first.gender == "M"
    (tmp_path / "MSP" / "Audios" / rows[3][0]).unlink()
    with pytest.raises(CorpusError, match="1 files that labels_consensus.csv lists are not there"):
        load_corpus("msp_podcast", tmp_path / "MSP")
    assert len(load_corpus("msp_podcast", tmp_path / "MSP", strict=False).utterances) == 17
    rated = load_corpus("msp_podcast", tmp_path / "MSP", strict=False, every_rated=True)  # the dimensional task
    assert len(rated.utterances) == 19 and sum(u.label_index < 0 for u in rated.utterances) == 2
    assert {u.attribute_range for u in rated.utterances} == {(1.0, 7.0)}
