from pathlib import Path

import numpy as np
import pytest
import soundfile

from benchmark.data import iemocap
from benchmark.data.iemocap import CorpusError
from corpus_builder import Turn, write_tree


def _hand_built_turns() -> list[Turn]:
    turns = [
        Turn("Ses01F_impro01_F000", "neu", "Excuse me."),
        Turn("Ses01F_impro01_M000", "exc", "Do you have your forms?"),
        Turn("Ses01F_impro01_F001", "fru", "Yeah."),
        Turn("Ses01F_impro01_M001", "xxx", "Let me see them."),
        Turn("Ses01M_script01_1_F000", "ang", "What is this?"),
        Turn("Ses01M_script01_1_M000", "sad", "I am sorry."),
        Turn("Ses01M_script01_1_F001", "hap", "Great news!"),
        Turn("Ses01M_script01_1_M001", "sur", "Really?"),
    ]
    for session in range(2, 6):  # one neutral turn per speaker elsewhere, with dialogs led by either actor
        turns += [Turn(f"Ses0{session}M_script02_2_F000", "neu", "Fine."),
                  Turn(f"Ses0{session}M_script02_2_M000", "dis", "Ugh."),
                  Turn(f"Ses0{session}F_impro03_M000", "sad", "Oh no.")]
    return turns


@pytest.fixture()
def hand_built(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "IEMOCAP", _hand_built_turns())


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_reads_counts_labels_speakers_and_transcripts(hand_built, capsys):
    utterances = iemocap.load(hand_built)
    by_id = {u.id: u for u in utterances}
    assert len(utterances) == 5 + 2 * 4
    assert iemocap.class_counts(utterances) == {"neu": 5, "hap": 2, "ang": 1, "sad": 5}
    assert "13 utterances (neu 5, hap 2, ang 1, sad 5)" in capsys.readouterr().out
    assert by_id["Ses01F_impro01_M000"].label == "hap"  # exc merged into hap
    assert by_id["Ses01F_impro01_M000"].label_index == 1
    assert not {"Ses01F_impro01_F001", "Ses01F_impro01_M001", "Ses01M_script01_1_M001"} & set(by_id)
    # the speaker follows the utterance's own suffix, not the dialog's leading actor
    assert by_id["Ses01M_script01_1_F000"].speaker == "Ses01F"
    assert by_id["Ses05F_impro03_M000"].speaker == "Ses05M" and by_id["Ses05F_impro03_M000"].gender == "M"
    assert len({u.speaker for u in utterances}) == 10
    assert by_id["Ses01M_script01_1_M000"].text == "I am sorry."
    assert by_id["Ses01F_impro01_F000"].session == 1
    assert by_id["Ses01F_impro01_F000"].duration == pytest.approx(1.0, abs=1e-3)
    assert [u.id for u in utterances] == sorted(by_id)
    assert iemocap.LABELS == ("neu", "hap", "ang", "sad")


def test_each_turn_keeps_its_valence_activation_and_dominance(hand_built):
    """The `[V, A, D]` of a turn line, kept as (arousal, valence, dominance)."""
    label_file = hand_built / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    label_file.write_text(label_file.read_text().replace("[2.5000, 3.0000, 2.5000]", "[1.5000, 4.0000, 3.5000]", 1))
    by_id = {u.id: u for u in iemocap.load(hand_built, strict=False, verbose=False)}
    assert by_id["Ses01F_impro01_F000"].attributes == (4.0, 1.5, 3.5)
    assert by_id["Ses01M_script01_1_F000"].attributes == (3.0, 2.5, 2.5)


def test_strict_mode_rejects_a_partial_release(hand_built):
    (hand_built / "Documentation").mkdir()
    with pytest.raises(CorpusError, match=r"found 13 utterances, the complete release has 5531"):
        iemocap.load(hand_built)
    assert len(iemocap.load(hand_built, strict=False)) == 13


def test_macos_resource_forks_and_annotation_subfolders_are_ignored(hand_built):
    label_dir = hand_built / "Session1" / "dialog" / "EmoEvaluation"
    (label_dir / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07garbage")
    (label_dir / "Categorical").mkdir()
    (label_dir / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text("Ses01F_impro01_F000 :Neutral state; ()\n")
    assert len(iemocap.load(hand_built)) == 13


def _break(corpus: Path, how: str) -> str:
    """Damage the corpus as named; returns the text the error message must contain."""
    session1 = corpus / "Session1"
    label_file = session1 / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    wav = session1 / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav"
    if how == "folder missing":
        return f"{corpus / 'nowhere'}: corpus folder does not exist"
    if how == "no sessions":
        for session in corpus.glob("Session*"):
            session.rename(corpus / f"old_{session.name}")
        return "no Session* folders"
    if how == "session missing":
        (corpus / "Session3").rename(corpus / "Backup3")
        return "missing Session3"
    if how == "malformed turn":
        lines = label_file.read_text().splitlines()
        lines[2] = "[6.2901 - 8.2357]\tSes01F_impro01_F000 neu"
        label_file.write_text("\n".join(lines) + "\n")
        return f"{label_file}:3: malformed turn line"
    if how == "malformed attributes":
        label_file.write_text(label_file.read_text().replace("[2.5000, 3.0000, 2.5000]", "[2.5000, high, 2.5000]", 1))
        return f"{label_file}:3: malformed [V, A, D] [2.5000, high, 2.5000]"
    if how == "wrong session id":
        label_file.write_text(label_file.read_text().replace("Ses01F_impro01_F000", "Ses02F_impro01_F000"))
        return f"{label_file}:3: utterance id 'Ses02F_impro01_F000'"
    if how == "wav missing":
        wav.unlink()
        return f"{wav}: wav missing"
    if how == "unreadable wav":
        wav.write_bytes(b"RIFF not really a wav")
        return f"{wav}: unreadable wav"
    if how == "empty wav":
        soundfile.write(str(wav), np.zeros(0, dtype=np.float32), 16000)
        return f"{wav}: empty wav"
    if how == "no label files":
        for f in (session1 / "dialog" / "EmoEvaluation").glob("*.txt"):
            f.unlink()
        return "no EmoEvaluation label files"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["folder missing", "no sessions", "session missing", "malformed turn", "malformed attributes", "wrong session id",
     "wav missing",
     "unreadable wav", "empty wav", "no label files"],
)
def test_bad_corpus_gives_one_line_error_and_writes_nothing(hand_built, how):
    expected = _break(hand_built, how)
    target = hand_built / "nowhere" if how == "folder missing" else hand_built
    before = _snapshot(hand_built)
    with pytest.raises(CorpusError) as error:
        iemocap.load(target)
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert _snapshot(hand_built) == before
