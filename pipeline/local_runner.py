"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite metadata."""
from __future__ import annotations

from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from pipeline.config import PipelineConfig
from pipeline.local_inputs import prepare_local_run
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> None:
    config = prepare_local_run(config)
    pipeline = create_pipeline(config)
    # The local run keeps ML Metadata in SQLite beside the pipeline root (Kubeflow and Vertex
    # bring their own store).
    pipeline.metadata_connection_config = \
        metadata.sqlite_metadata_connection_config(config.metadata_path)
    LocalDagRunner().run(pipeline)
