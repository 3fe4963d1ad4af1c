"""The public Python entry point for using an exported model (`from benchmark.predict import load_model`);
the implementation lives in `benchmark.deploy.predict`."""
from .deploy.predict import EmotionPredictor, Failure, Prediction, load_model

__all__ = ["EmotionPredictor", "Failure", "Prediction", "load_model"]
