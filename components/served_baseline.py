"""ServedBaseline: the model TF Serving serves now, imported as the Evaluator's baseline.

The pusher writes into `<serving_root>/<model_name>/`. Other pipelines, people, or TFX's stock
Pusher may write there too, and TF Serving serves the newest version, whatever produced it. A
candidate must therefore match *that* model, not only the latest model blessed in this
pipeline's ML Metadata: a new metadata store, a second pipeline (`make demo`, then `make
retrain`) or a second team's pipeline pushing the same model name has none, or another one.

- The driver (local runs) reads the newest served version and its fingerprint into the exec
  properties before TFX's cache lookup, as ExampleGen's driver does with its input
  fingerprint. The component therefore reruns whenever what is served changed, and only then.
  Kubeflow Pipelines v2 / Vertex AI run no custom driver: there the component reruns with each
  new candidate model (its input). If a cached result is stale there, the pusher's re-check
  refuses the push (components/pusher.py).
- The executor copies the newest complete version (one with saved_model.pb, as TF Serving
  needs) into its Model artifact (`Format-Serving/`), so ML Metadata keeps what the candidate was
  compared with even after that version is deleted. The artifact records `served_version`,
  `served_fingerprint` and `served_path`. With nothing served, `served_version` is 0, the
  artifact holds no model, and the Evaluator below evaluates without a baseline.
- A served version that cannot be evaluated as the candidate is (it fails to load, or lacks the
  `serving_examples` / `eval_features` signatures, or has other classes; both are loaded in
  this process, as the Evaluator loads them) stops the run with
  ServedBaselineError before the Evaluator, so nothing is pushed. With `allow_replace_served`
  (`--allow-replace-served`) the candidate is evaluated without a baseline instead, and the
  artifact records `replaces_unevaluated_version`.

`Evaluator` is TFX's Evaluator with an executor that drops such an empty baseline.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components import Evaluator as _Evaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_component, base_driver, base_executor, executor_spec
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import base_driver as portable_base_driver
from tfx.proto.orchestration import driver_output_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import path_utils

from components.pusher import (NOTHING_SERVED, SERVED_FINGERPRINT_PROPERTY,
                               SERVED_VERSION_PROPERTY, copy_tree, served_version)
from serving import contract

# Component keys.
MODEL_KEY, BASELINE_KEY = "model", "baseline"
MODEL_DIR_KEY, ALLOW_REPLACE_KEY = "model_dir", "allow_replace_served"
# Set by the driver (local runs) so that TFX's cache key changes with what is served.
SERVED_VERSION_KEY, SERVED_FINGERPRINT_KEY = "served_version", "served_fingerprint"
# Custom properties of the baseline artifact, besides the pusher's served_version and
# served_fingerprint.
SERVED_PATH_PROPERTY, REPLACES_PROPERTY = "served_path", "replaces_unevaluated_version"
# Signatures the Evaluator calls on every model it evaluates (pipeline/eval_config.py).
_EVALUATED_SIGNATURES = (contract.EXAMPLES_SIGNATURE, contract.EVAL_FEATURES_SIGNATURE)
_PROBE_TEXT = "a probe sentence"


class ServedBaselineError(RuntimeError):
    """The served version cannot be the candidate's baseline; the message says how to go on."""


def _describe(saved_model_dir: str) -> Tuple[List[str], Optional[List[str]]]:
    """(signature keys, class names from calling `serving_default` on one text, or None) of a
    SavedModel, loaded in this process as the Evaluator will load it."""
    import tensorflow_text  # noqa: F401  registers the tokenizer's ops before loading
    loaded = tf.saved_model.load(saved_model_dir)
    keys = sorted(loaded.signatures)
    serving = loaded.signatures.get(contract.SERVING_SIGNATURE)
    try:
        outputs = serving(**{contract.TEXT_INPUT: tf.constant([_PROBE_TEXT])})
        classes = [name.decode("utf-8") for name in outputs[contract.CLASSES][0].numpy()]
    except Exception:  # pylint: disable=broad-except  (any other signature: no classes)
        classes = None
    return keys, classes


def evaluation_problems(served_dir: str, candidate_dir: str) -> List[str]:
    """Why the SavedModel at `served_dir` cannot be evaluated as the candidate at
    `candidate_dir` is ([]: it can): it fails to load, lacks a signature the Evaluator calls,
    or its `serving_default` does not return the candidate's classes."""
    try:
        keys, served_classes = _describe(served_dir)
    except Exception as error:  # pylint: disable=broad-except  (what failed is the message)
        return [f"it could not be loaded: {type(error).__name__}: {error}"]
    problems = []
    missing = [name for name in _EVALUATED_SIGNATURES if name not in keys]
    if missing:
        problems.append(f"it lacks the signature(s) {missing} the Evaluator calls (it has "
                        f"{keys})")
    _, candidate_classes = _describe(candidate_dir)
    if served_classes is None:
        problems.append(f"its {contract.SERVING_SIGNATURE!r} signature does not return "
                        f"{contract.CLASSES!r} for a {contract.TEXT_INPUT!r} input, so its "
                        "classes cannot be compared")
    elif sorted(served_classes) != sorted(candidate_classes or []):
        problems.append(f"its classes {served_classes} are not the candidate's "
                        f"{candidate_classes}")
    return problems


