"""Fault injection into the local pipeline: SIGKILL inside a component, then the same command
again.

`bertpipe run` (the real CLI, the real LocalDagRunner and Beam DirectRunner, the tiny BERT) runs
in a process group of its own. The kill point is the moment the component's execution has
started: TFX's launcher has registered the execution in ML Metadata and created the output
directory it hands to the executor (`<pipeline_root>/<component>/<output>/<execution id>`). The
test waits for that directory, kills the whole group with SIGKILL (no handler runs, as with an
out-of-memory kill or a lost machine), checks that the component's execution is not COMPLETE,
then runs the command again and checks:

- the run completes and pushes version 1, as the uninterrupted run did (same version count);
- the examples the final run used are the uninterrupted run's, record for record;
- ML Metadata holds no COMPLETE (or CACHED) execution whose output artifacts are missing on disk
  or not LIVE;
- the serving root never shows a version directory that is not a complete SavedModel.

Each case costs a pipeline run and a half (minutes): all are slow checks, run by `make chaos`,
which also writes the faults table of docs/RELIABILITY.md.
"""
import collections
import glob
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from conftest import REPO_ROOT, TINY_VOCAB_FLAGS
from pipeline.config import METADATA_FILE, PIPELINE_ROOT_DIR, PipelineConfig
from serving.contract import version_numbers
from trainer_harness import subprocess_env

_DEFAULTS = PipelineConfig.from_settings(train_data="x.csv")
PIPELINE_NAME, MODEL_NAME = _DEFAULTS.runtime.pipeline_name, _DEFAULTS.serving.model_name
# Component id -> the output whose directory TFX's launcher creates right before the executor.
KILL_POINTS = {"TextExampleGen": "examples", "Transform": "transform_graph",
               "Trainer": "model", "Evaluator": "evaluation", "ServingPusher": "pushed_model"}
RUN_TIMEOUT_SECONDS = 900


def run_command(tiny_bert, output_dir):
    demo = REPO_ROOT / "data" / "demo"
    return [sys.executable, "-m", "pipeline.cli", "run",
            "--train-data", str(demo / "train.csv"), "--eval-data", str(demo / "eval.csv"),
            "--schema-path", str(REPO_ROOT / "schemas" / "demo.pbtxt"),
            "--checkpoint", str(tiny_bert), "--max-seq-length", "32", "--epochs", "1",
            "--train-batch-size", "16", "--min-accuracy", "0", "--max-accuracy-drop", "1",
            "--output-dir", str(output_dir), *TINY_VOCAB_FLAGS]


