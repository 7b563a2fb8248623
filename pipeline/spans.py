"""Span-based retraining: which span a run would read, and whether a run already processed it.

With `{SPAN}` in the training data pattern, ExampleGen reads the latest span (TFX's own span
resolution, used here unchanged). A scheduled job calls `bertpipe run` whether or not new data
has arrived; `already_processed` lets that call end at once when the latest span, with the same
files (TFX's input fingerprint), has been through a complete run of this pipeline: no new
training, no new push. TFX caching alone cannot decide this, because the Trainer's warm start
and the Evaluator's baseline (the latest blessed model) change after every blessed run.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.components.example_gen import utils as example_gen_utils

from pipeline.config import PipelineConfig
from pipeline.data_inputs import example_gen_inputs
from pipeline.run_summary import metadata_store_of

# The last component of a complete run: the pusher, or Transform for a data-half-only run.
_FINAL_COMPONENT = {True: "ServingPusher", False: "Transform"}
_DONE = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


@dataclasses.dataclass(frozen=True)
class SpanInput:
    span: int
    version: Optional[int]
    fingerprint: str


def latest_span(config: PipelineConfig) -> Optional[SpanInput]:
    """The span ExampleGen would read now, or None when the data has no {SPAN}."""
    config = config.resolved()
    if "{SPAN" not in config.train_data:
        return None
    input_base, input_config, _ = example_gen_inputs(config)
    fingerprint, span, version = \
        example_gen_utils.calculate_splits_fingerprint_span_and_version(
            input_base, input_config.splits)
    return SpanInput(span, version, fingerprint)


def _int_property(artifact, name: str) -> Optional[int]:
    value = artifact.custom_properties.get(name)
    return value.int_value if value is not None else None


def already_processed(config: PipelineConfig) -> Optional[str]:
    """Why a run of `config` would have nothing to do, or None when it has.

    It has nothing to do when `skip_processed_span` is on, the data has {SPAN}, and a run of
    this pipeline read the latest span with the same fingerprint and finished its last component.
    """
    config = config.resolved()
    if not config.skip_processed_span or not os.path.exists(config.metadata_path):
        return None
    current = latest_span(config)
    if current is None:
        return None
    store = metadata_store_of(config)
    examples = [artifact for artifact in store.get_artifacts_by_type("Examples")
                if _int_property(artifact, example_gen_utils.SPAN_PROPERTY_NAME) == current.span
                and artifact.custom_properties.get(
                    example_gen_utils.FINGERPRINT_PROPERTY_NAME,
                    metadata_store_pb2.Value()).string_value == current.fingerprint]
    if not examples:
        return None
    final_node = store.get_context_by_type_and_name(
        "node", f"{config.pipeline_name}.{_FINAL_COMPONENT[config.train]}")
    if final_node is None:
        return None
    finished = {execution.id for execution in store.get_executions_by_context(final_node.id)
                if execution.last_known_state in _DONE}
    producers = {event.execution_id
                 for event in store.get_events_by_artifact_ids([a.id for a in examples])
                 if event.type == metadata_store_pb2.Event.OUTPUT}
    run_type = store.get_context_type("pipeline_run").id
    for producer in producers:
        for run in store.get_contexts_by_execution(producer):
            if run.type_id != run_type:
                continue
            if finished & {execution.id for execution in store.get_executions_by_context(run.id)}:
                return (f"span {current.span} (input fingerprint unchanged) was already "
                        f"processed by run {run.name}: nothing to do")
    return None
