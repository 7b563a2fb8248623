"""`bertpipe skew`: do the texts the served model gets look like the texts it was trained on?

Its one job: compare logged requests with the training statistics of the run that produced the
served model, with TFDV's skew comparators.

- The requests: TFRecord files of TF Serving's PredictionLog records, written by `bertpipe
  serve --request-log-dir` (serving/request_log.py) or by TF Serving's own request logging.
  Predict logs give the signature's text input; Classify, Regress and MultiInference logs the
  text feature of their tf.Examples.
- The run: the pipeline run whose ServingPusher pushed the served version (the newest version
  of --model-root, or --model-version; matched by the version directory, else by the SavedModel
  fingerprint), read with pipeline/runs.py. Without --model-root: the run dir's newest push.
- The same features for both: the run's transform graph turns the logged texts into the per-text
  statistics features (preprocessing/features.py) that TextStatisticsGen described for the
  training split; TFDV computes the requests' statistics and `validate_statistics` the
  Jensen-Shannon divergence of text length and token count against --max-length-skew. The share
  of truncated texts and of [UNK] tokens are shown side by side, not compared.

It prints a table (per feature: training, requests, divergence, bound, skew or not), writes an
HTML page with the two distributions, and exits 1 when a feature skewed, 0 otherwise.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import html
import os
import re
import sys
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # one Keras with TF Transform's layer

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402
from google.protobuf import message  # noqa: E402
from tensorflow_metadata.proto.v0 import statistics_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402
from tfx.components.statistics_gen import stats_artifact_utils  # noqa: E402

from components.pusher import version_fingerprint  # noqa: E402
from pipeline import run_artifacts, runs  # noqa: E402
from pipeline.config import QualityConfig  # noqa: E402
from pipeline.data_quality import ALL_EXAMPLES, QUANTILE_BUCKETS  # noqa: E402
from pipeline.pipeline import TEXT_STATISTICS_GEN  # noqa: E402
from preprocessing.features import (TEXT_FEATURE_KEY, TEXT_LENGTH, TOKEN_COUNT,  # noqa: E402
                                    TRUNCATED, UNKNOWN_TOKEN_SHARE)
from serving.contract import TEXT_INPUT, version_numbers  # noqa: E402

TRAINING_SPLIT = "train"
# Compared with TFDV's Jensen-Shannon divergence; the other two are shown side by side.
COMPARED_FEATURES = (TEXT_LENGTH, TOKEN_COUNT)
SHOWN_FEATURES = (TRUNCATED, UNKNOWN_TOKEN_SHARE)
NUMERIC_FEATURES = COMPARED_FEATURES + SHOWN_FEATURES
DEFAULT_MAX_LENGTH_SKEW = QualityConfig.max_length_drift  # the same divergence between spans
DEFAULT_HTML_NAME = "skew.html"
# Texts per call of the transform graph: bounds the memory of a large log.
_TRANSFORM_BATCH = 256
_EXIT_SKEW = 1


class SkewError(ValueError):
    """The request log or the run cannot be compared; the message says which file and why."""


# ------------------------------------------------------------------------ the request log


@dataclasses.dataclass
class LoggedRequests:
    files: List[str]
    records: int  # requests logged
    texts: List[bytes]  # every text of every request, in log order


def request_log_files(request_log: str) -> List[str]:
    """The TFRecord files of a request log: a directory's `*.tfrecord*` files (a running
    `bertpipe serve` writes `.`-prefixed `.tmp` files, renamed when complete), or a glob."""
    if os.path.isdir(request_log):
        files = [path for path in glob.glob(os.path.join(request_log, "*.tfrecord*"))
                 if not path.endswith(".tmp")]
        if not files:
            raise SkewError(f"--request-log {request_log}: no *.tfrecord files in this "
                            "directory (give a glob for files named otherwise)")
    else:
        files = [path for path in glob.glob(request_log) if os.path.isfile(path)]
        if not files:
            raise SkewError(f"--request-log {request_log}: no such directory, and no file "
                            "matches it as a glob")
    return sorted(files)


def _texts_of_examples(examples, text_feature: str, where: str) -> List[bytes]:
    texts = []
    for index, example in enumerate(examples):
        feature = example.features.feature.get(text_feature)
        if feature is None or feature.WhichOneof("kind") != "bytes_list":
            raise SkewError(f"{where}: tf.Example {index} has no bytes feature "
                            f"{text_feature!r} (the run's text column); its features: "
                            f"{sorted(example.features.feature)}")
        texts.append(feature.bytes_list.value[0] if feature.bytes_list.value else b"")
    return texts


def texts_of_record(log: prediction_log_pb2.PredictionLog, text_feature: str,
                    where: str) -> List[bytes]:
    """The texts of one logged request (SkewError naming `where` when it holds none)."""
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        inputs = log.predict_log.request.inputs
        name = TEXT_INPUT if TEXT_INPUT in inputs else (
            text_feature if text_feature in inputs else None)
        if name is None:
            raise SkewError(f"{where}: the Predict request has no input {TEXT_INPUT!r}; its "
                            f"inputs: {sorted(inputs)}")
        try:
            values = tf.make_ndarray(inputs[name])
        except (TypeError, ValueError) as error:
            raise SkewError(f"{where}: input {name!r} is not a tensor of strings: {error}") \
                from None
        if values.dtype != object:
            raise SkewError(f"{where}: input {name!r} is {values.dtype}, not strings")
        return list(values.reshape(-1))
    if kind in ("classify_log", "regress_log", "multi_inference_log"):
        model_input = getattr(log, kind).request.input
        which = model_input.WhichOneof("kind")
        if which == "example_list":
            return _texts_of_examples(model_input.example_list.examples, text_feature, where)
        if which == "example_list_with_context":
            with_context = model_input.example_list_with_context
            # The context's features apply to every example: merged as TF Serving does.
            merged = []
            for example in with_context.examples:
                combined = type(example)()
                combined.CopyFrom(with_context.context)
                combined.MergeFrom(example)
                merged.append(combined)
            return _texts_of_examples(merged, text_feature, where)
        raise SkewError(f"{where}: the {kind} request has no examples")
    raise SkewError(f"{where}: a PredictionLog of kind {kind or 'none'}; expected predict_log "
                    "(or classify_log, regress_log, multi_inference_log)")


def _op_message(error: tf.errors.OpError) -> str:
    """TensorFlow's message without the function and op names it wraps it in."""
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", error.message)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text, flags=re.DOTALL)


