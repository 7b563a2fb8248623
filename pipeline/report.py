"""The run report: one self-contained HTML page of what a pipeline run did.

`bertpipe report --run-dir <output_dir>/<pipeline_name> [--run-id ID]` (and `bertpipe run`, when
it finishes) writes `<run dir>/report.html` for one run recorded in the run directory's ML
Metadata store, the latest by default: the components and their wall times, the settings and
checkpoint, the data statistics (TFDV) with a chart per feature, the anomalies per split, the
tokenized text per split and label with its bounds and the drift from the previous span, the
training curves (the Trainer's TensorBoard logs), the evaluation metrics, confusion matrix and
slices (TFMA), the blessing decisions and the pushed version. Images are PNG data URIs and the
style sheet is inline, so the file opens anywhere, offline, and can be attached to a ticket or
a CI run.

A section whose component did not run in that run (the data half only with --no-train, or a
run stopped by a failed component) says so and why. The run comes from pipeline/runs.py (ML
Metadata, read-only; artifacts from the run directory given, so a copied or moved run still
renders), the contents of its artifacts from pipeline/run_artifacts.py, the charts from
pipeline/report_charts.py; this module puts them into sections and renders the template.
"""
from __future__ import annotations

import datetime
import glob
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jinja2
import tensorflow_model_analysis as tfma
from google.protobuf import json_format, text_format
from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
from tensorflow_model_analysis.metrics.example_count import EXAMPLE_COUNT_NAME
from tensorflow_model_analysis.slicer import slicer_lib
from tfx.types import artifact_utils
from tfx.types.standard_component_specs import (BASELINE_STATISTICS_KEY,
                                                CUSTOM_VALIDATION_CONFIG_KEY)

from components.checkpoint_inputs import PretrainedCheckpoint
from components.validation_gate import describe_anomalies
from pipeline import report_charts, run_artifacts
from pipeline.run_summary import compared_with, push_outcome
from pipeline.runs import PipelineRun, read_run
from preprocessing.features import (LABEL_NAME, MAX_SEQ_LENGTH_KEY, TEXT_FEATURE_KEY,
                                    TEXT_LENGTH, TOKEN_COUNT, TRUNCATED, UNKNOWN_TOKEN_SHARE)
from trainer.config import VALIDATION_METRIC

REPORT_FILE_NAME = "report.html"
_TEMPLATE_NAME = "report_template.html"
# Keras TensorBoard logs: per-step values ("batch_loss", "evaluation_loss_vs_iterations")
# and per-epoch values ("epoch_loss") of every compiled metric, in train/ and validation/.
_TRAIN_LOG_DIR, _VALIDATION_LOG_DIR = "train", "validation"
_EPOCH_TAG = re.compile(r"epoch_(\w+)")


# ---------------------------------------------------------------------------- statistics


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


def _statistics_section(run: PipelineRun) -> Dict[str, Any]:
    statistics = run.artifact("StatisticsGen", "statistics")
    if statistics is None:
        return {"not_run": run.not_run_reason("StatisticsGen")}
    datasets = run_artifacts.statistics_by_split(statistics)
    text_feature, max_seq_length, token_stats = _token_statistics(run)
    names: List[str] = []
    for dataset in datasets.values():
        names += [run_artifacts.feature_name(f) for f in dataset.features if run_artifacts.feature_name(f) not in names]
    features = []
    for name in names:
        by_split = {split: feature for split, dataset in datasets.items()
                    for feature in dataset.features if run_artifacts.feature_name(feature) == name}
        first = next(iter(by_split.values()))
        if name == text_feature and token_stats is not None:
            chart = report_charts.token_length_chart(name, token_stats, max_seq_length)
        elif first.HasField("num_stats"):
            chart = report_charts.numeric_chart(name, by_split)
        elif first.HasField("string_stats") and first.string_stats.unique < \
                first.string_stats.common_stats.num_non_missing:
            chart = report_charts.top_values_chart(name, by_split)
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
    settings = transform.json_property("custom_config") or {}
    post_stats = run.artifact("Transform", "post_transform_stats")
    token_stats = (run_artifacts.token_id_statistics(post_stats) if post_stats is not None
                   else None)
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


# ----------------------------------------------------------------- tokenized text, drift

def _slice_label(slice_name: str) -> str:
    """TFDV's slice name as the report shows it: "all", or the label value."""
    prefix = f"{LABEL_NAME}_"
    return slice_name[len(prefix):] if slice_name.startswith(prefix) else "all"


