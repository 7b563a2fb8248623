"""Request logging for the local server: a thread-safe sampled logger of PredictionLog records.

Its one job: write a sample of the requests the server answered as TF Serving's own request
logging does, `tensorflow.serving.PredictionLog` records (`predict_log { request response }`,
`log_metadata`) in TFRecord files, so one reader (`bertpipe skew`, pipeline/skew.py) takes the
logs of both servers.

- Sampling: each request is logged with probability `sampling_rate` (TF Serving's
  `sampling_config { sampling_rate }`), decided per request.
- Never in a request's way: a request only draws a random number and, when sampled, puts a
  record builder on a bounded queue; one background thread builds the protos and writes them.
  A full queue drops the record (counted, one warning); a write that fails is logged and
  counted, never raised into a request.
- Never half-readable: records go to `DIR/.requests-<time>-<pid>.tfrecord.tmp`, renamed to
  `DIR/requests-<time>-<pid>.tfrecord` when the file is closed: after `max_records_per_file`
  records, `max_file_seconds` after it was opened (also when no request comes), and at close().
  A reader globbing `requests-*.tfrecord` sees only whole files. A crash leaves the `.tmp` file
  (its records up to the crash, perhaps a torn last one), which no reader picks up.
"""
from __future__ import annotations

import datetime
import logging
import os
import queue
import random
import threading
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from serving.contract import SERVE_TAG, SERVING_SIGNATURE, text_predict_request

_LOG = logging.getLogger(__name__)

LOG_FILE_PREFIX, LOG_FILE_SUFFIX = "requests-", ".tfrecord"
LOG_FILE_PATTERN = f"{LOG_FILE_PREFIX}*{LOG_FILE_SUFFIX}"  # closed files only
_TMP_SUFFIX = ".tmp"
DEFAULT_MAX_RECORDS_PER_FILE = 1000
DEFAULT_MAX_FILE_SECONDS = 60.0
# Records waiting for the writer thread; beyond this they are dropped. At the default limits a
# record is at most a few MB, and the writer keeps up with thousands of records a second.
DEFAULT_MAX_QUEUED = 1000

RecordBuilder = Callable[[], prediction_log_pb2.PredictionLog]
_CLOSE = object()  # the queue's last item