def read_request_log(request_log: str, text_feature: str) -> LoggedRequests:
    """Every text of the logged requests; SkewError naming the file and record on a bad one."""
    files = request_log_files(request_log)
    texts: List[bytes] = []
    records = 0
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        in_file = 0  # records read from this file
        try:
            for serialized in tf.data.TFRecordDataset(
                    path, compression_type=compression).as_numpy_iterator():
                where = f"{path} record {in_file}"
                try:
                    log = prediction_log_pb2.PredictionLog.FromString(serialized)
                except message.DecodeError as error:
                    raise SkewError(f"{where}: not a tensorflow.serving.PredictionLog "
                                    f"({error})") from None
                texts.extend(texts_of_record(log, text_feature, where))
                in_file += 1
        except tf.errors.OpError as error:  # a torn file, or not a TFRecord file
            raise SkewError(f"{path}: cannot read record {in_file}: {_op_message(error)}") \
                from None
        if not in_file and os.path.getsize(path):  # TensorFlow reads a stub as no records
            raise SkewError(f"{path}: cannot read record 0: not a TFRecord file "
                            f"({os.path.getsize(path)} bytes, no whole record)")
        records += in_file
    if not texts:
        raise SkewError(f"--request-log {request_log}: {len(files)} files, no texts in them")
    return LoggedRequests(files=files, records=records, texts=texts)


# ------------------------------------------------------------------------ the served model


@dataclasses.dataclass
class ServedRun:
    run: runs.PipelineRun
    version: int
    version_dir: str


