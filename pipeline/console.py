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
  a component running a Beam pipeline (ExampleGen, StatisticsGen, Transform, Evaluator) that
  has said nothing for `HEARTBEAT_SECONDS` gets a line with how many of the pipeline's bundles
  and stages Beam has run and which stage runs now (the DirectRunner knows no total to count
  down from); the Trainer reports its own progress (trainer/progress.py);
- verbose: every library's INFO log, TensorFlow's C++ log included.

A variable the user has set (TF_CPP_MIN_LOG_LEVEL, TRANSFORMERS_VERBOSITY) is left as it is.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
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
    # TFDV on the text statistics, which are sliced by label: it validates the slice of all
    # examples, as intended (pipeline/data_quality.py).
    ("root", "Multiple datasets found in statistics. Using the default slice dataset."),
)

# Beam's in-process runner logs each bundle it runs (at DEBUG) with its stage's name.
BEAM_BUNDLE_LOGGER = "apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle"
_BEAM_BUNDLE_MESSAGE = "Running bundle for stage"
HEARTBEAT_SECONDS = 15.0
_STAGE_PREFIX = re.compile(r"^\(*(ref_AppliedPTransform_)?")
_STAGE_ID = re.compile(r"_\d+$")

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
        self._last_line = float("-inf")  # when the last line was shown
        self._bundles = 0
        self._stages: set = set()
        self._stage = ""

    def heartbeat(self) -> Optional[str]:
        """The line to show now for a Beam component silent for HEARTBEAT_SECONDS, or None."""
        now = self._clock()
        if self._running is None or not self._bundles or \
                now - self._last_line < HEARTBEAT_SECONDS:
            return None
        self._last_line = now
        seconds = now - self._started.get(self._running, now)
        return (f"{self._elapsed(now)} {self._running} ... {seconds:.0f} s: Beam has run "
                f"{self._bundles} bundles of {len(self._stages)} stages, now {self._stage}")

    def _count_bundle(self, record: logging.LogRecord) -> bool:
        stage = str(record.args[0]) if record.args else ""
        self._bundles += 1
        self._stages.add(stage)
        # A fused stage is named after its transforms: the first one's label says enough.
        first = _STAGE_ID.sub("", _STAGE_PREFIX.sub("", stage).split(")+(")[0].rstrip(")"))
        self._stage = first[:70] + ("..." if len(first) > 70 else "")
        return False

    def _elapsed(self, now: float) -> str:
        if self._started_run is None:
            self._started_run = now
        return f"[{now - self._started_run:6.1f} s]"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return not _is_noise(record)
        if record.name == BEAM_BUNDLE_LOGGER:
            return str(record.msg).startswith(_BEAM_BUNDLE_MESSAGE) and self._count_bundle(record)
        if not record.name.startswith("absl"):
            return False
        message = record.getMessage()
        running = _COMPONENT_RUNNING.match(message)
        if running:
            now = self._clock()
            self._running, self._cached = running.group(1), False
            self._bundles, self._stages, self._stage = 0, set(), ""
            self._started[self._running] = now
            return self._rewrite(record, f"{self._elapsed(now)} {self._running} ...", now)
        if _CACHED.match(message):
            self._cached = True
            return False
        finished = _COMPONENT_FINISHED.match(message)
        if finished:
            now, node = self._clock(), finished.group(1)
            seconds = now - self._started.pop(node, now)
            outcome = "cached" if self._cached and node == self._running else f"{seconds:.1f} s"
            if node == self._running:
                self._running, self._bundles = None, 0
            return self._rewrite(record, f"{self._elapsed(now)} {node} done ({outcome})", now)
        return False

    def _rewrite(self, record: logging.LogRecord, line: str, now: float) -> bool:
        record.msg, record.args = line, ()
        record.levelname = "progress"
        self._last_line = now
        return True


_heartbeat_thread: Optional[threading.Thread] = None


def _beat(progress: ComponentProgress, handler: logging.Handler) -> None:
    """Shows the heartbeat line of `progress` whenever there is one (a daemon thread)."""
    while True:
        time.sleep(1.0)
        line = progress.heartbeat()
        if line:
            record = logging.LogRecord("bertpipe", logging.INFO, __file__, 0, line, (), None)
            record.levelname = "progress"
            handler.acquire()  # handle() would run the filter, which passes only TFX's records
            try:
                handler.emit(record)
            finally:
                handler.release()


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
    progress = ComponentProgress()
    handler.addFilter(progress)
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # Beam's bundle records reach the filter, which counts them and shows none.
    logging.getLogger(BEAM_BUNDLE_LOGGER).setLevel(logging.DEBUG)
    global _heartbeat_thread  # pylint: disable=global-statement  (one per process)
    if _heartbeat_thread is None:
        _heartbeat_thread = threading.Thread(target=_beat, args=(progress, handler),
                                             name="bertpipe-heartbeat", daemon=True)
        _heartbeat_thread.start()
    # TFX reports its components at INFO through absl: let those reach the filter. Through
    # absl's own verbosity setting, which TensorFlow saves and restores around code it silences
    # (a level set on the logger directly would be lost at the first restore).
    absl_logging.set_verbosity(absl_logging.INFO)
