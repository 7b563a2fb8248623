"""Beam RunInference's ModelHandler for an exported model's `serving_default` signature.

RunInference (apache_beam.ml.inference.base) batches the elements (BatchElements, sizes from
`batch_elements_kwargs`), loads the model once per worker process and calls `run_inference`
once per batch. This handler takes raw texts (str) and makes one call of the serving signature
per batch: `text` (1-D tf.string) in, `label` and `probabilities` out (serving/contract.py).

Why not Beam's TFModelHandlerTensor (apache_beam.ml.inference.tensorflow_inference, Beam 2.60):
- it loads with tf.keras.models.load_model, which refuses our SavedModel: trainer/export.py
  saves a tf.Module with signatures (tf.saved_model.save), not a Keras model ("This SavedModel
  was exported with `tf.saved_model.save`, and lacks the TF-Keras metadata file");
- it calls the loaded object (`model(tf.stack(batch))`), not a named signature, so only a custom
  `inference_fn` plus a custom loader would make it work: nothing of it would be left;
- its module imports tensorflow_hub, which does not import here (it needs pkg_resources).
So this handler loads with tf.saved_model.load, after importing tensorflow_text (which
registers the tokenizer ops the graph uses), and keeps Beam's batching, model sharing and
metrics.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Iterable, List, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from serving.contract import (BATCH_PREDICTION_BATCH_SIZE, CLASSES, PREDICTED_LABEL,
                              PROBABILITIES, SERVING_SIGNATURE, TEXT_INPUT, text_bytes)


@functools.lru_cache(maxsize=1)
def load_serving_model(saved_model_dir: str):
    """The loaded SavedModel (a tf.Module whose .signatures hold `serving_default`).

    Cached (one model): the launcher of a local Beam job loads the model to learn its classes,
    and the DirectRunner's worker, in the same process, then gets the same object instead of
    loading it a second time. A Dataflow worker loads it once per process."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)
    return tf.saved_model.load(saved_model_dir)


def serve(model, texts: Sequence[str]) -> Dict[str, Any]:
    """One call of the serving signature on `texts`: {output name: numpy array}."""
    import tensorflow as tf
    encoded = [text_bytes(text, index) for index, text in enumerate(texts)]
    outputs = model.signatures[SERVING_SIGNATURE](**{TEXT_INPUT: tf.constant(encoded,
                                                                             dtype=tf.string)})
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def model_classes(model) -> List[str]:
    """The class names, in the order of the probabilities (the `classes` output)."""
    return [name.decode("utf-8") for name in serve(model, [""])[CLASSES][0]]


class ServingSignatureModelHandler(ModelHandler[str, PredictionResult, Any]):
    """Texts in; PredictionResult(text, {"label": str, "probabilities": float32 array}) out."""

    def __init__(self, saved_model_dir: str, batch_size: int = BATCH_PREDICTION_BATCH_SIZE):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._saved_model_dir = saved_model_dir
        self._batch_size = batch_size

    def load_model(self):
        return load_serving_model(self._saved_model_dir)

    def run_inference(self, batch: Sequence[str], model,
                      inference_args: Optional[Dict[str, Any]] = None
                      ) -> Iterable[PredictionResult]:
        outputs = serve(model, batch)
        return [PredictionResult(text, {PREDICTED_LABEL: label.decode("utf-8"),
                                        PROBABILITIES: probabilities},
                                 self._saved_model_dir)
                for text, label, probabilities in zip(batch, outputs[PREDICTED_LABEL],
                                                      outputs[PROBABILITIES])]

    def batch_elements_kwargs(self) -> Dict[str, int]:
        # Full batches of exactly batch_size (the last one of a bundle may be smaller).
        return {"min_batch_size": self._batch_size, "max_batch_size": self._batch_size}

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(text.encode("utf-8", "replace")) for text in batch)

    def get_metrics_namespace(self) -> str:
        return "BeamML_bertpipe_serving_default"