def start(command, log_path):
    log = open(log_path, "ab")  # noqa: SIM115 (closed by the caller through the process)
    return subprocess.Popen(command, cwd=REPO_ROOT, env=subprocess_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def run_to_completion(command, log_path):
    process = start(command, log_path)
    try:
        assert process.wait(timeout=RUN_TIMEOUT_SECONDS) == 0, log_tail(log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def log_tail(log_path, characters=4000):
    with open(log_path, "rb") as handle:
        return handle.read().decode("utf-8", "replace")[-characters:]


def run_dir(output_dir):
    return os.path.join(output_dir, PIPELINE_NAME)


def output_dirs(output_dir, component, output):
    return set(glob.glob(os.path.join(run_dir(output_dir), PIPELINE_ROOT_DIR, component, output,
                                      "*")))


def store(output_dir):
    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(
        os.path.join(run_dir(output_dir), METADATA_FILE)))


def completed_executions_without_outputs(mlmd):
    """COMPLETE/CACHED executions with an output artifact missing on disk or not LIVE."""
    done = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    problems = []
    for execution in mlmd.get_executions():
        if execution.last_known_state not in done:
            continue
        outputs = [event.artifact_id for event in mlmd.get_events_by_execution_ids(
            [execution.id]) if event.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in mlmd.get_artifacts_by_id(outputs):
            if artifact.state != metadata_store_pb2.Artifact.LIVE or not tf.io.gfile.exists(
                    artifact.uri):
                problems.append((execution.id, artifact.uri, artifact.state))
    return problems


def examples_used(mlmd):
    """The (text, label) of every tf.Example of the newest LIVE ExampleGen artifact, per split.

    Parsed, not compared as bytes: the order of a tf.Example's feature map in its serialized
    form is not fixed, so equal examples can serialize differently."""
    artifacts = [artifact for artifact in mlmd.get_artifacts()
                 if "/TextExampleGen/examples/" in artifact.uri
                 and artifact.state == metadata_store_pb2.Artifact.LIVE]
    newest = max(artifacts, key=lambda artifact: artifact.id)
    records = collections.defaultdict(collections.Counter)
    for path in glob.glob(os.path.join(newest.uri, "Split-*", "*.gz")):
        split = os.path.basename(os.path.dirname(path))
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            records[split][tuple((name, tuple(feature[name].bytes_list.value))
                                 for name in sorted(feature))] += 1
    return dict(records)


def incomplete_versions(serving_model_dir):
    """Version directories (all digits, what a server loads) that are not a whole SavedModel."""
    return [version for version in version_numbers(serving_model_dir)
            if not os.path.exists(os.path.join(serving_model_dir, str(version),
                                               "saved_model.pb"))
            or not glob.glob(os.path.join(serving_model_dir, str(version), "variables",
                                          "variables.index"))]


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert, tmp_path_factory):
    """One run without faults: what every interrupted run must end with."""
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    started = time.monotonic()
    run_to_completion(run_command(tiny_bert, output_dir), output_dir / "run.log")
    mlmd = store(output_dir)
    return {"examples": examples_used(mlmd), "seconds": time.monotonic() - started,
            "versions": version_numbers(os.path.join(output_dir, "serving", MODEL_NAME))}


@pytest.mark.slow
@pytest.mark.parametrize("component", list(KILL_POINTS))
def test_a_run_killed_inside_a_component_completes_when_run_again_with_the_same_result(
        component, uninterrupted, tiny_bert, tmp_path, fault_record):
    assert uninterrupted["versions"] == [1]
    output_dir = tmp_path / "runs"
    command = run_command(tiny_bert, output_dir)
    serving_model_dir = os.path.join(output_dir, "serving", MODEL_NAME)
    log_path = tmp_path / "run.log"

    started = time.monotonic()
    process = start(command, log_path)
    seen_partial_version = []
    try:
        while not output_dirs(output_dir, component, KILL_POINTS[component]):
            assert process.poll() is None, (f"the run ended before {component} started:\n"
                                            + log_tail(log_path))
            seen_partial_version += incomplete_versions(serving_model_dir)
            assert time.monotonic() - started < RUN_TIMEOUT_SECONDS, log_tail(log_path)
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_after = time.monotonic() - started
    assert process.returncode == -signal.SIGKILL
    mlmd = store(output_dir)
    [killed] = [execution for execution in mlmd.get_executions()
                if execution.last_known_state == metadata_store_pb2.Execution.RUNNING]
    # The kill came inside this component's execution (its type is the component's class).
    assert mlmd.get_execution_types_by_id([killed.type_id])[0].name.endswith(
        f".{component}"), killed
    assert completed_executions_without_outputs(mlmd) == []
    assert incomplete_versions(serving_model_dir) == []

    rerun_started = time.monotonic()
    run_to_completion(command, log_path)
    rerun_seconds = time.monotonic() - rerun_started

    mlmd = store(output_dir)
    problems = completed_executions_without_outputs(mlmd)
    same_examples = examples_used(mlmd) == uninterrupted["examples"]
    versions = version_numbers(serving_model_dir)
    fault_record(f"SIGKILL inside {component}",
                 f"the run's process group killed once {component}'s output directory "
                 f"appeared ({killed_after:.0f} s into the run); the same command run again",
                 rerun_seconds, survived=not problems and versions == [1],
                 data_lost="none (same examples, version 1 pushed once)"
                 if same_examples and versions == [1] else
                 f"examples equal: {same_examples}; versions {versions}")
    assert problems == []
    assert same_examples
    assert versions == uninterrupted["versions"]
    assert seen_partial_version == [] and incomplete_versions(serving_model_dir) == []
