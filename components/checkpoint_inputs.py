"""The pretrained checkpoint as a pipeline artifact, and components that consume it.

The checkpoint is imported once (`checkpoint_importer`), so ML Metadata records which checkpoint
each run used. TFX's Transform and Trainer have no input for it, so this module gives each a
subclass whose spec adds a `pretrained_checkpoint` input channel; their executors put the
artifact's URI into `custom_config['pretrained_checkpoint']`, where the user module reads it.
One artifact feeds vocabulary, casing and weights: there is no second path that could drift.
The executors check the checkpoint directory before they use it (config.json, vocab.txt), so
a cloud run with a wrong --checkpoint fails with the same CheckpointError a local run gives
before it starts.

Transform also gets the label values of the schema (`custom_config['label_values']`) so the
label vocabulary follows the schema's order: class indices stay stable across retraining runs;
its transformed examples get their input's span, which TFX's Transform does not set.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from tfx import types
from tfx.components import Trainer as _Trainer
from tfx.components import Transform as _Transform
from tfx.components.trainer.executor import GenericExecutor
from tfx.components.example_gen.utils import SPAN_PROPERTY_NAME
from tfx.components.transform.executor import Executor as _TransformExecutor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.common import importer
from tfx.types import artifact_utils, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, json_utils

from preprocessing.checkpoint import check_checkpoint_dir, check_checkpoint_settings
from preprocessing.features import (CHECKPOINT_KEY, LABEL_FEATURE_KEY, LABEL_VALUES_KEY,
                                    MAX_SEQ_LENGTH_KEY)
from preprocessing.preprocessing import label_values_from_schema


class PretrainedCheckpoint(types.Artifact):
    """A Hugging Face model directory: config.json, vocab.txt, tokenizer config, weights."""

    TYPE_NAME = "bertpipe.PretrainedCheckpoint"


def checkpoint_importer(checkpoint_uri: str) -> importer.Importer:
    return importer.Importer(source_uri=checkpoint_uri, artifact_type=PretrainedCheckpoint,
                             reimport=False).with_id("PretrainedCheckpointImporter")


def _custom_config(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    serialized = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if isinstance(serialized, dict):  # as TFX's Vertex training launcher may hand it over
        return serialized
    return (json_utils.loads(serialized) if serialized else None) or {}


def _move_checkpoint_into_custom_config(
        input_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any],
        **extra: Any) -> Tuple[Dict[str, List[types.Artifact]], Dict[str, Any]]:
    input_dict = dict(input_dict)
    checkpoint = artifact_utils.get_single_instance(input_dict.pop(CHECKPOINT_KEY))
    check_checkpoint_dir(checkpoint.uri)
    custom_config = dict(_custom_config(exec_properties), **extra)
    custom_config[CHECKPOINT_KEY] = checkpoint.uri
    exec_properties = dict(exec_properties)
    exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY] = json_utils.dumps(custom_config)
    return input_dict, exec_properties


def span_of(examples: types.Artifact) -> int:
    """The span of an Examples artifact: ExampleGen records it as a custom property."""
    if examples.has_custom_property(SPAN_PROPERTY_NAME):
        return examples.get_int_custom_property(SPAN_PROPERTY_NAME)
    return examples.span


class TransformExecutor(_TransformExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        schema = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.SCHEMA_KEY])
        settings = _custom_config(exec_properties)
        label_feature = settings[LABEL_FEATURE_KEY]
        # On Kubeflow/Vertex this is the first place the checkpoint is read.
        check_checkpoint_settings(
            artifact_utils.get_single_instance(input_dict[CHECKPOINT_KEY]).uri,
            int(settings[MAX_SEQ_LENGTH_KEY]))
        input_dict, exec_properties = _move_checkpoint_into_custom_config(
            input_dict, exec_properties,
            **{LABEL_VALUES_KEY: label_values_from_schema(
                io_utils.get_only_uri_in_dir(schema.uri), label_feature)})
        result = super().Do(input_dict, output_dict, exec_properties)
        # TFX's Transform leaves the transformed examples without a span, and statistics take
        # their examples' span: the drift check finds the previous span's statistics by it.
        span = max(span_of(example)
                   for example in input_dict[standard_component_specs.EXAMPLES_KEY])
        for transformed in output_dict.get(
                standard_component_specs.TRANSFORMED_EXAMPLES_KEY, []):
            transformed.span = span
        return result


class TrainerExecutor(GenericExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        input_dict, exec_properties = _move_checkpoint_into_custom_config(
            input_dict, exec_properties)
        return super().Do(input_dict, output_dict, exec_properties)


def with_checkpoint_input(component_class, executor_class):
    """A subclass of a TFX component with a `pretrained_checkpoint` input and `executor_class`."""
    spec_class = type(component_class.SPEC_CLASS.__name__, (component_class.SPEC_CLASS,), {
        "INPUTS": {**component_class.SPEC_CLASS.INPUTS,
                   CHECKPOINT_KEY: ChannelParameter(type=PretrainedCheckpoint)}})

    class WithCheckpoint(component_class):
        SPEC_CLASS = spec_class
        EXECUTOR_SPEC = type(component_class.EXECUTOR_SPEC)(executor_class)

        def __init__(self, pretrained_checkpoint: types.BaseChannel, **kwargs):
            # Let the TFX component check and serialize its arguments, then add the channel.
            standard = component_class(**kwargs)
            spec = spec_class(**standard.spec.exec_properties, **standard.spec.inputs,
                              **standard.spec.outputs,
                              **{CHECKPOINT_KEY: pretrained_checkpoint})
            base_component.BaseComponent.__init__(self, spec=spec)

    WithCheckpoint.__name__ = WithCheckpoint.__qualname__ = component_class.__name__
    return WithCheckpoint


Transform = with_checkpoint_input(_Transform, TransformExecutor)
Trainer = with_checkpoint_input(_Trainer, TrainerExecutor)
# The same Trainer run as a Vertex AI Training job: components/vertex_training.py.
