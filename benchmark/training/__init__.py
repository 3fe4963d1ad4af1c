"""Training one model on one fold: duration batches and the in-memory audio (`batching`), the emotion
model (`model`), its settings (`config`), the learning-rate schedule and utterance weight
(`schedule`), the loop with validation, top-k and resume (`loop`), checkpoint files (`checkpoints`),
top-k averaging (`averaging`), the frozen-feature cache (`cache`), data parallelism under torchrun
(`distributed`) and device / precision (`device`).

May import: `benchmark.common`, `benchmark.data`, `benchmark.reporting`.
"""
