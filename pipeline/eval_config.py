"""TFMA's EvalConfig for the Evaluator: metrics, slices and the blessing thresholds.

Labels are the class indices the Transform graph assigns (the model's `eval_features`
signature), predictions the `probabilities` of its `serving_examples` signature. Per-class
metrics (precision, recall, F1, AUC, calibration) need the label count when the pipeline is
built: it comes from `label_values` (--label-values, or the curated schema's label domain when
that is a file of this machine: pipeline/local_inputs.py); it is never read from cloud storage
here. Without label values (a first run with an inferred schema, or a compile with a gs://
schema and no --label-values) only the overall metrics and the multi-class confusion matrix are
computed.

The blessing thresholds apply to the overall slice only. The length-bucket slices are reported
but not gated: a bucket of a few examples (e.g. the few long texts of a small eval set) would
make the blessing a coin toss.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow_model_analysis as tfma

from pipeline.config import EvaluationConfig
from preprocessing.features import LABEL, LENGTH_BUCKET
from serving.contract import EVAL_FEATURES_SIGNATURE, EXAMPLES_SIGNATURE, PROBABILITIES


def make_eval_config(evaluation: EvaluationConfig, label_values: Sequence[str] = ()
                     ) -> tfma.EvalConfig:
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": evaluation.min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -evaluation.max_accuracy_drop}))
    overall = tfma.MetricsSpec(metrics=[
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(class_name="SparseCategoricalAccuracy", per_slice_thresholds=[
            tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                         threshold=accuracy_threshold)]),
        tfma.MetricConfig(class_name="SparseCategoricalCrossentropy"),
        tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ])
    metrics_specs = [overall]
    if label_values:
        metrics_specs.append(tfma.MetricsSpec(
            binarize=tfma.BinarizationOptions(
                class_ids={"values": list(range(len(label_values)))}),
            metrics=[tfma.MetricConfig(class_name=name) for name in (
                "Precision", "Recall", "F1Score", "AUC", "Calibration", "CalibrationPlot")]))
    return tfma.EvalConfig(
        # model_type given: without it TFMA first tries to load the export as a whole Keras
        # model (seconds of tracing per model load) only to learn that it is a generic
        # SavedModel called through its signatures.
        model_specs=[tfma.ModelSpec(
            model_type=tfma.TF_GENERIC,
            signature_name=EXAMPLES_SIGNATURE, label_key=LABEL, prediction_key=PROBABILITIES,
            preprocessing_function_names=[EVAL_FEATURES_SIGNATURE])],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[LENGTH_BUCKET])],
        metrics_specs=metrics_specs)
