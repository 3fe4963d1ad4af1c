"""From a corpus folder to utterances and folds: the corpus seam (`corpus`: registered recipes,
`load_corpus`), the acted corpora with EmoBox's folds (`acted`, `partitioned`, `partitions/`,
`build_partitions`), the IEMOCAP reader (`iemocap`, registered by `iemocap_recipe`), folds and SUPERB's
train/valid split (`splits`, `superb_split.csv`), audio reading (`audio`), fingerprints of the data a
result was computed on (`fingerprint`) and the offline demo corpus (`demo`, `demo_text`, `espeak`).

May import: `benchmark.common`.
"""
from .corpus import Corpus, CorpusInfo, load_corpus, register_corpus

__all__ = ["Corpus", "CorpusInfo", "load_corpus", "register_corpus"]
