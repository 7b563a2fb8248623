"""The run report: one self-contained HTML page of what a pipeline run did.

`bertpipe report --run-dir <output_dir>/<pipeline_name> [--run-id ID]` (and `bertpipe run`, when
it finishes) writes `<run dir>/report.html` for one run recorded in the run directory's ML
Metadata store, the latest by default: the components and their wall times, the settings and
checkpoint, the data statistics (TFDV) with a chart per feature, the anomalies per split, the
training curves (the Trainer's TensorBoard logs), the evaluation metrics, confusion matrix and
slices (TFMA), the blessing decisions and the pushed version. Images are PNG data URIs and the
style sheet is inline, so the file opens anywhere, offline, and can be attached to a ticket or
a CI run.

A section whose component did not run in that run (the data half only with --no-train, or a
run stopped by a failed component) says so and why. The store is opened read-only, and
artifacts are read from the run directory given, so a copied or moved run still renders.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import io
import json
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # one Keras in a process with the Trainer's

import jinja2  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402
import tensorflow_model_analysis as tfma  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from ml_metadata import errors as mlmd_errors  # noqa: E402
from ml_metadata.metadata_store import metadata_store  # noqa: E402
from ml_metadata.proto import metadata_store_pb2  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402
from tensorflow_model_analysis.metrics.example_count import EXAMPLE_COUNT_NAME  # noqa: E402
from tensorflow_model_analysis.slicer import slicer_lib  # noqa: E402
from tfx.components.statistics_gen import stats_artifact_utils  # noqa: E402
from tfx.orchestration import metadata  # noqa: E402
# Imported for their artifact classes too: MLMD artifacts deserialize to registered classes.
from tfx.types import artifact_utils, standard_artifacts  # noqa: E402,F401
from tfx.types.artifact import Artifact  # noqa: E402

from components.checkpoint_inputs import PretrainedCheckpoint  # noqa: E402
from components.serving_check import REPORT_FILE_NAME as SERVING_CHECK_FILE  # noqa: E402
from components.validation_gate import describe_anomalies  # noqa: E402
from pipeline import run_summary  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402
from preprocessing.preprocessing import (INPUT_IDS, LABEL_VOCABULARY,  # noqa: E402
                                         MAX_SEQ_LENGTH_KEY, TEXT_FEATURE_KEY)

REPORT_FILE_NAME = "report.html"
_TEMPLATE_NAME = "report_template.html"
_STATE_NAMES = metadata_store_pb2.Execution.State.Name
_SUCCEEDED_STATES = ("COMPLETE", "CACHED")
# The components after Transform, which a --no-train run leaves out.
_TRAINING_HALF = ("Trainer", "Evaluator", "ServingCheck", "ServingPusher")
# Keras TensorBoard logs: per-step values ("batch_loss", "evaluation_loss_vs_iterations")
# and per-epoch values ("epoch_loss") of every compiled metric, in train/ and validation/.
_TRAIN_LOG_DIR, _VALIDATION_LOG_DIR = "train", "validation"
_EPOCH_TAG = re.compile(r"epoch_(\w+)")
# The most frequent values charted for a string feature.
_TOP_VALUES_SHOWN = 10
_SPLIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


class ReportError(ValueError):
    """The run directory holds no pipeline run to report on; the message says what is wrong."""


# ------------------------------------------------------------------------ the run, from MLMD


@dataclasses.dataclass
class ComponentRun:
    """One component's execution in a pipeline run, with its artifacts."""

    component: str  # the node id, e.g. "Trainer"
    state: str  # COMPLETE, CACHED (outputs of an earlier execution reused), FAILED, RUNNING
    seconds: float
    properties: Dict[str, Any]  # execution properties (custom_config as a JSON string, ...)
    outputs: Dict[str, List[Artifact]]

    @property
    def succeeded(self) -> bool:
        return self.state in _SUCCEEDED_STATES


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

    def not_run_reason(self, component: str) -> Optional[str]:
        """Why `component` has no results in this run ("not run: ..."), or None."""
        execution = self.components.get(component)
        if execution is not None and execution.succeeded:
            return None
        if execution is not None:
            return f"{component} {execution.state.lower()} in this run: no results"
        if self.failed:
            return f"not run: the run stopped when {', '.join(self.failed)} failed"
        if component in _TRAINING_HALF and "Transform" in self.components:
            return "not run: this run was the data half only (--no-train)"
        return f"not run: {component} has no execution in this run"


