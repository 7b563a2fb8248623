"""Pipeline runs as ML Metadata recorded them: the one module that reads them.

A local run directory (<output_dir>/<pipeline_name>, pipeline/config.py's `run_layout`) holds
the SQLite ML Metadata store and the pipeline root. This module opens the store read-only and
answers what the report, the terminal summary, span skipping and the benchmarks ask:

- `run_ids(run_dir)`, `read_run(run_dir, run_id=None)`: a run (default: the latest) with each
  component's execution, its state (COMPLETE, CACHED, FAILED, ...), wall time, execution
  properties and output artifacts (from the run directory given, also when it was moved);
- `runs_that_read(run_dir, span, fingerprint)`: the runs whose ExampleGen produced (or reused)
  the examples of a span with that input fingerprint;
- `pushes(run_dir)`: the models the ServingPusher put in place, with their version and run.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Any, Dict, List, Optional

from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.components.example_gen import utils as example_gen_utils
from tfx.orchestration import metadata
# Imported for their artifact classes: MLMD artifacts deserialize to registered classes.
from tfx.types import artifact_utils, standard_artifacts  # noqa: F401
from tfx.types.artifact import Artifact

from pipeline.config import run_layout

_STATE_NAMES = metadata_store_pb2.Execution.State.Name
SUCCEEDED_STATES = ("COMPLETE", "CACHED")
# The components after Transform, which a --no-train run leaves out.
TRAINING_HALF = ("Trainer", "Evaluator", "ServingCheck", "ServingPusher")


class RunStoreError(ValueError):
    """The run directory holds no (such) pipeline run; the message says what is wrong."""


@dataclasses.dataclass
class ComponentRun:
    """One component's execution in a pipeline run, with its artifacts."""

    component: str  # the node id, e.g. "Trainer"
    state: str  # COMPLETE, CACHED (outputs of an earlier execution reused), FAILED, RUNNING
    seconds: float
    properties: Dict[str, Any]  # execution properties (custom_config as a JSON string, ...)
    outputs: Dict[str, List[Artifact]]
    # The artifacts it read, by input key, at the URIs recorded (e.g. the drift baseline).
    inputs: Dict[str, List[Artifact]] = dataclasses.field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCEEDED_STATES

    def json_property(self, name: str) -> Any:
        """An execution property that TFX stores as JSON (custom_config, eval_config, ...)."""
        value = self.properties.get(name)
        return json.loads(value) if value else None


@dataclasses.dataclass
class PipelineRun:
    """One run of a pipeline as ML Metadata recorded it."""

    pipeline_name: str
    run_id: str
    run_dir: str
    started: datetime.datetime
    finished: datetime.datetime
    components: Dict[str, ComponentRun]  # in execution order

    def get(self, component: str) -> Optional[ComponentRun]:
        return self.components.get(component)

    def artifact(self, component: str, key: str) -> Optional[Artifact]:
        """The output `key` of a component that succeeded in this run, else None."""
        execution = self.components.get(component)
        if execution is None or not execution.succeeded:
            return None
        artifacts = execution.outputs.get(key)
        return artifacts[0] if artifacts else None

    @property
    def failed(self) -> List[str]:
        return [name for name, run in self.components.items() if run.state == "FAILED"]

    @property
    def cached(self) -> List[str]:
        """The components that reused an earlier execution's outputs."""
        return [name for name, run in self.components.items() if run.state == "CACHED"]

    def not_run_reason(self, component: str) -> Optional[str]:
        """Why `component` has no results in this run ("not run: ..."), or None."""
        execution = self.components.get(component)
        if execution is not None and execution.succeeded:
            return None
        if execution is not None:
            return f"{component} {execution.state.lower()} in this run: no results"
        if self.failed:
            return f"not run: the run stopped when {', '.join(self.failed)} failed"
        if component in TRAINING_HALF and "Transform" in self.components:
            return "not run: this run was the data half only (--no-train)"
        return f"not run: {component} has no execution in this run"