def _text_rows(described: Dict[str, Dict[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    rows = []
    for split, slices in sorted(described.items(), key=lambda item: item[0] != "train"):
        for slice_name, values in slices.items():
            rows.append({"split": split, "label": _slice_label(slice_name),
                         "texts": values["texts"], "tokens": values.get(TOKEN_COUNT, {}),
                         "chars": values.get(TEXT_LENGTH, {}),
                         "truncated": 100 * values.get(TRUNCATED, 0.0),
                         "unknown": 100 * values.get(UNKNOWN_TOKEN_SHARE, 0.0)})
    return rows


def _bounds(run: PipelineRun) -> List[str]:
    """The bounds TextValidator applied, as their descriptions (with the flags)."""
    validator = run.get("TextValidator")
    config = validator.properties.get(CUSTOM_VALIDATION_CONFIG_KEY) if validator else None
    if not config:
        return []
    parsed = json_format.Parse(config, custom_validation_config_pb2.CustomValidationConfig())
    return [validation.description for feature in parsed.feature_validations
            for validation in feature.validations]


def _drift(run: PipelineRun, current: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The drift check of a {SPAN} run: distances per split, and the training split's label
    shares and lengths next to the previous span's."""
    drift = run.artifact("DriftValidator", "anomalies")
    if drift is None:
        if "DriftValidator" in run.components:
            return {"not_run": run.not_run_reason("DriftValidator")}
        return None
    measured = run_artifacts.drift_measurements(drift)
    baseline = run.get("DriftValidator").inputs.get(BASELINE_STATISTICS_KEY) or [None]
    previous_statistics = baseline[0]
    if not measured or previous_statistics is None:
        return {"not_run": None, "span": drift.span, "measured": {}, "previous_span": None}
    previous = run_artifacts.text_statistics(previous_statistics).get("train", {}).get(
        "All Examples", {})
    now = current.get("train", {}).get("All Examples", {})
    labels = sorted(set(previous.get(LABEL_NAME, {})) | set(now.get(LABEL_NAME, {})))
    return {"not_run": None, "span": drift.span, "previous_span": previous_statistics.span,
            "measured": {split: [{"feature": feature, "value": value, "bound": bound,
                                  "drifted": value > bound}
                                 for feature, (value, bound) in sorted(values.items())]
                         for split, values in sorted(measured.items())},
            "labels": [(label, 100 * previous.get(LABEL_NAME, {}).get(label, 0.0),
                        100 * now.get(LABEL_NAME, {}).get(label, 0.0)) for label in labels],
            "lengths": [(f"{name} {quantile}", previous.get(name, {}).get(quantile),
                         now.get(name, {}).get(quantile))
                        for name in (TOKEN_COUNT, TEXT_LENGTH)
                        for quantile in ("p50", "p90", "p99", "max")]}


def _text_section(run: PipelineRun) -> Dict[str, Any]:
    statistics = run.artifact("TextStatisticsGen", "statistics")
    if statistics is None:
        return {"not_run": run.not_run_reason("TextStatisticsGen")}
    described = run_artifacts.text_statistics(statistics)
    bounds = run.artifact("TextValidator", "anomalies")
    found = describe_anomalies(bounds, statistics) if bounds is not None else {}
    gate = run.get("TextValidationGate")
    return {"rows": _text_rows(described), "bounds": _bounds(run),
            "anomalies": [f"split {split!r}: {line}" for split, lines in sorted(found.items())
                          for line in lines],
            "action": "stop the run (TextValidationGate)" if gate else "warn",
            "drift": _drift(run, described)}


# -------------------------------------------------------------------------------- tuning


def _tuning_section(run: PipelineRun) -> Dict[str, Any]:
    results = run.artifact("Tuner", "tuner_results")
    if results is None:
        if "Tuner" not in run.components and not run.failed:
            return {"not_run": "not run: the Tuner is off (`bertpipe run --tune` turns it on)"}
        return {"not_run": run.not_run_reason("Tuner")}
    trials = run_artifacts.tuner_trials(results)
    best = run_artifacts.best_hyperparameters(run.artifact("Tuner", "best_hyperparameters"))
    names = sorted({name for trial in trials for name in trial["hyperparameters"]})
    for trial in trials:
        trial["best"] = all(trial["hyperparameters"].get(name) == value
                            for name, value in best.items())
    return {"trials": trials, "names": names, "best": best, "metric": VALIDATION_METRIC}


# ------------------------------------------------------------------------------ training


def _profile_dir(log_dir: str) -> Optional[str]:
    """The latest TensorFlow profile the Trainer recorded (--profile-steps), if any: Keras
    writes it to <log dir>/plugins/profile/<time>/."""
    profiles = sorted(glob.glob(os.path.join(log_dir, "plugins", "profile", "*")))
    return profiles[-1] if profiles else None


def _training_section(run: PipelineRun) -> Dict[str, Any]:
    model_run = run.artifact("Trainer", "model_run")
    if model_run is None:
        return {"not_run": run.not_run_reason("Trainer")}
    train = run_artifacts.read_scalars(os.path.join(model_run.uri, _TRAIN_LOG_DIR))
    validation = run_artifacts.read_scalars(os.path.join(model_run.uri, _VALIDATION_LOG_DIR))
    epoch_tags = [_EPOCH_TAG.fullmatch(tag) for tag in train]
    metrics = [match.group(1) for match in epoch_tags
               if match and match.group(1) != "learning_rate"]
    section: Dict[str, Any] = {"log_dir": model_run.uri, "cached": run.get("Trainer").state
                               == "CACHED", "profile": _profile_dir(model_run.uri)}
    if not metrics:
        section["not_run"] = f"no training summaries in {model_run.uri}"
        return section
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
    section.update(chart=report_charts.training_curves_chart(metrics, train, validation),
                   columns=columns, rows=rows)
    return section


# ---------------------------------------------------------------------------- evaluation


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
    return run_artifacts.label_names(transform_graph) if transform_graph is not None else []


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
    model_locations = run_artifacts.evaluated_models(evaluation.uri)
    has_baseline = tfma.constants.BASELINE_KEY in model_locations
    result = run_artifacts.eval_result(evaluation.uri)
    baseline = run_artifacts.eval_result(evaluation.uri, baseline=True)
    class_names = _class_names(run)

    # {slice: {sub key ('' or 'classId:k'): {metric: value}}}
    by_slice: Dict[Tuple, Dict[str, Dict[str, Optional[float]]]] = {
        slice_key: {sub_key: {name: run_artifacts.metric_value(value) for name, value in values.items()}
                    for sub_key, values in by_output[""].items()}
        for slice_key, by_output in result.slicing_metrics}
    baseline_overall = {}
    if baseline is not None:
        for slice_key, by_output in baseline.slicing_metrics:
            if slice_key == ():
                baseline_overall = {name: run_artifacts.metric_value(value)
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

    validation = run_artifacts.validation_result(evaluation.uri)
    failed_slices = sorted(((slicer_lib.deserialize_slice_key(per_slice.slice_key), per_slice)
                            for per_slice in validation.metric_validations_per_slice),
                           key=lambda pair: _natural_key(pair[0]))
    failures = [f"{_slice_name(slice_key)}: {_describe_failure(failure)}"
                for slice_key, per_slice in failed_slices for failure in per_slice.failures]
    return {"uri": evaluation.uri, "has_baseline": has_baseline,
            "compared_with": compared_with(run),
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
    return report_charts.slice_chart(
        [_slice_name(key) for key in slice_keys],
        [by_slice[key].get("", {}).get(accuracy_name) or 0.0 for key in slice_keys],
        [by_slice[key].get("", {}).get(EXAMPLE_COUNT_NAME) for key in slice_keys],
        accuracy_name)


# ------------------------------------------------------------------- blessing and push


def _serving_section(run: PipelineRun, evaluation: Dict[str, Any]) -> Dict[str, Any]:
    model_blessing = run_artifacts.blessed(run.artifact("Evaluator", "blessing"))
    infra = run.artifact("ServingCheck", "blessing")
    infra_blessed = run_artifacts.blessed(infra)
    serving_check = run_artifacts.serving_check_report(infra) if infra is not None else None
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
    section["push_note"] = push_outcome(run)
    return section


# --------------------------------------------------------------------------- the run


def _run_section(run: PipelineRun) -> Dict[str, Any]:
    settings = []  # (component: setting, value) as each component received it
    for component in ("Transform", "Trainer"):
        entry = run.get(component)
        for name, value in sorted((entry.json_property("custom_config") or {}).items()
                                  if entry is not None else []):
            if isinstance(value, dict):  # a section, e.g. the Trainer's training settings
                settings += [(f"{component}: {key}", item) for key, item in sorted(value.items())]
            else:
                settings.append((f"{component}: {name}", value))
    data = []
    example_gen = next((entry for entry in run.components.values()
                        if "input_base" in entry.properties), None)
    if example_gen is not None:
        input_config = example_gen.json_property("input_config") or {}
        for split in input_config.get("splits", []):
            data.append((split["name"], os.path.join(example_gen.properties["input_base"],
                                                     split["pattern"])))
    schema = next((entry.properties["schema_file"] for entry in run.components.values()
                   if "schema_file" in entry.properties), None)
    checkpoint = next((artifact.uri for entry in run.components.values()
                       for artifacts in entry.outputs.values() for artifact in artifacts
                       if artifact.type_name == PretrainedCheckpoint.TYPE_NAME), None)
    return {"components": [{"name": entry.component, "state": entry.state,
                            "seconds": entry.seconds} for entry in run.components.values()],
            "any_cached": any(entry.state == "CACHED" for entry in run.components.values()),
            "settings": settings, "data": data, "schema": schema,
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
                "anomalies": _anomalies_section(run), "text": _text_section(run),
                "tuning": _tuning_section(run),
                "training": _training_section(run),
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