class Driver(base_driver.BaseDriver, portable_base_driver.BaseDriver):
    """Puts the served version and its fingerprint into the exec properties before TFX's
    cache lookup (local runs), so a change of what is served reruns the component."""

    def __init__(self, metadata_handle):
        base_driver.BaseDriver.__init__(self, metadata_handle)
        portable_base_driver.BaseDriver.__init__(self, metadata_handle)

    def run(self, execution_info) -> driver_output_pb2.DriverOutput:
        version, _, fingerprint = served_version(execution_info.exec_properties[MODEL_DIR_KEY])
        output = driver_output_pb2.DriverOutput()
        data_types_utils.set_metadata_value(output.exec_properties[SERVED_VERSION_KEY], version)
        data_types_utils.set_metadata_value(output.exec_properties[SERVED_FINGERPRINT_KEY],
                                            fingerprint)
        return output


class Executor(base_executor.BaseExecutor):
    """Imports the served version as the baseline, or records that there is none."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_dir = exec_properties[MODEL_DIR_KEY]
        baseline = artifact_utils.get_single_instance(output_dict[BASELINE_KEY])
        # Read again rather than trusting the driver's reading: Kubeflow runs no driver.
        version, version_dir, fingerprint = served_version(model_dir)
        baseline.set_int_custom_property(SERVED_VERSION_PROPERTY, version)
        baseline.set_string_custom_property(SERVED_FINGERPRINT_PROPERTY, fingerprint)
        baseline.set_string_custom_property(SERVED_PATH_PROPERTY, version_dir)
        if version == NOTHING_SERVED:
            logging.info("Nothing is served from %s yet: the candidate has no baseline",
                         model_dir)
            return
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        candidate_dir = path_utils.serving_model_path(
            model.uri, path_utils.is_old_model_artifact(model))
        problems = evaluation_problems(version_dir, candidate_dir)
        if problems:
            if not exec_properties.get(ALLOW_REPLACE_KEY):
                raise ServedBaselineError(
                    f"The served version {version} ({version_dir}) cannot be evaluated against "
                    f"the new model: {'; '.join(problems)}. The run stops before the Evaluator, "
                    "so nothing is pushed. To replace that model without a comparison, run "
                    "again with --allow-replace-served (recorded in the run); or push under "
                    "another --model-name.")
            logging.warning("The served version %d cannot be evaluated (%s); "
                            "--allow-replace-served: the candidate is evaluated without a "
                            "baseline", version, "; ".join(problems))
            baseline.set_int_custom_property(REPLACES_PROPERTY, version)
            return
        copy_tree(version_dir, path_utils.serving_model_dir(baseline.uri))
        logging.info("Baseline: served version %d (%s)", version, version_dir)


class ServedBaselineSpec(ComponentSpec):
    """model (the candidate) -> baseline (Model: the served version, or none)."""

    PARAMETERS = {MODEL_DIR_KEY: ExecutionParameter(type=str),
                  ALLOW_REPLACE_KEY: ExecutionParameter(type=int, optional=True),
                  SERVED_VERSION_KEY: ExecutionParameter(type=int, optional=True),
                  SERVED_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True)}
    INPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {BASELINE_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServedBaseline(base_component.BaseComponent):
    """The newest version served from `model_dir` (<serving_root>/<model_name>), as a Model
    for the Evaluator's `baseline_model` and the pusher's re-check."""

    SPEC_CLASS = ServedBaselineSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, model: types.BaseChannel, model_dir: str,
                 allow_replace_served: bool = False):
        super().__init__(spec=ServedBaselineSpec(
            model=model, model_dir=model_dir, allow_replace_served=int(allow_replace_served),
            baseline=types.Channel(type=standard_artifacts.Model)))


def has_served_model(baseline: types.Artifact) -> bool:
    """Whether a ServedBaseline artifact holds a model to compare with."""
    return bool(baseline.get_int_custom_property(SERVED_VERSION_PROPERTY)) and \
        not baseline.get_int_custom_property(REPLACES_PROPERTY)


class EvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor; a ServedBaseline without a model means no baseline (TFMA then
    drops the change thresholds, as on a first run)."""

    def Do(self, input_dict, output_dict, exec_properties):
        key = standard_component_specs.BASELINE_MODEL_KEY
        baselines = input_dict.get(key)
        if baselines and not has_served_model(artifact_utils.get_single_instance(baselines)):
            input_dict = {name: value for name, value in input_dict.items() if name != key}
        return super().Do(input_dict, output_dict, exec_properties)


class Evaluator(_Evaluator):
    """TFX's Evaluator, taking a ServedBaseline's `baseline` as its `baseline_model`."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluatorExecutor)