def open_store(run_dir: str) -> metadata_store.MetadataStore:
    """The run directory's ML Metadata store, read-only (also while a run writes to it)."""
    path = run_layout(run_dir)["metadata_path"]
    if not os.path.isfile(path):
        # Checked first: MLMD would create an empty store at a path that does not exist.
        raise RunStoreError(f"no ML Metadata store at {path}: --run-dir is the "
                            "<output_dir>/<pipeline_name> directory of a `bertpipe run` (the "
                            "one holding metadata.sqlite and root/)")
    connection = metadata.sqlite_metadata_connection_config(path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(connection)
    except (mlmd_errors.StatusError, RuntimeError) as error:  # RuntimeError: not SQLite
        reason = str(error).split(" query:")[0]  # MLMD appends the failed SQL statement
        raise RunStoreError(f"{path} is not an ML Metadata store: {reason}") from error


def _property_value(value: metadata_store_pb2.Value) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _local_uri(artifact: Artifact, component: str, key: str, execution_id: int,
               pipeline_root: str) -> str:
    """The artifact's directory under this run directory, when the run was copied or moved
    (TFX writes <pipeline_root>/<component>/<key>/<execution id>); else its recorded URI."""
    moved = os.path.join(pipeline_root, component, key, str(execution_id))
    parts = artifact.uri.rstrip("/").split("/")
    if parts[-3:] == [component, key, str(execution_id)] and os.path.isdir(moved):
        return moved
    return artifact.uri


def _pipeline_runs(store: metadata_store.MetadataStore) -> List[metadata_store_pb2.Context]:
    return sorted(store.get_contexts_by_type("pipeline_run"),
                  key=lambda context: (context.create_time_since_epoch, context.id))


def run_ids(run_dir: str) -> List[str]:
    """The ids of the pipeline runs recorded in `run_dir`, oldest first."""
    return [run.name for run in _pipeline_runs(open_store(os.path.abspath(run_dir)))]


def _producer_execution_id(store: metadata_store.MetadataStore, artifact_id: int) -> int:
    outputs = [event.execution_id for event in store.get_events_by_artifact_ids([artifact_id])
               if event.type == metadata_store_pb2.Event.OUTPUT]
    return min(outputs) if outputs else -1


def _read_run(store: metadata_store.MetadataStore, run: metadata_store_pb2.Context,
              run_dir: str) -> PipelineRun:
    pipelines = store.get_contexts_by_type("pipeline")
    pipeline_name = pipelines[0].name if pipelines else os.path.basename(run_dir)
    node_of: Dict[int, str] = {}
    for node in store.get_contexts_by_type("node"):  # named <pipeline>.<component id>
        for execution in store.get_executions_by_context(node.id):
            node_of[execution.id] = node.name.split(".", 1)[1]
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    all_events = store.get_events_by_execution_ids([execution.id for execution in executions])
    events = [event for event in all_events if event.type == metadata_store_pb2.Event.OUTPUT]
    input_events = [event for event in all_events
                    if event.type == metadata_store_pb2.Event.INPUT and event.path.steps]
    mlmd_artifacts = {artifact.id: artifact for artifact in store.get_artifacts_by_id(
        {event.artifact_id for event in events + input_events})}
    artifact_types = {artifact_type.id: artifact_type for artifact_type in
                      store.get_artifact_types_by_id(
                          {artifact.type_id for artifact in mlmd_artifacts.values()})}
    pipeline_root = run_layout(run_dir)["pipeline_root"]

    components: Dict[str, ComponentRun] = {}
    for execution in executions:
        component = node_of.get(execution.id, f"execution {execution.id}")
        entry = ComponentRun(
            component=component, state=_STATE_NAMES(execution.last_known_state),
            seconds=(execution.last_update_time_since_epoch
                     - execution.create_time_since_epoch) / 1000.0,
            properties={name: _property_value(value)
                        for name, value in execution.custom_properties.items()},
            outputs={})
        for event in events:
            if event.execution_id != execution.id or not event.path.steps:
                continue
            mlmd_artifact = mlmd_artifacts[event.artifact_id]
            artifact = artifact_utils.deserialize_artifact(
                artifact_types[mlmd_artifact.type_id], mlmd_artifact)
            key = event.path.steps[0].key
            # A cached output lives in the directory of the execution that first wrote it.
            producer = _producer_execution_id(store, artifact.id)
            artifact.uri = _local_uri(artifact, component, key, producer, pipeline_root)
            entry.outputs.setdefault(key, []).append(artifact)
        for event in input_events:
            if event.execution_id == execution.id:
                mlmd_artifact = mlmd_artifacts[event.artifact_id]
                entry.inputs.setdefault(event.path.steps[0].key, []).append(
                    artifact_utils.deserialize_artifact(artifact_types[mlmd_artifact.type_id],
                                                        mlmd_artifact))
        components[component] = entry

    def when(milliseconds: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(milliseconds / 1000.0)

    return PipelineRun(
        pipeline_name=pipeline_name, run_id=run.name, run_dir=run_dir,
        started=when(min((e.create_time_since_epoch for e in executions),
                         default=run.create_time_since_epoch)),
        finished=when(max((e.last_update_time_since_epoch for e in executions),
                          default=run.create_time_since_epoch)),
        components=components)


def read_run(run_dir: str, run_id: Optional[str] = None) -> PipelineRun:
    """A pipeline run recorded in `run_dir`/metadata.sqlite (default: the latest), with the
    artifacts its components produced or reused."""
    run_dir = os.path.abspath(run_dir).rstrip(os.sep)
    store = open_store(run_dir)
    runs = _pipeline_runs(store)
    if not runs:
        raise RunStoreError(f"{run_dir}: its ML Metadata store records no pipeline run yet")
    if run_id is None:
        return _read_run(store, runs[-1], run_dir)
    run = next((context for context in runs if context.name == run_id), None)
    if run is None:
        raise RunStoreError(f"{run_dir} has no run {run_id!r}; its runs: "
                            f"{', '.join(context.name for context in runs)}")
    return _read_run(store, run, run_dir)


def runs_that_read(run_dir: str, span: int, fingerprint: str) -> List[PipelineRun]:
    """The runs, oldest first, whose examples are the span `span` with input fingerprint
    `fingerprint` (TFX's span and fingerprint properties of the Examples artifact)."""
    run_dir = os.path.abspath(run_dir).rstrip(os.sep)
    store = open_store(run_dir)
    examples = [artifact.id for artifact in store.get_artifacts_by_type("Examples")
                if artifact.custom_properties.get(example_gen_utils.SPAN_PROPERTY_NAME,
                                                  metadata_store_pb2.Value()).int_value == span
                and artifact.custom_properties.get(
                    example_gen_utils.FINGERPRINT_PROPERTY_NAME,
                    metadata_store_pb2.Value()).string_value == fingerprint]
    if not examples:
        return []
    # Produced by one ExampleGen execution, or reused by a later CACHED one: both OUTPUT events.
    producers = {event.execution_id for event in store.get_events_by_artifact_ids(examples)
                 if event.type == metadata_store_pb2.Event.OUTPUT}
    run_type = store.get_context_type("pipeline_run").id
    contexts = {run.id: run for producer in producers
                for run in store.get_contexts_by_execution(producer) if run.type_id == run_type}
    ordered = sorted(contexts.values(), key=lambda run: (run.create_time_since_epoch, run.id))
    return [_read_run(store, run, run_dir) for run in ordered]


@dataclasses.dataclass
class Push:
    """A model the ServingPusher put in place (or found already served), and the run."""

    run_id: str
    version: int  # the version directory's number
    destination: str  # the version directory, as the pusher recorded it
    model_copy: str  # the PushedModel artifact's directory: a copy of the pushed SavedModel


def pushes(run_dir: str) -> List[Push]:
    """Every push recorded in `run_dir` (the PushedModel artifacts with `pushed` 1: a new
    version, or the version already serving the same model), oldest first; a push a later run
    reused (cached) is listed for each run."""
    run_dir = os.path.abspath(run_dir).rstrip(os.sep)
    store = open_store(run_dir)
    pipeline_root = run_layout(run_dir)["pipeline_root"]
    pushed = {artifact.id: artifact for artifact in store.get_artifacts_by_type("PushedModel")
              if _property_value(artifact.custom_properties.get(
                  "pushed", metadata_store_pb2.Value())) == 1}
    if not pushed:
        return []
    run_type = store.get_context_type("pipeline_run").id
    found = []
    for event in store.get_events_by_artifact_ids(list(pushed)):
        if event.type != metadata_store_pb2.Event.OUTPUT:
            continue
        artifact = pushed[event.artifact_id]
        properties = artifact.custom_properties
        # The pusher's directory is <pipeline_root>/<node id>/pushed_model/<execution id>.
        node = artifact.uri.rstrip("/").split("/")[-3] if artifact.uri else ""
        copy = _local_uri(artifact, node, "pushed_model",
                          _producer_execution_id(store, artifact.id), pipeline_root)
        for run in store.get_contexts_by_execution(event.execution_id):
            if run.type_id == run_type:
                found.append(((run.create_time_since_epoch, run.id, artifact.id), Push(
                    run_id=run.name,
                    version=int(properties["pushed_version"].string_value or 0),
                    destination=properties["pushed_destination"].string_value,
                    model_copy=copy)))
    return [push for _, push in sorted(found, key=lambda entry: entry[0])]
