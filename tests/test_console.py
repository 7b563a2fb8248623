"""What a `bertpipe` command shows (pipeline/console.py): quiet by default, everything with
--verbose, one line per pipeline component."""
import logging
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from pipeline import console


def record(name, level, message, *args):
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_component_records_become_one_line_each_and_other_info_is_dropped():
    times = iter([100.0, 103.5, 104.0, 104.2])
    progress = console.ComponentProgress(clock=lambda: next(times))
    lines = []
    for item in (record("absl", logging.INFO, "Component %s is running.", "Transform"),
                 record("absl", logging.INFO, "Going to run a new execution 7"),
                 record("absl", logging.INFO, "Component %s is finished.", "Transform"),
                 record("absl", logging.INFO, "Component %s is running.", "Trainer"),
                 record("absl", logging.INFO, "A cached execution %d is used.", 9),
                 record("absl", logging.INFO, "Component %s is finished.", "Trainer"),
                 record("tensorflow", logging.INFO, "Assets written to: /tmp/x")):
        if progress.filter(item):
            lines.append(item.getMessage())
    assert lines == ["[   0.0 s] Transform ...", "[   3.5 s] Transform done (3.5 s)",
                     "[   4.0 s] Trainer ...", "[   4.2 s] Trainer done (cached)"]


def test_a_silent_beam_component_gets_a_heartbeat_with_beam_s_bundles_and_stages():
    now = [100.0]
    progress = console.ComponentProgress(clock=lambda: now[0])
    bundle = "Running bundle for stage %s\n\tExpected outputs: %s timers: %s"
    stages = ["ref_AppliedPTransform_ReadFromTFRecord-Read-Impulse_4",
              "((GenerateStats[train]/Flatten)+(GenerateStats[train]/Decode))",
              "((ref_AppliedPTransform_AnalyzeDataset-Vocabulary_12)+(ref_AppliedPTransform_X_13))"]
    assert progress.filter(record("absl", logging.INFO, "Component %s is running.", "Transform"))
    for stage in (stages[0], stages[1], stages[2], stages[2]):
        assert not progress.filter(record(console.BEAM_BUNDLE_LOGGER, logging.DEBUG, bundle,
                                          stage, {}, {}))
    # Beam's other debug records of the same logger are not bundles.
    assert not progress.filter(record(console.BEAM_BUNDLE_LOGGER, logging.DEBUG, "Update: %s %s",
                                      "pcollection", 7))
    now[0] += console.HEARTBEAT_SECONDS - 1
    assert progress.heartbeat() is None  # not silent for long enough yet
    now[0] += 1
    assert progress.heartbeat() == ("[  15.0 s] Transform ... 15 s: Beam has run 4 bundles of 3 "
                                    "stages, now AnalyzeDataset-Vocabulary")
    assert progress.heartbeat() is None  # once per silent period
    # A component without Beam (the Trainer reports its own progress) gets none.
    assert progress.filter(record("absl", logging.INFO, "Component %s is finished.", "Transform"))
    assert progress.filter(record("absl", logging.INFO, "Component %s is running.", "Trainer"))
    now[0] += 10 * console.HEARTBEAT_SECONDS
    assert progress.heartbeat() is None


def test_known_noise_is_dropped_and_every_other_warning_kept():
    progress = console.ComponentProgress()
    for name, fragment in console.NOISE:
        assert not progress.filter(record(name, logging.WARNING, f"x {fragment} y"))
    # The same text from another library, and other warnings of the same library, stay.
    assert progress.filter(record("pipeline.cli", logging.WARNING,
                                  "ArtifactQuery.property_predicate is not supported"))
    assert progress.filter(record("absl", logging.WARNING, "Evaluator: no baseline model"))
    assert progress.filter(record("tensorflow", logging.ERROR, "something failed"))


def run_cli(*args, env=None):
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "TRANSFORMERS_VERBOSITY",
                                  "BERTPIPE_VERBOSE")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO_ROOT,
                          env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def model_dir(demo_first_run):
    return demo_first_run.resolved().model_dir


def test_a_command_that_loads_tensorflow_prints_its_answer_and_nothing_else(model_dir):
    # A fresh process, as a user starts it: TensorFlow's CUDA-plugin and oneDNN messages,
    # Google client FutureWarnings and absl warnings would all come before the answer.
    quiet = run_cli("predict", "--model", model_dir, "a fine film")
    assert quiet.returncode == 0, quiet.stderr
    assert '"label"' in quiet.stdout
    assert quiet.stderr == ""
    verbose = run_cli("predict", "--model", model_dir, "a fine film", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == quiet.stdout
    assert verbose.stderr != ""  # the libraries' log, back