def run_dir_of(config: PipelineConfig) -> str:
    """The run directory of a config: <output_dir>/<pipeline_name>, with metadata.sqlite."""
    return os.path.dirname(config.resolved().metadata_path)


def _paths_of(run_dir: str) -> PipelineConfig:
    """A config whose run directory is `run_dir`, for its metadata_path and pipeline_root
    (train_data is required but not read here)."""
    return PipelineConfig(train_data=run_dir, output_dir=os.path.dirname(run_dir),
                          pipeline_name=os.path.basename(run_dir))


def _open_store(run_dir: str) -> metadata_store.MetadataStore:
    path = _paths_of(run_dir).metadata_path
    if not os.path.isfile(path):
        # Checked first: MLMD would create an empty store at a path that does not exist.
        raise ReportError(f"no ML Metadata store at {path}: --run-dir is the "
                          "<output_dir>/<pipeline_name> directory of a `bertpipe run` (the one "
                          "holding metadata.sqlite and root/)")
    connection = metadata.sqlite_metadata_connection_config(path)
    # Read-only: a report never changes the store, also while a run writes to it.
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(connection)
    except (mlmd_errors.StatusError, RuntimeError) as error:  # RuntimeError: not SQLite
        reason = str(error).split(" query:")[0]  # MLMD appends the failed SQL statement
        raise ReportError(f"{path} is not an ML Metadata store: {reason}") from error


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
    return [run.name for run in _pipeline_runs(_open_store(os.path.abspath(run_dir)))]


def read_run(run_dir: str, run_id: Optional[str] = None) -> PipelineRun:
    """A pipeline run recorded in `run_dir`/metadata.sqlite (default: the latest), with the
    artifacts its components produced or reused."""
    run_dir = os.path.abspath(run_dir).rstrip(os.sep)
    store = _open_store(run_dir)
    runs = _pipeline_runs(store)
    if not runs:
        raise ReportError(f"{run_dir}: its ML Metadata store records no pipeline run yet")
    if run_id is None:
        run = runs[-1]
    else:
        run = next((context for context in runs if context.name == run_id), None)
        if run is None:
            raise ReportError(f"{run_dir} has no run {run_id!r}; its runs: "
                              f"{', '.join(context.name for context in runs)}")
    pipelines = store.get_contexts_by_type("pipeline")
    pipeline_name = pipelines[0].name if pipelines else os.path.basename(run_dir)

    node_of: Dict[int, str] = {}
    for node in store.get_contexts_by_type("node"):  # named <pipeline>.<component id>
        for execution in store.get_executions_by_context(node.id):
            node_of[execution.id] = node.name.split(".", 1)[1]
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    events = [event for event in
              store.get_events_by_execution_ids([execution.id for execution in executions])
              if event.type == metadata_store_pb2.Event.OUTPUT]
    mlmd_artifacts = {artifact.id: artifact for artifact in
                      store.get_artifacts_by_id({event.artifact_id for event in events})}
    artifact_types = {artifact_type.id: artifact_type for artifact_type in
                      store.get_artifact_types_by_id(
                          {artifact.type_id for artifact in mlmd_artifacts.values()})}
    pipeline_root = _paths_of(run_dir).pipeline_root

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


def _producer_execution_id(store: metadata_store.MetadataStore, artifact_id: int) -> int:
    outputs = [event.execution_id for event in store.get_events_by_artifact_ids([artifact_id])
               if event.type == metadata_store_pb2.Event.OUTPUT]
    return min(outputs) if outputs else -1


# ------------------------------------------------------------------------------- images