def find_served_run(run_dir: str, model_root: str = "",
                    model_version: Optional[int] = None) -> ServedRun:
    """The run that pushed the served version: the newest (or `model_version`) of
    `model_root`; without `model_root`, the newest push recorded in `run_dir`."""
    pushes = runs.pushes(run_dir)
    if not pushes:
        raise SkewError(f"--run-dir {run_dir}: its runs pushed no model")
    if not model_root:
        if model_version is None:
            push = pushes[-1]
        else:
            matching = [push for push in pushes if push.version == model_version]
            if not matching:
                raise SkewError(f"--run-dir {run_dir} pushed no version {model_version}; it "
                                f"pushed {sorted({push.version for push in pushes})}")
            push = matching[-1]
        return ServedRun(runs.read_run(run_dir, push.run_id), push.version, push.destination)

    versions = version_numbers(model_root)
    if not versions:
        raise SkewError(f"--model-root {model_root}: no numbered version directories")
    version = versions[-1] if model_version is None else model_version
    if version not in versions:
        raise SkewError(f"--model-root {model_root} has no version {version}; it has "
                        f"{versions}")
    version_dir = os.path.join(model_root, str(version))
    same_place = [push for push in pushes
                  if os.path.realpath(push.destination) == os.path.realpath(version_dir)]
    if not same_place:
        # The serving root was copied or moved: the same SavedModel is the same model.
        fingerprint = version_fingerprint(version_dir)
        same_place = [push for push in pushes if os.path.isdir(push.model_copy)
                      and version_fingerprint(push.model_copy) == fingerprint]
    if not same_place:
        raise SkewError(f"no run in --run-dir {run_dir} pushed {version_dir} (its pushes: "
                        f"{', '.join(sorted({push.destination for push in pushes}))}); give "
                        "the --run-dir of the pipeline that pushed it")
    return ServedRun(runs.read_run(run_dir, same_place[-1].run_id), version, version_dir)


# ------------------------------------------------------------------------ the features


def text_feature_of(run: runs.PipelineRun) -> str:
    transform = run.get("Transform")
    custom_config = transform.json_property("custom_config") if transform else None
    if not custom_config or TEXT_FEATURE_KEY not in custom_config:
        raise SkewError(f"run {run.run_id}: no Transform settings naming the text column")
    return custom_config[TEXT_FEATURE_KEY]


def text_statistics_features(texts: Sequence[bytes], transform_graph_uri: str,
                             text_feature: str) -> Dict[str, np.ndarray]:
    """{feature: one value per text} of NUMERIC_FEATURES, from the run's transform graph (the
    same graph that made the training statistics; the outputs that need the label are left
    out by TF Transform, as the label is not given)."""
    import tensorflow_transform as tft
    output = tft.TFTransformOutput(transform_graph_uri)
    spec = output.raw_feature_spec().get(text_feature)
    if spec is None:
        raise SkewError(f"the transform graph {transform_graph_uri} takes no feature "
                        f"{text_feature!r}")
    layer = output.transform_features_layer()
    columns: Dict[str, List[np.ndarray]] = {name: [] for name in NUMERIC_FEATURES}
    for start in range(0, len(texts), _TRANSFORM_BATCH):
        batch = tf.constant(list(texts[start:start + _TRANSFORM_BATCH]), dtype=tf.string)
        # Shaped as the raw feature spec says (trainer/export.py's check_tokenization).
        if isinstance(spec, tf.io.FixedLenFeature):
            raw = tf.reshape(batch, [-1, *spec.shape])
        else:
            raw = tf.sparse.from_dense(tf.reshape(batch, [-1, 1]))
        transformed = layer({text_feature: raw})
        missing = [name for name in NUMERIC_FEATURES if name not in transformed]
        if missing:
            raise SkewError(f"the transform graph {transform_graph_uri} has no output(s) "
                            f"{missing}: the run predates the text statistics features")
        for name in NUMERIC_FEATURES:
            value = transformed[name]
            if isinstance(value, tf.SparseTensor):
                value = tf.sparse.to_dense(value)
            columns[name].append(np.asarray(value).reshape(-1))
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def request_statistics(features: Dict[str, np.ndarray]
                       ) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of the requests' features, with TextStatisticsGen's quantile buckets."""
    import pandas as pd
    frame = pd.DataFrame({name: features[name] for name in NUMERIC_FEATURES})
    return tfdv.generate_statistics_from_dataframe(frame, tfdv.StatsOptions(
        num_quantiles_histogram_buckets=QUANTILE_BUCKETS))


def training_statistics(statistics_artifact) -> statistics_pb2.DatasetFeatureStatisticsList:
    """The train split's statistics of all examples (not the per-label slices), limited to
    NUMERIC_FEATURES."""
    datasets = stats_artifact_utils.load_statistics(statistics_artifact,
                                                    TRAINING_SPLIT).proto().datasets
    dataset = next((d for d in datasets if d.name == ALL_EXAMPLES), datasets[0])
    kept = statistics_pb2.DatasetFeatureStatistics()
    kept.CopyFrom(dataset)
    del kept.features[:]
    kept.features.extend(feature for feature in dataset.features
                         if run_artifacts.feature_name(feature) in NUMERIC_FEATURES)
    return statistics_pb2.DatasetFeatureStatisticsList(datasets=[kept])


# ------------------------------------------------------------------------ the comparison


@dataclasses.dataclass
class Distribution:
    """What the table and the page show of one feature's statistics."""

    count: int
    mean: float
    quantiles: Dict[str, float]  # "min", "p10", ..., "max"


