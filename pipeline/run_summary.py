"""What the latest local run did, in a few lines for the terminal: each component's wall time
and state, the checks of the tokenized text and of drift, which components were cached, what the model was compared with, the blessing, the
evaluation metrics and the pushed version, or why it was not pushed (`push_outcome`, which the
report shows too). The run is read as the report reads it (pipeline/runs.py), so only this
run's executions count: a data-half run after a full one shows no model.
"""
from __future__ import annotations

from typing import List, Optional

from components.pusher import (ALREADY_SERVED_PROPERTY, NOT_PUSHED_REASON_PROPERTY,
                               SERVED_VERSION_PROPERTY)
from components.served_baseline import REPLACES_PROPERTY, SERVED_PATH_PROPERTY
from components.validation_gate import describe_anomalies
from pipeline import run_artifacts, runs
from preprocessing.features import (LABEL_NAME, TEXT_LENGTH, TOKEN_COUNT, TRUNCATED,
                                    UNKNOWN_TOKEN_SHARE)

_ACCURACY = "sparse_categorical_accuracy"


def component_lines(run: runs.PipelineRun) -> List[str]:
    """One line per component: its wall time (for a cached one, the cache lookup) and state."""
    return [f"  {name:<30} {entry.seconds:8.1f} s" + ("  (cached)" if entry.state == "CACHED"
                                                     else "")
            for name, entry in run.components.items()]


def compared_with(run: runs.PipelineRun) -> Optional[str]:
    """What the Evaluator compared the model with: the served version, or nothing."""
    baseline = run.artifact("ServedBaseline", "baseline")
    if baseline is None:
        return None
    version = baseline.get_int_custom_property(SERVED_VERSION_PROPERTY)
    if not version:
        return "nothing is served yet: no baseline, evaluated against the thresholds only"
    if baseline.get_int_custom_property(REPLACES_PROPERTY):
        return (f"served version {version} could not be evaluated; --allow-replace-served: "
                "evaluated against the thresholds only")
    return (f"served version {version} "
            f"({baseline.get_string_custom_property(SERVED_PATH_PROPERTY)})")


def push_outcome(run: runs.PipelineRun) -> Optional[str]:
    """Where the model was pushed, or why it was not (worse than the served version, below a
    threshold, served model changed meanwhile); None when the run has no pusher result."""
    pushed = run.artifact("ServingPusher", "pushed_model")
    if pushed is None:
        return None
    if pushed.get_int_custom_property("pushed"):
        already = pushed.has_custom_property(ALREADY_SERVED_PROPERTY) and \
            pushed.get_int_custom_property(ALREADY_SERVED_PROPERTY)
        return (f"{'already serving' if already else 'pushed'} model: "
                f"{pushed.get_string_custom_property('pushed_destination')}"
                f" (version {pushed.get_custom_property('pushed_version')})")
    if pushed.has_custom_property(NOT_PUSHED_REASON_PROPERTY):
        return pushed.get_string_custom_property(NOT_PUSHED_REASON_PROPERTY)
    evaluation = run.artifact("Evaluator", "evaluation")
    if run_artifacts.blessed(run.artifact("Evaluator", "blessing")) is False and evaluation:
        return "not pushed: " + "; ".join(_blessing_failures(run, evaluation.uri))
    return "not pushed (the model was not blessed)"


