"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite metadata."""
from __future__ import annotations

from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> None:
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
