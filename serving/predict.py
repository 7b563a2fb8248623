"""Predictions from an exported model in this process: raw text in, label and probabilities out.

Takes a SavedModel directory, or a TF Serving model directory (<serving_root>/<model_name>) in
which case the highest version is used. Needs only TensorFlow and the tensorflow_text ops.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

from serving.contract import (CLASSES, PREDICTED_LABEL, PROBABILITIES, SERVING_SIGNATURE,
                              TEXT_INPUT, version_numbers)
from serving.results import label_results


def resolve_saved_model_dir(path: str) -> str:
    """`path` itself if it holds saved_model.pb, else its highest all-digit version dir."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = version_numbers(path, tf.io.gfile.listdir, tf.io.gfile.isdir)
    if not versions:
        raise FileNotFoundError(f"{path} is neither a SavedModel nor a model directory with "
                                "numbered versions")
    return os.path.join(path, str(versions[-1]))


def _serve(model, texts: Sequence[str]) -> Dict[str, tf.Tensor]:
    return model.signatures[SERVING_SIGNATURE](**{TEXT_INPUT: tf.constant(list(texts))})


def predict(model_dir: str, texts: Sequence[str]) -> List[Dict]:
    model = tf.saved_model.load(resolve_saved_model_dir(model_dir))
    outputs = _serve(model, texts)
    return label_results(texts, outputs[PREDICTED_LABEL].numpy(), outputs[CLASSES].numpy(),
                         outputs[PROBABILITIES].numpy())


def accuracy(model_dir: str, texts: Sequence[str], labels: Sequence[str],
             batch_size: int = 64) -> float:
    """Share of texts whose predicted label name equals the given label."""
    model = tf.saved_model.load(resolve_saved_model_dir(model_dir))
    correct = 0
    for start in range(0, len(texts), batch_size):
        predicted = _serve(model, texts[start:start + batch_size])[PREDICTED_LABEL].numpy()
        correct += sum(p.decode() == label
                       for p, label in zip(predicted, labels[start:start + batch_size]))
    return correct / len(texts)