def _png(figure: Figure) -> str:
    """The figure as a data: URI (PNG), for an <img> in a self-contained page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float, columns: int = 1) -> Tuple[Figure, List[Any]]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.3)
    return figure, list(axes)


# ---------------------------------------------------------------------------- statistics


def _feature_name(feature) -> str:
    return ".".join(feature.path.step) or feature.name


def _numeric_histogram(num_stats) -> List[Tuple[float, float, float]]:
    for histogram in num_stats.histograms:
        if histogram.type == histogram.STANDARD:
            return [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]
    return []


def _feature_row(feature, num_examples: int) -> Dict[str, Any]:
    kind = feature.WhichOneof("stats")
    if kind is None:
        return {"type": feature.Type.Name(feature.type), "present": None, "missing": None,
                "missing_percent": None}
    stats = getattr(feature, kind)
    common = stats.common_stats
    row = {"type": feature.Type.Name(feature.type), "present": common.num_non_missing,
           "missing": num_examples - common.num_non_missing,
           "missing_percent": 100.0 * (num_examples - common.num_non_missing)
           / max(num_examples, 1)}
    if kind == "string_stats":
        # All values distinct (free text): no value is "top", the table says so instead.
        row.update(unique=stats.unique, avg_length=stats.avg_length,
                   top_values=[] if stats.unique >= common.num_non_missing else
                   [(value.value, value.frequency) for value in stats.top_values[:3]])
    elif kind == "num_stats":
        row.update(min=stats.min, mean=stats.mean, max=stats.max,
                   zeros_percent=100.0 * stats.num_zeros / max(common.num_non_missing, 1))
    return row


def _top_values_chart(name: str, by_split: Dict[str, Any]) -> str:
    """Share of each of the most frequent values, one bar per split."""
    totals = {split: max(feature.string_stats.common_stats.num_non_missing, 1)
              for split, feature in by_split.items()}
    frequency: Dict[str, Dict[str, float]] = {}
    for split, feature in by_split.items():
        for value in feature.string_stats.top_values:
            frequency.setdefault(value.value, {})[split] = value.frequency
    values = sorted(frequency, key=lambda v: -sum(frequency[v].values()))[:_TOP_VALUES_SHOWN]
    figure, (ax,) = _figure(6.4, 0.45 * len(values) * len(by_split) ** 0.5 + 1.1)
    height = 0.8 / len(by_split)
    for index, split in enumerate(by_split):
        ax.barh([position + index * height for position in range(len(values))],
                [100.0 * frequency[value].get(split, 0) / totals[split] for value in values],
                height=height, label=split, color=_SPLIT_COLORS[index % len(_SPLIT_COLORS)])
    ax.set_yticks([position + 0.4 - height / 2 for position in range(len(values))],
                  [value if len(value) <= 40 else value[:37] + "..." for value in values])
    ax.invert_yaxis()
    ax.set_xlabel("% of examples")
    ax.set_title(f"{name}: most frequent values", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(figure)


def _numeric_chart(name: str, by_split: Dict[str, Any]) -> Optional[str]:
    figure, (ax,) = _figure(6.4, 2.6)
    drawn = False
    for index, (split, feature) in enumerate(by_split.items()):
        buckets = _numeric_histogram(feature.num_stats)
        total = sum(count for _, _, count in buckets) or 1
        if buckets:
            ax.stairs([100.0 * count / total for _, _, count in buckets],
                      [buckets[0][0]] + [high for _, high, _ in buckets], label=split,
                      color=_SPLIT_COLORS[index % len(_SPLIT_COLORS)], linewidth=1.8)
            drawn = True
    if not drawn:
        return None
    ax.set_ylabel("% of values")
    ax.set_title(f"{name}: histogram", fontsize=10)
    ax.legend(fontsize=8)
    return _png(figure)


def _token_length_chart(text_feature: str, token_stats, max_seq_length: Optional[int]) -> str:
    """Cumulative share of texts by WordPiece tokens per text (Transform's quantiles)."""
    buckets = token_stats.num_stats.common_stats.num_values_histogram.buckets
    total = sum(bucket.sample_count for bucket in buckets) or 1
    lengths, shares, seen = [buckets[0].low_value], [0.0], 0.0
    for bucket in buckets:
        seen += bucket.sample_count
        lengths.append(bucket.high_value)
        shares.append(100.0 * seen / total)
    figure, (ax,) = _figure(6.4, 2.6)
    ax.plot(lengths, shares, marker="o", markersize=3, color=_SPLIT_COLORS[0], label="train")
    if max_seq_length:
        ax.axvline(max_seq_length, color="#d62728", linestyle="--",
                   label=f"max_seq_length {max_seq_length}")
    ax.set_xlabel("tokens per text, [CLS] and [SEP] included")
    ax.set_ylabel("% of texts (cumulative)")
    ax.set_title(f"{text_feature}: tokens per text after Transform", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _png(figure)


def _statistics_section(run: PipelineRun) -> Dict[str, Any]:
    statistics = run.artifact("StatisticsGen", "statistics")
    if statistics is None:
        return {"not_run": run.not_run_reason("StatisticsGen")}
    splits = artifact_utils.decode_split_names(statistics.split_names)
    datasets = {split: stats_artifact_utils.load_statistics(statistics, split).proto().datasets[0]
                for split in splits}
    text_feature, max_seq_length, token_stats = _token_statistics(run)
    names: List[str] = []
    for dataset in datasets.values():
        names += [_feature_name(f) for f in dataset.features if _feature_name(f) not in names]
    features = []
    for name in names:
        by_split = {split: feature for split, dataset in datasets.items()
                    for feature in dataset.features if _feature_name(feature) == name}
        first = next(iter(by_split.values()))
        if name == text_feature and token_stats is not None:
            chart = _token_length_chart(name, token_stats, max_seq_length)
        elif first.HasField("num_stats"):
            chart = _numeric_chart(name, by_split)
        elif first.HasField("string_stats") and first.string_stats.unique < \
                first.string_stats.common_stats.num_non_missing:
            chart = _top_values_chart(name, by_split)
        else:
            chart = None
        features.append({"name": name, "chart": chart,
                         "rows": {split: _feature_row(feature, datasets[split].num_examples)
                                  for split, feature in by_split.items()}})
    return {"examples": {split: dataset.num_examples for split, dataset in datasets.items()},
            "features": features, "text_feature": text_feature,
            "token_note": None if token_stats is not None else
            "Tokens per text: " + (run.not_run_reason("Transform") or "no statistics")}


def _token_statistics(run: PipelineRun):
    """(text feature, max_seq_length, Transform's statistics of the token ids) when known."""
    transform = run.get("Transform")
    if transform is None or not transform.succeeded:
        return None, None, None
    settings = json.loads(transform.properties.get("custom_config") or "{}")
    post_stats = run.artifact("Transform", "post_transform_stats")
    token_stats = None
    if post_stats is not None:
        path = os.path.join(post_stats.uri, stats_artifact_utils.BINARY_PB_BASENAME)
        if os.path.exists(path):
            for feature in tfdv.load_stats_binary(path).datasets[0].features:
                if _feature_name(feature) == INPUT_IDS:
                    token_stats = feature
    return settings.get(TEXT_FEATURE_KEY), settings.get(MAX_SEQ_LENGTH_KEY), token_stats


def _anomalies_section(run: PipelineRun) -> Dict[str, Any]:
    anomalies = run.artifact("ExampleValidator", "anomalies")
    if anomalies is None:
        return {"not_run": run.not_run_reason("ExampleValidator")}
    found = describe_anomalies(anomalies)
    gate = run.get("ValidationGate")
    return {"splits": {split: found.get(split, [])
                       for split in artifact_utils.decode_split_names(anomalies.split_names)},
            "gate": gate.state if gate else "not run"}


# ------------------------------------------------------------------------------ training


def _read_scalars(log_dir: str) -> Dict[str, List[Tuple[int, float]]]:
    """{tag: [(step, value), ...]} of the scalar summaries in one TensorBoard log directory."""
    if not os.path.isdir(log_dir):
        return {}
    accumulator = event_accumulator.EventAccumulator(
        log_dir, size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0})
    accumulator.Reload()
    series: Dict[str, List[Tuple[int, float]]] = {}
    for tag in accumulator.Tags()[event_accumulator.TENSORS]:
        values = []
        for event in accumulator.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            if array.size == 1 and array.dtype.kind in "fiu":
                values.append((event.step, float(array.reshape(()))))
        if values:
            series[tag] = values
    for tag in accumulator.Tags()[event_accumulator.SCALARS]:
        series[tag] = [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return series


def _training_section(run: PipelineRun) -> Dict[str, Any]:
    model_run = run.artifact("Trainer", "model_run")
    if model_run is None:
        return {"not_run": run.not_run_reason("Trainer")}
    train = _read_scalars(os.path.join(model_run.uri, _TRAIN_LOG_DIR))
    validation = _read_scalars(os.path.join(model_run.uri, _VALIDATION_LOG_DIR))
    epoch_tags = [_EPOCH_TAG.fullmatch(tag) for tag in train]
    metrics = [match.group(1) for match in epoch_tags
               if match and match.group(1) != "learning_rate"]
    section: Dict[str, Any] = {"log_dir": model_run.uri, "cached": run.get("Trainer").state
                               == "CACHED"}
    if not metrics:
        section["not_run"] = f"no training summaries in {model_run.uri}"
        return section
    figure, axes = _figure(4.2 * len(metrics), 3.0, columns=len(metrics))
    for ax, metric in zip(axes, metrics):
        # Per step when Keras logged batches (a running mean within each epoch), else per epoch.
        steps_train = train.get(f"batch_{metric}")
        steps_validation = validation.get(f"evaluation_{metric}_vs_iterations")
        if steps_train:
            ax.plot(*zip(*steps_train), label="train (running mean in epoch)", linewidth=1.4)
            if steps_validation:
                ax.plot(*zip(*steps_validation), marker="o", label="validation", linewidth=1.4)
            ax.set_xlabel("step")
        else:
            ax.plot(*zip(*train[f"epoch_{metric}"]), marker="o", label="train")
            if f"epoch_{metric}" in validation:
                ax.plot(*zip(*validation[f"epoch_{metric}"]), marker="o", label="validation")
            ax.set_xlabel("epoch")
        ax.set_title(metric, fontsize=10)
        ax.legend(fontsize=8)
    epochs = sorted({step for metric in metrics for step, _ in train[f"epoch_{metric}"]})

    def at(series: Dict[str, List[Tuple[int, float]]], tag: str, epoch: int):
        return dict(series.get(tag, [])).get(epoch)

    columns = ([f"train {metric}" for metric in metrics]
               + [f"validation {metric}" for metric in metrics if f"epoch_{metric}" in validation]
               + (["learning rate"] if "epoch_learning_rate" in train else []))
    rows = [[epoch + 1]
            + [at(train, f"epoch_{metric}", epoch) for metric in metrics]
            + [at(validation, f"epoch_{metric}", epoch) for metric in metrics
               if f"epoch_{metric}" in validation]
            + ([at(train, "epoch_learning_rate", epoch)] if "epoch_learning_rate" in train
               else [])
            for epoch in epochs]
    section.update(chart=_png(figure), columns=columns, rows=rows)
    return section


# ---------------------------------------------------------------------------- evaluation


def _metric_value(value: Dict[str, Any]) -> Optional[float]:
    if "doubleValue" not in value:
        return None  # a structured metric (confusion matrix, ...): not a table cell
    return float(value["doubleValue"])  # TFMA writes NaN as the string "NaN"


def _slice_name(slice_key: Tuple) -> str:
    return " & ".join(f"{column} = {value}" for column, value in slice_key) or "overall"


def _natural_key(slice_key: Tuple):
    """Slices in the order of their numbers ('<=16', '17-32', '33-64', '>64'), overall first."""
    def number(value) -> float:
        found = re.search(r"-?\d+(\.\d+)?", str(value))
        return float(found.group()) if found else math.inf
    return (len(slice_key), [(column, number(value), str(value)) for column, value in slice_key])


def _class_names(run: PipelineRun) -> List[str]:
    transform_graph = run.artifact("Transform", "transform_graph")
    if transform_graph is None:
        return []
    return [name.decode("utf-8") if isinstance(name, bytes) else name for name in
            tft.TFTransformOutput(transform_graph.uri).vocabulary_by_name(LABEL_VOCABULARY)]


def _class_label(sub_key: str, class_names: Sequence[str]) -> str:
    index = int(sub_key.split(":", 1)[1])
    return class_names[index] if index < len(class_names) else f"class {index}"


def _describe_failure(failure) -> str:
    """'sparse_categorical_accuracy = 0.5: needs >= 0.75' for a TFMA validation failure."""
    name = failure.metric_key.name + (" change vs baseline" if failure.metric_key.is_diff
                                      else "")
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    needs = []
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        if bounds.HasField("lower_bound"):
            needs.append(f">= {bounds.lower_bound.value:g}")
        if bounds.HasField("upper_bound"):
            needs.append(f"<= {bounds.upper_bound.value:g}")
    if threshold.HasField("change_threshold"):
        change = threshold.change_threshold
        if change.HasField("absolute"):
            sign = ">=" if change.direction == tfma.MetricDirection.HIGHER_IS_BETTER else "<="
            needs.append(f"change {sign} {change.absolute.value:g}")
        if change.HasField("relative"):
            needs.append(f"relative change {change.relative.value:g}")
    return (f"{name} = {value:.4f}: needs {' and '.join(needs)}" if needs else
            f"{name} = {value:.4f}: {text_format.MessageToString(threshold, as_one_line=True)}")


def _evaluation_section(run: PipelineRun) -> Dict[str, Any]:
    evaluation = run.artifact("Evaluator", "evaluation")
    if evaluation is None:
        return {"not_run": run.not_run_reason("Evaluator")}
    model_locations = run_summary.evaluated_models(evaluation.uri)
    has_baseline = tfma.constants.BASELINE_KEY in model_locations
    result = tfma.load_eval_result(
        evaluation.uri, model_name=tfma.constants.CANDIDATE_KEY if has_baseline else None)
    baseline = (tfma.load_eval_result(evaluation.uri, model_name=tfma.constants.BASELINE_KEY)
                if has_baseline else None)
    class_names = _class_names(run)

    # {slice: {sub key ('' or 'classId:k'): {metric: value}}}
    by_slice: Dict[Tuple, Dict[str, Dict[str, Optional[float]]]] = {
        slice_key: {sub_key: {name: _metric_value(value) for name, value in values.items()}
                    for sub_key, values in by_output[""].items()}
        for slice_key, by_output in result.slicing_metrics}
    baseline_overall = {}
    if baseline is not None:
        for slice_key, by_output in baseline.slicing_metrics:
            if slice_key == ():
                baseline_overall = {name: _metric_value(value)
                                    for name, value in by_output[""].get("", {}).items()}
    overall = by_slice.get((), {})
    overall_values = overall.get("", {})
    overall_rows = [{"name": name, "value": value, "baseline": baseline_overall.get(name),
                     "change": overall_values.get(f"{name}_diff")}
                    for name, value in sorted(overall_values.items())
                    if not name.endswith("_diff") and value is not None]
    class_metrics = sorted({name for sub_key, values in overall.items() if sub_key
                            for name in values if not name.endswith("_diff")})
    class_keys = sorted((sub_key for sub_key in overall if sub_key),  # 'classId:<index>'
                        key=lambda sub_key: int(sub_key.split(":", 1)[1]))
    class_rows = [{"name": _class_label(sub_key, class_names),
                   "values": [overall[sub_key].get(name) for name in class_metrics]}
                  for sub_key in class_keys]
    slice_keys = sorted(by_slice, key=_natural_key)
    slice_metrics = [row["name"] for row in overall_rows]
    # Changes against the baseline, except of the example count (the same eval data).
    slice_rows = [{"name": _slice_name(slice_key),
                   "values": [(by_slice[slice_key].get("", {}).get(name),
                               None if name == EXAMPLE_COUNT_NAME else
                               by_slice[slice_key].get("", {}).get(f"{name}_diff"))
                              for name in slice_metrics]} for slice_key in slice_keys]

    validation = tfma.load_validation_result(evaluation.uri)
    failed_slices = sorted(((slicer_lib.deserialize_slice_key(per_slice.slice_key), per_slice)
                            for per_slice in validation.metric_validations_per_slice),
                           key=lambda pair: _natural_key(pair[0]))
    failures = [f"{_slice_name(slice_key)}: {_describe_failure(failure)}"
                for slice_key, per_slice in failed_slices for failure in per_slice.failures]
    return {"uri": evaluation.uri, "has_baseline": has_baseline,
            "headline": next((row for row in overall_rows if row["name"].endswith("accuracy")),
                             None),
            "baseline_uri": model_locations.get(tfma.constants.BASELINE_KEY),
            "overall": overall_rows, "class_metrics": class_metrics, "class_rows": class_rows,
            "confusion": _confusion_matrix(result, class_names),
            "slice_metrics": slice_metrics, "slice_rows": slice_rows,
            "slice_chart": _slice_chart(slice_keys, by_slice),
            "validation_ok": validation.validation_ok, "failures": failures}


def _confusion_matrix(result, class_names: Sequence[str]) -> Optional[Dict[str, Any]]:
    for slice_key, by_output in result.plots:
        if slice_key != ():
            continue
        plot = by_output.get("", {}).get("", {}).get("multiClassConfusionMatrixAtThresholds")
        if not plot or not plot.get("matrices"):
            return None
        entries = plot["matrices"][0].get("entries", [])
        size = max([len(class_names)] + [max(entry.get("actualClassId", 0),
                                             entry.get("predictedClassId", 0)) + 1
                                         for entry in entries])
        counts = [[0.0] * size for _ in range(size)]
        for entry in entries:
            counts[entry.get("actualClassId", 0)][entry.get("predictedClassId", 0)] += \
                entry.get("numWeightedExamples", 0.0)
        names = [class_names[i] if i < len(class_names) else f"class {i}" for i in range(size)]
        largest = max(max(row) for row in counts) or 1.0
        return {"names": names,
                "rows": [[(count, count / largest) for count in row] for row in counts]}
    return None


def _slice_chart(slice_keys: Sequence[Tuple], by_slice) -> Optional[str]:
    accuracy_name = next((name for name in by_slice.get((), {}).get("", {})
                          if name.endswith("accuracy")), None)
    if accuracy_name is None or len(slice_keys) < 2:
        return None
    names = [_slice_name(key) for key in slice_keys]
    accuracies = [by_slice[key].get("", {}).get(accuracy_name) or 0.0 for key in slice_keys]
    counts = [by_slice[key].get("", {}).get(EXAMPLE_COUNT_NAME)
              for key in slice_keys]
    figure, (ax,) = _figure(5.6, 0.34 * len(names) + 0.9)
    bars = ax.barh(range(len(names)), accuracies, color=_SPLIT_COLORS[0])
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel(accuracy_name)
    for bar, accuracy, count in zip(bars, accuracies, counts):
        label = f"{accuracy:.3f}" + (f"  (n={count:.0f})" if count is not None else "")
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, label,
                va="center", fontsize=8)
    ax.set_title(f"{accuracy_name} by slice", fontsize=10)
    return _png(figure)


# ------------------------------------------------------------------- blessing and push


def _blessed(artifact: Optional[Artifact]) -> Optional[bool]:
    if artifact is None or not artifact.has_custom_property("blessed"):
        return None
    return bool(artifact.get_int_custom_property("blessed"))


def _serving_section(run: PipelineRun, evaluation: Dict[str, Any]) -> Dict[str, Any]:
    model_blessing = _blessed(run.artifact("Evaluator", "blessing"))
    infra = run.artifact("ServingCheck", "blessing")
    infra_blessed = _blessed(infra)
    serving_check = None
    if infra is not None and os.path.exists(os.path.join(infra.uri, SERVING_CHECK_FILE)):
        with open(os.path.join(infra.uri, SERVING_CHECK_FILE), encoding="utf-8") as handle:
            serving_check = json.load(handle)
    pushed_model = run.artifact("ServingPusher", "pushed_model")
    section: Dict[str, Any] = {
        "model_blessed": model_blessing,
        "model_blessing_note": run.not_run_reason("Evaluator"),
        "infra_blessed": infra_blessed, "infra_note": run.not_run_reason("ServingCheck"),
        "serving_check": serving_check, "pushed": None, "push_note": None}
    if pushed_model is None:
        section["push_note"] = run.not_run_reason("ServingPusher")
        return section
    if pushed_model.has_custom_property("pushed") and \
            pushed_model.get_int_custom_property("pushed"):
        section["pushed"] = {
            "version": pushed_model.get_custom_property("pushed_version"),
            "destination": pushed_model.get_custom_property("pushed_destination")}
        return section
    reasons = []
    if model_blessing is False:
        reasons.append("the Evaluator did not bless the model"
                       + (": " + "; ".join(evaluation.get("failures", []))
                          if evaluation.get("failures") else ""))
    if infra_blessed is False:
        reasons.append("ServingCheck did not bless the model")
    section["push_note"] = "; ".join(reasons) or "no blessing"
    return section


# --------------------------------------------------------------------------- the run


def _run_section(run: PipelineRun) -> Dict[str, Any]:
    settings: Dict[str, Any] = {}
    trainer = run.get("Trainer")
    if trainer is not None:
        for value in json.loads(trainer.properties.get("custom_config") or "{}").values():
            if isinstance(value, dict):  # the PipelineConfig, as the Trainer received it
                settings = value
    data = []
    example_gen = next((entry for entry in run.components.values()
                        if "input_base" in entry.properties), None)
    if example_gen is not None:
        input_config = json.loads(example_gen.properties.get("input_config") or "{}")
        for split in input_config.get("splits", []):
            data.append((split["name"], os.path.join(example_gen.properties["input_base"],
                                                     split["pattern"])))
    schema = next((entry.properties["schema_file"] for entry in run.components.values()
                   if "schema_file" in entry.properties), None)
    checkpoint = next((artifact.uri for entry in run.components.values()
                       for artifacts in entry.outputs.values() for artifact in artifacts
                       if isinstance(artifact, PretrainedCheckpoint)), None)
    return {"components": [{"name": entry.component, "state": entry.state,
                            "seconds": entry.seconds} for entry in run.components.values()],
            "any_cached": any(entry.state == "CACHED" for entry in run.components.values()),
            "settings": sorted(settings.items()), "data": data, "schema": schema,
            "checkpoint": checkpoint, "failed": run.failed,
            "wall_seconds": (run.finished - run.started).total_seconds()}


# ------------------------------------------------------------------------------- render


def _format_number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value == int(value) and (abs(value) >= 2 or value == 0):  # a count
            return f"{int(value)}"
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)


