"""What a run's artifacts say: TFDV statistics, TensorBoard scalars, TFMA results, the label
names of the transform graph, the serving check's report.

Readers of artifact contents, given the artifacts pipeline/runs.py found in ML Metadata; used by
the run report, the terminal summary and the benchmarks. Each returns plain Python data or the
library's own result object; none renders anything.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # one Keras in a process with the Trainer's

import tensorflow_data_validation as tfdv  # noqa: E402
import tensorflow_model_analysis as tfma  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402
from tfx.components.statistics_gen import stats_artifact_utils  # noqa: E402
from tfx.types import artifact_utils  # noqa: E402
from tfx.types.artifact import Artifact  # noqa: E402

from components.serving_check import REPORT_FILE_NAME as SERVING_CHECK_FILE  # noqa: E402
from preprocessing.features import (INPUT_IDS, LABEL_NAME, LABEL_VOCABULARY,  # noqa: E402
                                    TEXT_LENGTH, TOKEN_COUNT, TRUNCATED, UNKNOWN_TOKEN_SHARE)


# ---------------------------------------------------------------------------- statistics


def feature_name(feature) -> str:
    return ".".join(feature.path.step) or feature.name


def statistics_by_split(statistics: Artifact) -> Dict[str, Any]:
    """{split: DatasetFeatureStatistics} of a StatisticsGen output."""
    return {split: stats_artifact_utils.load_statistics(statistics, split).proto().datasets[0]
            for split in artifact_utils.decode_split_names(statistics.split_names)}


def token_id_statistics(post_transform_stats: Artifact) -> Optional[Any]:
    """Transform's statistics of the token ids (their count per text), if it wrote them."""
    path = os.path.join(post_transform_stats.uri, stats_artifact_utils.BINARY_PB_BASENAME)
    if not os.path.exists(path):
        return None
    return next((feature for feature in tfdv.load_stats_binary(path).datasets[0].features
                 if feature_name(feature) == INPUT_IDS), None)


def quantile(feature, fraction: float) -> Optional[float]:
    """A quantile of a numeric feature from TFDV's quantiles histogram (equal-count buckets:
    the q-quantile is where bucket q * count starts); None without that histogram."""
    for histogram in feature.num_stats.histograms:
        if histogram.type == histogram.QUANTILES and histogram.buckets:
            buckets = histogram.buckets
            index = min(int(fraction * len(buckets)), len(buckets) - 1)
            return buckets[index].low_value if fraction < 1 else buckets[-1].high_value
    return None


def _value_shares(feature) -> Dict[str, float]:
    """{value: share of examples} of a string feature, from TFDV's top values."""
    string_stats = feature.string_stats
    total = sum(bucket.sample_count for bucket in string_stats.rank_histogram.buckets) or sum(
        value.frequency for value in string_stats.top_values)
    if not total:
        return {}
    return {value.value: value.frequency / total for value in string_stats.top_values}


def describe_text_statistics(dataset) -> Dict[str, Any]:
    """The tokenized text of one slice of one split: texts, tokens and characters per text
    (p50, p90, p99, max), the shares truncated and [UNK], and the label shares."""
    described: Dict[str, Any] = {"texts": dataset.num_examples}
    for feature in dataset.features:
        name = feature_name(feature)
        if name in (TOKEN_COUNT, TEXT_LENGTH):
            described[name] = {"p50": quantile(feature, 0.5), "p90": quantile(feature, 0.9),
                               "p99": quantile(feature, 0.99),
                               "max": feature.num_stats.max, "mean": feature.num_stats.mean}
        elif name in (TRUNCATED, UNKNOWN_TOKEN_SHARE):
            described[name] = feature.num_stats.mean
        elif name == LABEL_NAME:
            described[name] = _value_shares(feature)
    return described


def text_statistics(statistics: Artifact) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{split: {slice: describe_text_statistics(...)}} of a TextStatisticsGen output; the
    slices are TFDV's: "All Examples", then "label_name_<label>"."""
    found = {}
    for split in artifact_utils.decode_split_names(statistics.split_names):
        datasets = stats_artifact_utils.load_statistics(statistics, split).proto().datasets
        found[split] = {dataset.name or "All Examples": describe_text_statistics(dataset)
                        for dataset in datasets}
    return found


def drift_measurements(drift_anomalies: Artifact) -> Dict[str, Dict[str, Tuple[float, float]]]:
    """{split: {feature: (measured distance, threshold)}} of a DistributionValidator output
    (its split pairs, e.g. train_train, named by their first split); {} when it had no
    earlier span to compare with."""
    from tensorflow_data_validation.utils import anomalies_util
    found = {}
    for pair in artifact_utils.decode_split_names(drift_anomalies.split_names or "[]"):
        path = os.path.join(drift_anomalies.uri, f"SplitPair-{pair}", "SchemaDiff.pb")
        if not os.path.exists(path):
            continue
        split = pair.split("_", 1)[0]
        for info in anomalies_util.load_anomalies_binary(path).drift_skew_info:
            for measurement in info.drift_measurements:
                found.setdefault(split, {})[".".join(info.path.step)] = (measurement.value,
                                                                       measurement.threshold)
    return found


