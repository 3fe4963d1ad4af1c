"""A trained model outside the benchmark: the self-contained model folder (`bundle`), export of one
fold's model from a run (`export`), and prediction on new recordings (`predict`).

May import: `benchmark.common`, `benchmark.data`, `benchmark.reporting`, `benchmark.training`,
`benchmark.experiments`.
"""