_SHOWN_QUANTILES = (("min", 0.0), ("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75),
                    ("p90", 0.9), ("p99", 0.99), ("max", 1.0))


def distribution(feature: statistics_pb2.FeatureNameStatistics) -> Distribution:
    stats = feature.num_stats
    quantiles: Dict[str, float] = {}
    for name, fraction in _SHOWN_QUANTILES:
        value = None if name in ("min", "max") else run_artifacts.quantile(feature, fraction)
        quantiles[name] = value if value is not None else (
            stats.min if name == "min" else stats.max)
    count = stats.common_stats.num_non_missing
    return Distribution(count=int(count), mean=stats.mean, quantiles=quantiles)


@dataclasses.dataclass
class FeatureComparison:
    feature: str
    training: Distribution
    requests: Distribution
    divergence: Optional[float]  # Jensen-Shannon divergence (COMPARED_FEATURES only)
    bound: Optional[float]
    anomaly: str  # TFDV's description of the skew anomaly, "" if none

    @property
    def compared(self) -> bool:
        return self.bound is not None


def _features_by_name(statistics: statistics_pb2.DatasetFeatureStatisticsList):
    return {run_artifacts.feature_name(feature): feature
            for feature in statistics.datasets[0].features}


def compare(training: statistics_pb2.DatasetFeatureStatisticsList,
            requests: statistics_pb2.DatasetFeatureStatisticsList,
            max_length_skew: float) -> List[FeatureComparison]:
    """TFDV's skew check of COMPARED_FEATURES (Jensen-Shannon divergence against
    `max_length_skew`); SHOWN_FEATURES side by side only."""
    training_features, request_features = (_features_by_name(training),
                                           _features_by_name(requests))
    missing = [name for name in NUMERIC_FEATURES if name not in training_features]
    if missing:
        raise SkewError(f"the training statistics describe no {missing}: the run predates the "
                        "text statistics features")
    # The schema only carries the comparators: inferred from the training statistics, which
    # therefore raise no anomaly of their own.
    schema = tfdv.infer_schema(training)
    for name in COMPARED_FEATURES:
        tfdv.get_feature(schema, name).skew_comparator.jensen_shannon_divergence.threshold = \
            max_length_skew
    anomalies = tfdv.validate_statistics(training, schema, serving_statistics=requests)
    measured = {".".join(info.path.step): measurement.value
                for info in anomalies.drift_skew_info for measurement in info.skew_measurements
                if measurement.type == measurement.JENSEN_SHANNON_DIVERGENCE}
    found = {name: info.description for name, info in anomalies.anomaly_info.items()}
    return [FeatureComparison(
        feature=name, training=distribution(training_features[name]),
        requests=distribution(request_features[name]),
        divergence=measured.get(name), bound=max_length_skew if name in COMPARED_FEATURES
        else None, anomaly=found.get(name, "")) for name in NUMERIC_FEATURES]


# ------------------------------------------------------------------------ the result


@dataclasses.dataclass
class SkewResult:
    requests: LoggedRequests
    request_log: str
    served: ServedRun
    run_dir: str
    comparisons: List[FeatureComparison]

    @property
    def skewed(self) -> List[FeatureComparison]:
        return [comparison for comparison in self.comparisons if comparison.anomaly]


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _summary(feature: str, shown: Distribution) -> str:
    if feature in COMPARED_FEATURES:
        return (f"p50 {_number(shown.quantiles['p50'])} p90 {_number(shown.quantiles['p90'])} "
                f"mean {_number(shown.mean)}")
    return f"mean {shown.mean:.3f}"


def format_result(result: SkewResult) -> str:
    served = result.served
    training_count = result.comparisons[0].training.count
    lines = [
        f"requests: {result.requests.records} logged requests ({len(result.requests.texts)} "
        f"texts) in {len(result.requests.files)} file(s) of {result.request_log}",
        f"compared with: model version {served.version} ({served.version_dir}), trained by "
        f"run {served.run.run_id} of {result.run_dir}: {TEXT_STATISTICS_GEN}'s "
        f"{TRAINING_SPLIT!r} split ({training_count} texts)", ""]
    rows = [("feature", "training", "requests", "JS divergence", "bound", "skew")]
    for comparison in result.comparisons:
        rows.append((
            comparison.feature, _summary(comparison.feature, comparison.training),
            _summary(comparison.feature, comparison.requests),
            "-" if comparison.divergence is None else f"{comparison.divergence:.4f}",
            "-" if comparison.bound is None else f"{comparison.bound:g}",
            ("SKEW" if comparison.anomaly else "no") if comparison.compared else "(shown)"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
              for row in rows]
    lines.append("")
    for comparison in result.skewed:
        lines.append(f"skew anomaly: {comparison.feature}: {comparison.anomaly}")
    if not result.skewed:
        lines.append("no skew: the requests' text and token lengths are within "
                     f"--max-length-skew {result.comparisons[0].bound:g} of training")
    return "\n".join(lines)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(result: SkewResult) -> str:
    """One small self-contained page: the verdict, then both distributions side by side."""
    sections = []
    for comparison in result.comparisons:
        verdict = (f"Jensen-Shannon divergence {comparison.divergence:.4f}, bound "
                   f"{comparison.bound:g}: " + ("SKEW" if comparison.anomaly else "no skew")
                   if comparison.compared and comparison.divergence is not None else
                   "shown side by side, not compared")
        rows = [(name, _number(comparison.training.quantiles[name]),
                 _number(comparison.requests.quantiles[name]))
                for name, _ in _SHOWN_QUANTILES] if comparison.compared else []
        rows.append(("mean", f"{comparison.training.mean:.4g}",
                     f"{comparison.requests.mean:.4g}"))
        rows.append(("texts", str(comparison.training.count), str(comparison.requests.count)))
        anomaly = (f"<p class=skew>{html.escape(comparison.anomaly)}</p>"
                   if comparison.anomaly else "")
        sections.append(f"<h2>{html.escape(comparison.feature)}</h2>"
                        f"<p>{html.escape(verdict)}</p>{anomaly}"
                        + _html_table(("", "training", "requests"), rows))
    summary = html.escape(format_result(result).split("\n\n")[0])
    title = ("Training/serving skew: " + (", ".join(c.feature for c in result.skewed)
                                          if result.skewed else "none"))
    return ("<!doctype html><html><head><meta charset=utf-8><title>"
            f"{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
            "text-align:right}.skew{color:#b00;font-weight:bold}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><pre>{summary}</pre>{''.join(sections)}"
            "</body></html>\n")


def check_skew(request_log: str, run_dir: str, model_root: str = "",
               model_version: Optional[int] = None,
               max_length_skew: float = DEFAULT_MAX_LENGTH_SKEW) -> SkewResult:
    """Reads the log and the run, and compares them (SkewError when either cannot be)."""
    if not 0 < max_length_skew <= 1:
        raise SkewError(f"--max-length-skew {max_length_skew:g}: must be above 0 and at most 1 "
                        "(a Jensen-Shannon divergence)")
    served = find_served_run(run_dir, model_root, model_version)
    run = served.run
    transform_graph = run.artifact("Transform", "transform_graph")
    statistics = run.artifact(TEXT_STATISTICS_GEN, "statistics")
    for name, artifact in (("Transform", transform_graph), (TEXT_STATISTICS_GEN, statistics)):
        if artifact is None:
            raise SkewError(f"run {run.run_id} (which pushed version {served.version}) has no "
                            f"{name} output: {run.not_run_reason(name)}")
    text_feature = text_feature_of(run)
    requests = read_request_log(request_log, text_feature)
    features = text_statistics_features(requests.texts, transform_graph.uri, text_feature)
    comparisons = compare(training_statistics(statistics), request_statistics(features),
                          max_length_skew)
    return SkewResult(requests=requests, request_log=request_log, served=served,
                      run_dir=run_dir, comparisons=comparisons)


def default_html_path(request_log: str) -> str:
    directory = request_log if os.path.isdir(request_log) else os.path.dirname(request_log)
    return os.path.join(directory or ".", DEFAULT_HTML_NAME)


def main(args: argparse.Namespace) -> int:
    """`bertpipe skew`: 0 without skew, 1 with, 2 when the comparison cannot be made."""
    run_dir = args.run_dir or os.path.join(args.output_dir, args.pipeline_name)
    try:
        result = check_skew(args.request_log, run_dir, args.model_root, args.model_version,
                            args.max_length_skew)
    except SkewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_result(result))
    html_path = args.html or default_html_path(args.request_log)
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(render_html(result))
    print(f"html: {html_path}")
    return _EXIT_SKEW if result.skewed else 0
