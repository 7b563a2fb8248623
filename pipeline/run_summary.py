"""What the latest local run did, in a few lines for the terminal: each component's wall time,
the blessing, the evaluation metrics and the pushed version. The run is read from the run
directory's ML Metadata store as the run report reads it (pipeline/report.read_run), so only
this run's executions count: a data-half run after a full one shows no model.
"""
from __future__ import annotations

from typing import Dict

from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from pipeline.config import PipelineConfig


def metadata_store_of(config: PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(config.resolved().metadata_path))


def latest_run(config: PipelineConfig):
    """The latest pipeline run in the config's run directory (a report.PipelineRun)."""
    from pipeline import report  # its MLMD reading; nothing is rendered here
    return report.read_run(report.run_dir_of(config))


def component_wall_times(config: PipelineConfig) -> Dict[str, float]:
    """Seconds from start to end of each component in the latest run (for a cached one, the
    cache lookup)."""
    return {name: entry.seconds for name, entry in latest_run(config).components.items()}


def evaluated_models(evaluation_uri: str) -> Dict[str, str]:
    """The models a TFMA evaluation evaluated, by name: the candidate, and the baseline (the
    latest blessed model) when there was one; a single unnamed model has the name ''."""
    from tensorflow_model_analysis.writers import eval_config_writer
    _, _, _, model_locations = eval_config_writer.load_eval_run(evaluation_uri)
    return dict(model_locations or {})


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
    """Overall-slice metrics of a TFMA evaluation's candidate model (per-class ones as
    `name/classId:k`; with a baseline, also the `..._diff` ones)."""
    import tensorflow_model_analysis as tfma
    # Named when there are two models: unnamed, TFMA warns that it finds no plots for it.
    result = tfma.load_eval_result(
        evaluation_uri,
        model_name=(tfma.constants.CANDIDATE_KEY
                    if tfma.constants.BASELINE_KEY in evaluated_models(evaluation_uri) else None))
    metrics: Dict[str, float] = {}
    for slice_key, by_output in result.slicing_metrics:
        if slice_key != ():
            continue
        for sub_key, values in by_output[""].items():
            for name, value in values.items():
                if "doubleValue" in value:
                    metrics[f"{name}/{sub_key}" if sub_key else name] = value["doubleValue"]
    return metrics


def describe_latest_run(config: PipelineConfig) -> str:
    return describe_run(latest_run(config))


def describe_run(run) -> str:
    """Whether a run (a report.PipelineRun) blessed its model, its evaluation metrics and where
    it pushed it; empty for a run without a model (the data half only)."""
    lines = []
    blessing = run.artifact("Evaluator", "blessing")
    if blessing is not None:
        blessed = blessing.get_int_custom_property("blessed")
        lines.append(f"model blessed: {'yes' if blessed else 'no'}")
    evaluation = run.artifact("Evaluator", "evaluation")
    if evaluation is not None:
        metrics = overall_metrics(evaluation.uri)
        shown = {name: round(value, 4) for name, value in sorted(metrics.items())
                 if "/" not in name}
        lines.append(f"evaluation (eval split): {shown}")
    pushed = run.artifact("ServingPusher", "pushed_model")
    if pushed is not None:
        if pushed.get_int_custom_property("pushed"):
            lines.append(f"pushed model: {pushed.get_string_custom_property('pushed_destination')}"
                         f" (version {pushed.get_custom_property('pushed_version')})")
        else:
            lines.append("not pushed (the model was not blessed)")
    return "\n".join(lines)