class RequestLogger:
    """Samples requests and writes them, from its own thread, into rotated TFRecord files."""

    def __init__(self, directory: str, sampling_rate: float,
                 max_records_per_file: int = DEFAULT_MAX_RECORDS_PER_FILE,
                 max_file_seconds: float = DEFAULT_MAX_FILE_SECONDS,
                 max_queued: int = DEFAULT_MAX_QUEUED,
                 random_number: Callable[[], float] = random.random):
        if not 0 < sampling_rate <= 1:
            raise ValueError(f"sampling rate {sampling_rate}: must be in (0, 1]")
        os.makedirs(directory, exist_ok=True)
        self.directory, self.sampling_rate = directory, sampling_rate
        self._max_records, self._max_seconds = max_records_per_file, max_file_seconds
        self._random = random_number
        self._queue: "queue.Queue" = queue.Queue(maxsize=max_queued)
        self._count_lock = threading.Lock()
        self.logged = self.dropped = self.failed = 0  # records written, queue full, unwritable
        self._warned_full = self._warned_failed = False
        self._writer: Optional[tf.io.TFRecordWriter] = None
        self._tmp_path = self._final_path = ""
        self._records_in_file, self._file_opened = 0, 0.0
        self._thread = threading.Thread(target=self._write_loop, daemon=True,
                                        name="request-log")
        self._thread.start()

    # ------------------------------------------------------------------ request threads

    def maybe_log(self, build: RecordBuilder) -> bool:
        """Logs the request `build` describes if it is sampled; True if it was queued.

        `build` runs later on the writer thread: the request only pays for the coin toss."""
        if self._random() >= self.sampling_rate:
            return False
        try:
            self._queue.put_nowait(build)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1
                warn, self._warned_full = not self._warned_full, True
            if warn:
                _LOG.warning("request log %s: the writer is behind, sampled requests are "
                             "dropped (counted; the server goes on answering)", self.directory)
            return False
        return True

    def close(self) -> None:
        """Writes what is queued, closes and renames the open file; then stops the thread."""
        if not self._thread.is_alive():
            return
        self._queue.put(_CLOSE)  # blocks while full: at shutdown the queued records are kept
        self._thread.join()
        if self.dropped or self.failed:
            _LOG.warning("request log %s: %d records written, %d dropped (queue full), %d not "
                         "written (errors)", self.directory, self.logged, self.dropped,
                         self.failed)

    # ------------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        while True:
            timeout = None
            if self._writer is not None:  # wake up in time to close a file that got old
                timeout = max(0.0, self._file_opened + self._max_seconds - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._close_file()
                continue
            if item is _CLOSE:
                self._close_file()
                return
            self._write(item)
            if self._writer is not None and (
                    self._records_in_file >= self._max_records
                    or time.monotonic() - self._file_opened >= self._max_seconds):
                self._close_file()

    def _write(self, build: RecordBuilder) -> None:
        try:
            record = build().SerializeToString()
            if self._writer is None:
                self._open_file()
            self._writer.write(record)
            self._records_in_file += 1
            self.logged += 1
        except Exception as error:  # pylint: disable=broad-except  (never stops the server)
            self.failed += 1
            if not self._warned_failed:
                self._warned_failed = True
                _LOG.warning("request log %s: cannot write a record (%s); further failures "
                             "are counted, not logged", self.directory, error)

    def _open_file(self) -> None:
        # UTC to the microsecond: names sort by time, and two files of a process never clash.
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{LOG_FILE_PREFIX}{stamp}-{os.getpid()}{LOG_FILE_SUFFIX}"
        self._final_path = os.path.join(self.directory, name)
        self._tmp_path = os.path.join(self.directory, f".{name}{_TMP_SUFFIX}")
        self._writer = tf.io.TFRecordWriter(self._tmp_path)
        self._records_in_file, self._file_opened = 0, time.monotonic()

    def _close_file(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
            os.replace(self._tmp_path, self._final_path)
        except Exception as error:  # pylint: disable=broad-except
            self.failed += self._records_in_file
            _LOG.warning("request log: cannot close %s: %s", self._tmp_path, error)


# -------------------------------------------------------------------------- the records


def _log_metadata(log: prediction_log_pb2.PredictionLog, model_name: str, version: int,
                  signature_name: str, sampling_rate: float) -> None:
    metadata = log.log_metadata
    metadata.model_spec.name = model_name
    metadata.model_spec.version.value = version
    metadata.model_spec.signature_name = signature_name or SERVING_SIGNATURE
    metadata.sampling_config.sampling_rate = sampling_rate
    metadata.saved_model_tags.append(SERVE_TAG)
    metadata.timestamp_secs = int(time.time())


def predict_log(request: predict_pb2.PredictRequest, response: predict_pb2.PredictResponse,
                sampling_rate: float) -> prediction_log_pb2.PredictionLog:
    """A PredictionLog of a gRPC Predict call: the request as received, the response sent."""
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.CopyFrom(request)
    log.predict_log.response.CopyFrom(response)
    _log_metadata(log, response.model_spec.name, response.model_spec.version.value,
                  response.model_spec.signature_name, sampling_rate)
    return log


def predict_log_from_texts(model_name: str, requested_version: Optional[int],
                           signature_name: str, texts: Sequence[bytes], used_version: int,
                           outputs: Mapping[str, np.ndarray],
                           sampling_rate: float) -> prediction_log_pb2.PredictionLog:
    """A PredictionLog of a REST predict call, as TF Serving logs one: the JSON request as the
    PredictRequest it converts it to (input `text`, a 1-D string tensor), and the response."""
    request = text_predict_request(texts, model_name, requested_version, signature_name)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = used_version
    response.model_spec.signature_name = signature_name or SERVING_SIGNATURE
    for name, values in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(values))
    return predict_log(request, response, sampling_rate)

