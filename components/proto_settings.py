"""TFX's ExampleValidator and DistributionValidator, with proto settings that also run on Kubeflow.

In TFX 1.16 both take their validation configs as protos that neither side of a Kubeflow v2 /
Vertex AI run handles: KubeflowV2DagRunner refuses ExampleValidator's `custom_validation_config`
(a proto placeholder) at compile time, and the container entrypoint hands every proto setting
to the executor as a JSON string, where the executors expect a message. These subclasses store
the configs as JSON (as TFX does for most proto settings) and give their executors the message
again, so the same component runs under LocalDagRunner and on Kubeflow/Vertex. DriftValidator
also records whether the span calls for training (RETRAIN_PROPERTY), for --retrain-on drift.
"""
from typing import Any, Dict, List, Optional

from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
from tfx import types
from tfx.components import ExampleValidator
from tfx.components.distribution_validator.component import DistributionValidator
from tfx.components.distribution_validator.executor import (
    ARTIFACT_PROPERTY_BLESSED_KEY as BLESSED_PROPERTY, NO_BASELINE_STATS, NOT_BLESSED_VALUE)
from tfx.components.distribution_validator.executor import Executor as _DistributionExecutor
from tfx.components.example_validator.executor import Executor as _ExampleValidatorExecutor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import distribution_validator_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils, proto_utils

_CUSTOM = standard_component_specs.CUSTOM_VALIDATION_CONFIG_KEY
_DISTRIBUTION = standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY
_ANOMALIES = standard_component_specs.ANOMALIES_KEY
# On DriftValidator's anomalies: 1 when the span drifted (some pair of splits was not blessed)
# or had no earlier span to compare with, else 0. --retrain-on drift trains only on 1.
RETRAIN_PROPERTY = "retrain"


def _as_messages(exec_properties: Dict[str, Any], kinds: Dict[str, Any]) -> Dict[str, Any]:
    """exec_properties with the JSON strings of `kinds` ({key: message class}) parsed."""
    parsed = dict(exec_properties)
    for key, message_class in kinds.items():
        if isinstance(parsed.get(key), str) and parsed[key]:
            parsed[key] = proto_utils.json_to_proto(parsed[key], message_class())
    return parsed


class _BoundsSpec(standard_component_specs.ExampleValidatorSpec):
    PARAMETERS = {**standard_component_specs.ExampleValidatorSpec.PARAMETERS,
                  _CUSTOM: ExecutionParameter(
                      type=custom_validation_config_pb2.CustomValidationConfig, optional=True)}


class _BoundsExecutor(_ExampleValidatorExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]):
        return super().Do(input_dict, output_dict, _as_messages(
            exec_properties, {_CUSTOM: custom_validation_config_pb2.CustomValidationConfig}))


class BoundsValidator(ExampleValidator):
    """ExampleValidator: statistics against a schema and TFDV custom validations (SQL)."""

    SPEC_CLASS = _BoundsSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_BoundsExecutor)

    def __init__(self, statistics: types.BaseChannel, schema: types.BaseChannel,
                 custom_validation_config: custom_validation_config_pb2.CustomValidationConfig):
        base_component.BaseComponent.__init__(self, spec=_BoundsSpec(
            statistics=statistics, schema=schema, exclude_splits=json_utils.dumps([]),
            custom_validation_config=custom_validation_config,
            anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies)))


class _DriftExecutor(_DistributionExecutor):
    """TFX's executor, and on its anomalies RETRAIN_PROPERTY, which a Cond can read."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]):
        result = super().Do(input_dict, output_dict, _as_messages(exec_properties, {
            _DISTRIBUTION: distribution_validator_pb2.DistributionValidatorConfig,
            _CUSTOM: custom_validation_config_pb2.CustomValidationConfig}))
        anomalies = output_dict[_ANOMALIES][0]
        verdicts = dict(anomalies.get_json_value_custom_property(BLESSED_PROPERTY) or {})
        anomalies.set_int_custom_property(RETRAIN_PROPERTY, int(
            any(verdict in (NOT_BLESSED_VALUE, NO_BASELINE_STATS)
                for verdict in verdicts.values())))
        # TFX publishes the artifact as the executor returned it: a copy made before this.
        result.output_artifacts[_ANOMALIES].artifacts[0].CopyFrom(anomalies.mlmd_artifact)
        return result


class DriftValidator(DistributionValidator):
    """DistributionValidator: each split of `statistics` against `baseline_statistics`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_DriftExecutor)

    def __init__(self, statistics: types.BaseChannel, baseline_statistics: types.BaseChannel,
                 config: distribution_validator_pb2.DistributionValidatorConfig,
                 include_split_pairs: Optional[List] = None):
        super().__init__(statistics=statistics, baseline_statistics=baseline_statistics,
                         config=config, include_split_pairs=include_split_pairs)
