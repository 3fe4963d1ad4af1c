"""From a corpus folder to utterances and folds: the IEMOCAP reader (`iemocap`), folds and SUPERB's
train/valid split (`splits`, `superb_split.csv`), audio reading (`audio`), fingerprints of the data a
result was computed on (`fingerprint`) and the offline demo corpus (`demo`, `demo_text`, `espeak`).

May import: `benchmark.common`.
"""