def _format_whole(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _format_change(value: Optional[float]) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:+.4f}"


def render_report(run_dir: str, run_id: Optional[str] = None) -> str:
    """The HTML report of a run in `run_dir` (default: the latest), as a string."""
    run = read_run(run_dir, run_id)
    evaluation = _evaluation_section(run)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.dirname(os.path.abspath(__file__))),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    environment.filters["num"] = _format_number
    environment.filters["change"] = _format_change
    environment.filters["whole"] = _format_whole
    sections = {"overview": _run_section(run), "statistics": _statistics_section(run),
                "anomalies": _anomalies_section(run), "training": _training_section(run),
                "evaluation": evaluation, "serving": _serving_section(run, evaluation)}
    for section in sections.values():
        section.setdefault("not_run", None)  # the template tests it in every section
    return environment.get_template(_TEMPLATE_NAME).render(
        run=run, generated=datetime.datetime.now().replace(microsecond=0), **sections)


def write_report(run_dir: str, output_path: Optional[str] = None,
                 run_id: Optional[str] = None) -> str:
    """Writes the report of a run in `run_dir` (default: the latest) to `output_path`
    (default: <run_dir>/report.html) and returns the file's path."""
    page = render_report(run_dir, run_id)
    output_path = os.path.abspath(output_path or os.path.join(run_dir, REPORT_FILE_NAME))
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return output_path