def _blessing_failures(run: runs.PipelineRun, evaluation_uri: str) -> List[str]:
    """'worse than served version 1 (accuracy 0.6389 vs 0.8333)', 'accuracy 0.4 below the
    minimum 0.5': the overall-slice threshold failures of the evaluation, in words."""
    validation = run_artifacts.validation_result(evaluation_uri)
    failures = [failure for per_slice in validation.metric_validations_per_slice
                if not per_slice.slice_key.single_slice_keys for failure in per_slice.failures]
    candidate = run_artifacts.overall_metrics(evaluation_uri)
    baseline = run_artifacts.overall_metrics(evaluation_uri, baseline=True)
    served = run.artifact("ServedBaseline", "baseline")
    reasons = []
    for failure in failures:
        name = failure.metric_key.name
        short = "accuracy" if name == _ACCURACY else name
        if failure.metric_key.is_diff:
            version = served.get_int_custom_property(SERVED_VERSION_PROPERTY) if served else "?"
            allowed = failure.metric_threshold.change_threshold.absolute.value
            reasons.append(f"worse than served version {version} ({short} "
                           f"{candidate.get(name, float('nan')):.4f} vs "
                           f"{baseline.get(name, float('nan')):.4f}"
                           + (f", allowed drop {-allowed:g})" if allowed else ")"))
        else:
            bound = failure.metric_threshold.value_threshold.lower_bound.value
            reasons.append(f"{short} {failure.metric_value.double_value.value:.4f} below the "
                           f"minimum {bound:g}")
    return reasons or ["the model was not blessed"]


_DRIFT_NAMES = {LABEL_NAME: "label L-inf", TEXT_LENGTH: "text length JS",
                TOKEN_COUNT: "token count JS"}


def quality_lines(run: runs.PipelineRun) -> List[str]:
    """The checks of the tokenized text: its bounds on the training split (or each anomaly,
    by split, with the measured value), and the drift from the previous span."""
    lines = []
    statistics = run.artifact("TextStatisticsGen", "statistics")
    bounds = run.artifact("TextValidator", "anomalies")
    if statistics is not None and bounds is not None:
        found = describe_anomalies(bounds, statistics)
        if found:
            lines.extend(f"text anomaly: split {split!r}: {line}"
                         for split, entries in sorted(found.items()) for line in entries)
        else:
            train = run_artifacts.text_statistics(statistics).get("train", {}).get(
                "All Examples", {})
            tokens = train.get(TOKEN_COUNT, {})
            lines.append(f"tokenized text (train): {tokens.get('p50', 0):.0f} tokens per text "
                         f"(p90 {tokens.get('p90', 0):.0f}), truncated "
                         f"{100 * train.get(TRUNCATED, 0):.1f}%, [UNK] "
                         f"{100 * train.get(UNKNOWN_TOKEN_SHARE, 0):.2f}%: within bounds")
    drift = run.artifact("DriftValidator", "anomalies")
    if drift is not None:
        by_split = run_artifacts.drift_measurements(drift)
        if not by_split:
            lines.append("drift: no earlier span to compare with")
        for split, measured in sorted(by_split.items(), key=lambda item: item[0] != "train"):
            drifted = [feature for feature, (value, bound) in measured.items() if value > bound]
            lines.append(
                f"drift of span {drift.span} from the previous span ({split}): " + ", ".join(
                    f"{_DRIFT_NAMES.get(feature, feature)} {value:.3f} (max {bound:g})"
                    for feature, (value, bound) in sorted(measured.items()))
                + (f": DRIFTED ({', '.join(drifted)})" if drifted else ": within bounds"))
    return lines


def describe_run(run: runs.PipelineRun) -> str:
    """Which components were cached, what the model was compared with, whether the run blessed
    it, its evaluation metrics and where it pushed it, or why not; the model lines are left out
    for a run without one (data half)."""
    lines = quality_lines(run)
    if run.cached:
        lines.append(f"cached (inputs and settings unchanged, outputs reused): "
                     f"{', '.join(run.cached)}")
    baseline = compared_with(run)
    if baseline is not None:
        lines.append(f"compared with: {baseline}")
    blessing = run_artifacts.blessed(run.artifact("Evaluator", "blessing"))
    if blessing is not None:
        lines.append(f"model blessed: {'yes' if blessing else 'no'}")
    evaluation = run.artifact("Evaluator", "evaluation")
    if evaluation is not None:
        metrics = run_artifacts.overall_metrics(evaluation.uri)
        shown = {name: round(value, 4) for name, value in sorted(metrics.items())
                 if "/" not in name}
        lines.append(f"evaluation (eval split): {shown}")
    outcome = push_outcome(run)
    if outcome is not None:
        lines.append(outcome)
    return "\n".join(lines)