# ------------------------------------------------------------------------------ training


def read_scalars(log_dir: str) -> Dict[str, List[Tuple[int, float]]]:
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


def label_names(transform_graph: Artifact) -> List[str]:
    """The class names in class-index order (Transform's label vocabulary)."""
    import tensorflow_transform as tft
    return [name.decode("utf-8") if isinstance(name, bytes) else name for name in
            tft.TFTransformOutput(transform_graph.uri).vocabulary_by_name(LABEL_VOCABULARY)]


# ---------------------------------------------------------------------------- evaluation


def evaluated_models(evaluation_uri: str) -> Dict[str, str]:
    """The models a TFMA evaluation evaluated, by name: the candidate, and the baseline (the
    latest blessed model) when there was one; a single unnamed model has the name ''."""
    from tensorflow_model_analysis.writers import eval_config_writer
    _, _, _, model_locations = eval_config_writer.load_eval_run(evaluation_uri)
    return dict(model_locations or {})


def has_baseline(evaluation_uri: str) -> bool:
    return tfma.constants.BASELINE_KEY in evaluated_models(evaluation_uri)


def eval_result(evaluation_uri: str, baseline: bool = False):
    """TFMA's EvalResult of the candidate (or of the baseline). Loaded by name when there are
    two models: unnamed, TFMA warns that it finds no plots for it."""
    named = has_baseline(evaluation_uri)
    if baseline and not named:
        return None
    name = (tfma.constants.BASELINE_KEY if baseline else tfma.constants.CANDIDATE_KEY) \
        if named else None
    return tfma.load_eval_result(evaluation_uri, model_name=name)


def metric_value(value: Dict[str, Any]) -> Optional[float]:
    if "doubleValue" not in value:
        return None  # a structured metric (confusion matrix, ...): not a table cell
    return float(value["doubleValue"])  # TFMA writes NaN as the string "NaN"


def overall_metrics(evaluation_uri: str, baseline: bool = False) -> Dict[str, float]:
    """Overall-slice metrics of a TFMA evaluation's candidate model (per-class ones as
    `name/classId:k`; with a baseline, also the `..._diff` ones), or of its baseline ({} if it
    had none)."""
    metrics: Dict[str, float] = {}
    result = eval_result(evaluation_uri, baseline=baseline)
    if result is None:
        return metrics
    for slice_key, by_output in result.slicing_metrics:
        if slice_key != ():
            continue
        for sub_key, values in by_output[""].items():
            for name, value in values.items():
                if "doubleValue" in value:
                    metrics[f"{name}/{sub_key}" if sub_key else name] = value["doubleValue"]
    return metrics


def validation_result(evaluation_uri: str):
    """TFMA's ValidationResult: whether the thresholds passed, and each failure."""
    return tfma.load_validation_result(evaluation_uri)


# -------------------------------------------------------------------------------- tuning

# The files TFX's Tuner executor writes (tfx/components/tuner/executor.py).
_BEST_HYPERPARAMETERS_FILE, _TUNER_RESULTS_FILE = "best_hyperparameters.txt", "tuner_results.json"


def best_hyperparameters(artifact: Artifact) -> Dict[str, Any]:
    """The values of the Tuner's best hyperparameters (the Trainer's input)."""
    with open(os.path.join(artifact.uri, _BEST_HYPERPARAMETERS_FILE), encoding="utf-8") as handle:
        return dict(json.load(handle).get("values", {}))


def tuner_trials(tuner_results: Artifact) -> List[Dict[str, Any]]:
    """Each trial: trial_id, hyperparameters, val_accuracy and seconds (None when only TFX's
    own results file is there, as from the Vertex AI Tuner)."""
    from components.tuner import TRIALS_FILE_NAME
    from trainer.config import TUNED, VALIDATION_METRIC
    ours = os.path.join(tuner_results.uri, TRIALS_FILE_NAME)
    if os.path.exists(ours):
        with open(ours, encoding="utf-8") as handle:
            return json.load(handle)
    with open(os.path.join(tuner_results.uri, _TUNER_RESULTS_FILE), encoding="utf-8") as handle:
        rows = json.load(handle)
    return [{"trial_id": row["trial_id"], VALIDATION_METRIC: row["score"], "seconds": None,
             "hyperparameters": {name: row[name] for name in TUNED if name in row}}
            for row in rows]


# --------------------------------------------------------------------- blessing and push


def blessed(artifact: Optional[Artifact]) -> Optional[bool]:
    """A (Model or Infra) blessing's verdict; None when there is no blessing."""
    if artifact is None or not artifact.has_custom_property("blessed"):
        return None
    return bool(artifact.get_int_custom_property("blessed"))


def serving_check_report(infra_blessing: Artifact) -> Optional[Dict[str, Any]]:
    """The JSON report the ServingCheck wrote beside its blessing."""
    path = os.path.join(infra_blessing.uri, SERVING_CHECK_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
