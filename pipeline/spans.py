"""Span-based retraining: which span a run would read, and whether a run already computed it.

With `{SPAN}` in the training data pattern, ExampleGen reads the latest span (TFX's own span
resolution, used here unchanged). A scheduled job calls `bertpipe run` whether or not new data
has arrived; `already_processed` lets that call end at once when a complete run of this pipeline
has already computed what this one would: the latest span with the same files (TFX's input
fingerprint), and the same settings that shape the model (the checkpoint, the schema and the
execution properties of Transform, the Tuner and the Trainer, as the pipeline definition would
give them).
A changed training setting (say --learning-rate) therefore trains; a changed blessing threshold
alone does not, since it shapes no model (use --no-skip-processed-span to re-evaluate).
TFX caching alone cannot decide this, because the Trainer's warm start and the Evaluator's
baseline (the latest blessed model) change after every blessed run.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Optional

from tfx.components.example_gen import utils as example_gen_utils
from tfx.utils import json_utils

from components.proto_settings import RETRAIN_PROPERTY
from pipeline import runs
from pipeline.config import PipelineConfig
from pipeline.data_inputs import example_gen_inputs

# The last component of a complete run: the pusher, or Transform for a data-half-only run.
_FINAL_COMPONENT = {True: "ServingPusher", False: "Transform"}
# The components whose execution properties shape the model, and those properties.
_MODEL_SETTINGS = {"ImportSchemaGen": ("schema_file",), "Transform": ("custom_config",),
                   "Tuner": ("custom_config",), "Trainer": ("custom_config",)}
_CHECKPOINT = ("PretrainedCheckpointImporter", "result")
_TRAINING_SETTINGS = ("Tuner", "Trainer")


@dataclasses.dataclass(frozen=True)
class SpanInput:
    span: int
    version: Optional[int]
    fingerprint: str


def latest_span(config: PipelineConfig) -> Optional[SpanInput]:
    """The span ExampleGen would read now, or None when the data has no {SPAN}."""
    config = config.resolved()
    if not config.data.has_spans:
        return None
    input_base, input_config, _ = example_gen_inputs(config.data)
    fingerprint, span, version = \
        example_gen_utils.calculate_splits_fingerprint_span_and_version(
            input_base, input_config.splits)
    return SpanInput(span, version, fingerprint)


def _normalized(value: Any) -> Any:
    """A property as ML Metadata records it: dicts (custom_config) as parsed JSON."""
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    if isinstance(value, dict):
        return json.loads(json_utils.dumps(value))
    return value


def model_settings(config: PipelineConfig) -> Dict[str, Any]:
    """What shapes the model of a run of `config` (prepared: local_inputs.prepare_local_run),
    as the pipeline definition hands it to the components."""
    from pipeline.pipeline import create_pipeline
    components = {component.id: component for component in create_pipeline(config).components}
    settings = {f"{node}.{name}": _normalized(components[node].exec_properties.get(name))
                for node, names in _MODEL_SETTINGS.items() if node in components
                for name in names}
    settings["checkpoint"] = config.model.checkpoint
    return settings


def _recorded_model_settings(run: runs.PipelineRun) -> Dict[str, Any]:
    """model_settings as the run's executions recorded them (None: the component did not run)."""
    settings = {f"{node}.{name}": _normalized(run.get(node).properties.get(name))
                if run.get(node) is not None else None
                for node, names in _MODEL_SETTINGS.items() for name in names}
    checkpoint = run.artifact(*_CHECKPOINT)
    settings["checkpoint"] = checkpoint.uri if checkpoint is not None else None
    return settings


def already_processed(config: PipelineConfig) -> Optional[str]:
    """Why a run of `config` (prepared) would have nothing to do, or None when it has.

    It has nothing to do when `skip_processed_span` is on, the data has {SPAN}, and a run of
    this pipeline read the latest span with the same fingerprint, with the same model settings,
    and finished its last component.
    """
    if not config.data.skip_processed_span or not os.path.exists(config.metadata_path):
        return None
    current = latest_span(config)
    if current is None:
        return None
    wanted = model_settings(config)
    final_component = _FINAL_COMPONENT[config.runtime.train]
    for run in reversed(runs.runs_that_read(config.run_dir, current.span, current.fingerprint)):
        final = run.get(final_component)
        recorded = _recorded_model_settings(run)
        compared = wanted
        if config.quality.retrain_on == "drift" and _ended_without_drift(run):
            # The training half did not run: only the data half's settings were used.
            final = run.get("DriftValidator")
            compared = {key: value for key, value in wanted.items()
                        if key.split(".")[0] not in _TRAINING_SETTINGS}
        if final is not None and final.succeeded and all(
                recorded.get(key) == value for key, value in compared.items()):
            return (f"span {current.span} (input fingerprint and model settings unchanged) was "
                    f"already processed by run {run.run_id}: nothing to do")
    return None


def _ended_without_drift(run: runs.PipelineRun) -> bool:
    """Did the run end after the checks because its span did not drift (--retrain-on drift)?"""
    drift = run.artifact("DriftValidator", "anomalies")
    return (drift is not None and not run.failed and drift.has_custom_property(RETRAIN_PROPERTY)
            and drift.get_int_custom_property(RETRAIN_PROPERTY) == 0)
