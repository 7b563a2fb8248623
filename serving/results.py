"""Per-text results from the serving contract's outputs: what `bertpipe predict` prints.

Shared by in-process prediction (serving/predict.py) and the server clients (serving/client.py),
so a prediction reads the same whichever way it was made.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

from serving.contract import PROBABILITIES

_DIGITS = 6  # of each printed probability


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def label_results(texts: Sequence[str], labels: Sequence, classes: Sequence[Sequence],
                  probabilities: Sequence[Sequence[float]]) -> List[Dict]:
    """[{"text", "label", "probabilities": {class name: probability}}] in the texts' order."""
    return [{"text": text, "label": _text(label),
             PROBABILITIES: {_text(name): round(float(p), _DIGITS)
                             for name, p in zip(row_classes, row)}}
            for text, label, row_classes, row in zip(texts, labels, classes, probabilities)]
