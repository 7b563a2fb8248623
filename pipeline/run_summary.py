"""What a finished local run produced, read back from its ML Metadata store."""
from __future__ import annotations

from typing import Dict

from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from pipeline.config import PipelineConfig


def metadata_store_of(config: PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(config.resolved().metadata_path))


def component_wall_times(config: PipelineConfig) -> Dict[str, float]:
    """Seconds from start to end of the latest execution of each component."""
    store = metadata_store_of(config)
    times: Dict[str, float] = {}
    for node in store.get_contexts_by_type("node"):  # named <pipeline>.<component id>
        executions = store.get_executions_by_context(node.id)
        if executions:
            execution = max(executions, key=lambda e: e.id)
            times[node.name.split(".", 1)[1]] = (execution.last_update_time_since_epoch
                                                 - execution.create_time_since_epoch) / 1000.0
    return times



def _newest_artifact(store: metadata_store.MetadataStore, type_name: str):
    artifacts = store.get_artifacts_by_type(type_name)
    return max(artifacts, key=lambda artifact: artifact.id) if artifacts else None


def _property(artifact, name: str):
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    return value.string_value or value.int_value


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
    """Overall-slice metrics of a TFMA evaluation (per-class ones as `name/classId:k`)."""
    import tensorflow_model_analysis as tfma
    result = tfma.load_eval_result(evaluation_uri)
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
    """Where the pushed model is, whether it was blessed, and its evaluation metrics."""
    store = metadata_store_of(config)
    lines = []
    blessing = _newest_artifact(store, "ModelBlessing")
    if blessing is not None:
        lines.append(f"model blessed: {'yes' if _property(blessing, 'blessed') else 'no'}")
    evaluation = _newest_artifact(store, "ModelEvaluation")
    if evaluation is not None:
        metrics = overall_metrics(evaluation.uri)
        shown = {name: round(value, 4) for name, value in sorted(metrics.items())
                 if "/" not in name}
        lines.append(f"evaluation (eval split): {shown}")
    pushed = _newest_artifact(store, "PushedModel")
    if pushed is not None:
        if _property(pushed, "pushed"):
            lines.append(f"pushed model: {_property(pushed, 'pushed_destination')} "
                         f"(version {_property(pushed, 'pushed_version')})")
        else:
            lines.append("not pushed (the model was not blessed)")
    return "\n".join(lines)
