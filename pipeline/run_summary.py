"""What a finished local run produced, read back from its ML Metadata store."""
from __future__ import annotations

from typing import Dict

from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from pipeline.config import PipelineConfig


def component_wall_times(config: PipelineConfig) -> Dict[str, float]:
    """Seconds from start to end of the latest execution of each component."""
    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(config.resolved().metadata_path))
    times: Dict[str, float] = {}
    for node in store.get_contexts_by_type("node"):  # named <pipeline>.<component id>
        executions = store.get_executions_by_context(node.id)
        if executions:
            execution = max(executions, key=lambda e: e.id)
            times[node.name.split(".", 1)[1]] = (execution.last_update_time_since_epoch
                                                 - execution.create_time_since_epoch) / 1000.0
    return times

