"""What a `bertpipe` command shows on the terminal: quiet by default, everything with --verbose.

`configure(verbose)` runs first thing in the command (before TensorFlow is imported, because
some of the noise is settled by environment variables read at import):

- quiet (the default): TensorFlow's C++ log (the cuFFT/cuDNN/cuBLAS "Unable to register
  factory" errors of a machine without CUDA, oneDNN notices) is off (TF_CPP_MIN_LOG_LEVEL=3;
  an error that matters reaches Python as an exception), transformers logs errors only (not
  its "Some weights of the PyTorch model were not used" paragraph), FutureWarnings of Google's
  client libraries are hidden, and log records from the libraries matching `NOISE` are dropped.
  Every other warning stays visible. TFX's "Component X is running/finished" records become one
  line per component, with the time since the run started, so a long run shows where it is;
- verbose: every library's INFO log, TensorFlow's C++ log included.

A variable the user has set (TF_CPP_MIN_LOG_LEVEL, TRANSFORMERS_VERBOSITY) is left as it is.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from typing import Optional, Tuple

from absl import logging as absl_logging

# (logger name prefix, message fragment): records a user can do nothing about. Each fragment
# is specific, so a new warning from the same library still shows.
NOISE: Tuple[Tuple[str, str], ...] = (
    # TFX's input resolution on every component: a feature of newer ML Metadata it skips.
    ("absl", "ArtifactQuery.property_predicate is not supported"),
    # TFX components reading Examples written without the property (all of TFX 1.16's own).
    ("absl", "does not have payload_format custom property"),
    # TF Transform's graph with tensorflow_text's WordPiece table, loaded inside tf.functions.
    ("absl", "Tables initialized inside a tf.function"),
    # A TFX custom artifact type read back from ML Metadata in a process that never imported
    # its class: TFX makes an equivalent one.
    ("absl", "Could not find matching artifact class for type"),
    # Deprecated TensorFlow APIs that TFMA and TFT call (e.g. tf_record_iterator).
    ("tensorflow", "is deprecated and will be removed"),
    # Beam without the optional python-snappy: only a slower CRC on small local files.
    ("apache_beam", "Couldn't find python-snappy"),
)

_COMPONENT_RUNNING = re.compile(r"Component (\S+) is running\.$")
_COMPONENT_FINISHED = re.compile(r"Component (\S+) is finished\.$")
_CACHED = re.compile(r"A cached execution \d+ is used\.$")


def _is_noise(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return any(record.name.startswith(name) and fragment in message
               for name, fragment in NOISE)


class ComponentProgress(logging.Filter):
    """Keeps warnings that are not NOISE and rewrites TFX's component start/finish records
    (absl, INFO) into one line each; drops every other INFO record."""

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self._clock = clock
        self._started_run: Optional[float] = None
        self._started: dict = {}
        self._running: Optional[str] = None
        self._cached = False

    def _elapsed(self, now: float) -> str:
        if self._started_run is None:
            self._started_run = now
        return f"[{now - self._started_run:6.1f} s]"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return not _is_noise(record)
        if not record.name.startswith("absl"):
            return False
        message = record.getMessage()
        running = _COMPONENT_RUNNING.match(message)
        if running:
            now = self._clock()
            self._running, self._cached = running.group(1), False
            self._started[self._running] = now
            return self._rewrite(record, f"{self._elapsed(now)} {self._running} ...")
        if _CACHED.match(message):
            self._cached = True
            return False
        finished = _COMPONENT_FINISHED.match(message)
        if finished:
            now, node = self._clock(), finished.group(1)
            seconds = now - self._started.pop(node, now)
            outcome = "cached" if self._cached and node == self._running else f"{seconds:.1f} s"
            return self._rewrite(record, f"{self._elapsed(now)} {node} done ({outcome})")
        return False

    @staticmethod
    def _rewrite(record: logging.LogRecord, line: str) -> bool:
        record.msg, record.args = line, ()
        record.levelname = "progress"
        return True


class _ConsoleFormatter(logging.Formatter):
    """Progress lines as they are; warnings and errors with their level and origin."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelname == "progress":
            return record.getMessage()
        return super().format(record)


def configure(verbose: bool = False) -> None:
    """Sets up the process's output for a `bertpipe` command (call before importing TF)."""
    root = logging.getLogger()
    if verbose:
        logging.basicConfig(level=logging.INFO)
        absl_logging.set_verbosity(absl_logging.INFO)  # TFX logs through absl
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # Google's client libraries warn on every import about Python 3.10's support ending.
    warnings.filterwarnings("ignore", category=FutureWarning)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ConsoleFormatter("%(levelname)s:%(name)s:%(message)s"))
    handler.addFilter(ComponentProgress())
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # TFX reports its components at INFO through absl: let those reach the filter. Through
    # absl's own verbosity setting, which TensorFlow saves and restores around code it silences
    # (a level set on the logger directly would be lost at the first restore).
    absl_logging.set_verbosity(absl_logging.INFO)
