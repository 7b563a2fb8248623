"""The SavedModel's warm-up requests: TF Serving's `assets.extra/tf_serving_warmup_requests`.

TensorFlow Serving replays this file (TFRecords of `tensorflow.serving.PredictionLog`) on every
version it loads, before the version takes traffic, and refuses the version if a request fails.
The first call of each encoder shape otherwise pays for graph optimization, oneDNN kernel set-up
and, in an XLA export, a compilation of a second or more, on a client's request. The export
(trainer/export.py) writes one request per encoder shape it can run; the local server replays
them the same way (serving/servable.py), and the ServingCheck's probe replays them as the model
server would (serving/model_probe.py).

No TFX: this is the serving package's side of the file, writing and reading it.
"""
from __future__ import annotations

import os
from typing import List, Sequence

from serving.contract import SERVING_SIGNATURE, TEXT_INPUT, text_predict_request

# TF Serving's fixed name (tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc);
# it reads at most 1,000 records of it.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000


class WarmupFileError(ValueError):
    """A warm-up file that TF Serving could not replay; the message names the file and record."""


def write_warmup_requests(saved_model_dir: str, batches: Sequence[Sequence[str]]) -> str:
    """Writes one `serving_default` Predict request per batch of texts; returns the file's path.

    Written under a temporary name and renamed, so an interrupted export leaves no partial file
    that a model server would replay."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    if not 0 < len(batches) <= MAX_WARMUP_RECORDS:
        raise ValueError(f"a warm-up file holds 1 to {MAX_WARMUP_RECORDS} requests "
                         f"(TF Serving reads no more), got {len(batches)}")
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    partial = path + ".partial"
    with tf.io.TFRecordWriter(partial) as writer:
        for texts in batches:
            request = text_predict_request([text.encode("utf-8") for text in texts])
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    tf.io.gfile.rename(partial, path, overwrite=True)
    return path


def read_warmup_requests(saved_model_dir: str) -> List[List[bytes]]:
    """The texts of each `serving_default` request of the model's warm-up file, in file order
    ([] if it has none). Raises WarmupFileError for a record TF Serving could not replay."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    batches = []
    try:
        records = list(tf.compat.v1.io.tf_record_iterator(path))
    except tf.errors.OpError as error:
        raise WarmupFileError(f"{path}: not a TFRecord file ({error.message})") from error
    for number, record in enumerate(records[:MAX_WARMUP_RECORDS], start=1):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except Exception as error:  # protobuf's DecodeError
            raise WarmupFileError(f"{path}, record {number}: not a PredictionLog") from error
        request = log.predict_log.request
        signature = request.model_spec.signature_name or SERVING_SIGNATURE
        if (log.WhichOneof("log_type") != "predict_log" or signature != SERVING_SIGNATURE
                or TEXT_INPUT not in request.inputs):
            raise WarmupFileError(
                f"{path}, record {number}: expected a predict_log request of "
                f"{SERVING_SIGNATURE!r} with input {TEXT_INPUT!r}")
        batches.append(list(tf.make_ndarray(request.inputs[TEXT_INPUT]).reshape(-1)))
    return batches
