"""Predictions from an exported model in this process: raw text in, label and probabilities out.

Takes a SavedModel directory, or a TF Serving model directory (<serving_root>/<model_name>) in
which case the highest version is used. Needs only TensorFlow and the tensorflow_text ops.
"""
from __future__ import annotations

import collections
import os
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

from serving.contract import (CLASSES, PREDICTED_LABEL, PROBABILITIES, SERVING_SIGNATURE,
                              TEXT_INPUT, text_bytes, version_numbers)
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
    """The serving signature on `texts`; InvalidTextError (as the servers refuse it) for a text
    that is not valid Unicode."""
    encoded = [text_bytes(text, index) for index, text in enumerate(texts)]
    return model.signatures[SERVING_SIGNATURE](**{TEXT_INPUT: tf.constant(encoded,
                                                                         dtype=tf.string)})


def predict(model_dir: str, texts: Sequence[str]) -> List[Dict]:
    model = tf.saved_model.load(resolve_saved_model_dir(model_dir))
    outputs = _serve(model, texts)
    return label_results(texts, outputs[PREDICTED_LABEL].numpy(), outputs[CLASSES].numpy(),
                         outputs[PROBABILITIES].numpy())


class LabelMismatchError(ValueError):
    """No label of the data is a class of the model: an accuracy would mean nothing."""


def check_labels(classes: Sequence[str], labels: Sequence[str], source: str) -> Optional[str]:
    """Raises LabelMismatchError when no label is one of the model's `classes`; returns a
    warning when some are not (they count as wrong), else None. `source` names the data."""
    known = set(classes)
    unknown = collections.Counter(label for label in labels if label not in known)
    found = sorted(set(labels))
    if labels and sum(unknown.values()) == len(labels):
        raise LabelMismatchError(
            f"no label in {source} is a class of the model: the data has "
            f"{found[:20]}{' ...' if len(found) > 20 else ''}, the model's classes are "
            f"{list(classes)}. Map the labels to the class names (or choose the right "
            "--label-column).")
    if unknown:
        most = ", ".join(f"{label!r} ({count})" for label, count in unknown.most_common(5))
        return (f"{sum(unknown.values())} of {len(labels)} rows of {source} have a label that "
                f"is not a class of the model ({most}); they count as wrong")
    return None


def accuracy(model_dir: str, texts: Sequence[str], labels: Sequence[str],
             batch_size: int = 64, source: str = "the data") -> Tuple[float, Optional[str]]:
    """Share of texts whose predicted label name equals the given label, and check_labels'
    warning (LabelMismatchError when no label is a class of the model)."""
    model = tf.saved_model.load(resolve_saved_model_dir(model_dir))
    classes = [name.decode() for name in _serve(model, texts[:1])[CLASSES].numpy()[0]] \
        if texts else []
    warning = check_labels(classes, labels, source)
    correct = 0
    for start in range(0, len(texts), batch_size):
        predicted = _serve(model, texts[start:start + batch_size])[PREDICTED_LABEL].numpy()
        correct += sum(p.decode() == label
                       for p, label in zip(predicted, labels[start:start + batch_size]))
    return correct / max(len(texts), 1), warning
