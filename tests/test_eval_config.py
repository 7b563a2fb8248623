"""The Evaluator's blessing thresholds (pipeline/eval_config.py)."""
from pipeline.config import EvaluationConfig
from pipeline.eval_config import make_eval_config


def test_accuracy_thresholds_gate_the_overall_slice_only():
    eval_config = make_eval_config(EvaluationConfig(min_accuracy=0.8, max_accuracy_drop=0.01),
                                   ("negative", "positive"))
    gated = [(metric, spec) for spec in eval_config.metrics_specs for metric in spec.metrics
             if metric.HasField("threshold") or metric.per_slice_thresholds]
    [(accuracy, _)] = gated
    assert accuracy.class_name == "SparseCategoricalAccuracy"
    assert not accuracy.HasField("threshold")  # that one would gate every length bucket too
    [per_slice] = accuracy.per_slice_thresholds
    assert [spec.feature_keys for spec in per_slice.slicing_specs] == [[]]  # overall
    assert per_slice.threshold.value_threshold.lower_bound.value == 0.8
    assert per_slice.threshold.change_threshold.absolute.value == -0.01
    # The length buckets are still computed and reported.
    assert any(list(spec.feature_keys) == ["length_bucket"]
               for spec in eval_config.slicing_specs)
    # Per-class metrics for each of the label values, in class order.
    [per_class] = [spec for spec in eval_config.metrics_specs if spec.HasField("binarize")]
    assert list(per_class.binarize.class_ids.values) == [0, 1]
    assert not any(spec.HasField("binarize")
                   for spec in make_eval_config(EvaluationConfig()).metrics_specs)
