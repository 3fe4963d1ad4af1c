"""A trained model outside the benchmark: the self-contained model folder (`bundle`), export of one
fold's model from a run (`export`; `hf_export` writes a transformers audio-classification folder), and prediction on new recordings (`predict`, reading long files
block by block through `audio_stream`, matching transcripts through `transcripts`).

May import: `benchmark.common`, `benchmark.data`, `benchmark.reporting`, `benchmark.training`,
`benchmark.experiments`.
"""
