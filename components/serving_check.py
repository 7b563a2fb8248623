"""ServingCheck: blesses (InfraBlessing) only a model that stock TensorFlow Serving can serve.

The check itself is serving/servability.py (ops against TF Serving's allow-list, the signature
contract, sample calls, in a clean process); this module makes it a pipeline component.
A model that passes gets an InfraBlessing marked as TFX's InfraValidator marks it (custom
property `blessed` = 1 and an INFRA_BLESSED file), which the standard Pusher takes as
`infra_blessing`, plus the check's JSON report in the blessing's directory. A model that fails
gets the report and `blessed` = 0, and the run stops with ServingCheckError naming the ops or
the signature problem, so the Pusher never sees a blessing.

A model exported in a cheaper precision than float32 (`--serving-precision bfloat16`) is also
checked against its own float32 weights on the first examples of the `examples` input's eval
split (serving/servability.py: check_precision_agreement); its agreement is in the report.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from serving.servability import (DEFAULT_EXAMPLE_TEXTS, ServingCheckError,
                                 check_precision_agreement, check_saved_model)
from serving.tf_serving_ops import TF_SERVING_RELEASE

# Component keys, and the InfraBlessing markers as tfx's InfraValidator executor writes them.
MODEL_KEY, BLESSING_KEY, EXAMPLE_TEXTS_KEY = "model", "blessing", "example_texts"
EXAMPLES_KEY, AGREEMENT_SPLIT_KEY, AGREEMENT_EXAMPLES_KEY = (
    "examples", "agreement_split", "agreement_examples")
DEFAULT_AGREEMENT_SPLIT, DEFAULT_AGREEMENT_EXAMPLES = "eval", 1000
BLESSED_PROPERTY = "blessed"
BLESSED_FILE_NAME, NOT_BLESSED_FILE_NAME = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
TF_SERVING_RELEASE_PROPERTY = "tf_serving_release"
REPORT_FILE_NAME = "serving_check.json"


def _write_report(blessing: types.Artifact, report: Dict[str, Any]) -> None:
    io_utils.write_string_file(os.path.join(blessing.uri, REPORT_FILE_NAME),
                               json.dumps(report, indent=2, sort_keys=True))


def _mark(blessing: types.Artifact, blessed: bool) -> None:
    file_name = BLESSED_FILE_NAME if blessed else NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, file_name), "")
    blessing.set_int_custom_property(BLESSED_PROPERTY, int(blessed))
    blessing.set_string_custom_property(TF_SERVING_RELEASE_PROPERTY, TF_SERVING_RELEASE)


def _example_texts(exec_properties: Dict[str, Any]) -> List[str]:
    texts = exec_properties.get(EXAMPLE_TEXTS_KEY)
    if texts is None:
        return list(DEFAULT_EXAMPLE_TEXTS)
    return json.loads(texts) if isinstance(texts, str) else list(texts)


def _agreement_files(input_dict: Dict[str, List[types.Artifact]],
                     exec_properties: Dict[str, Any]) -> List[str]:
    """The record files of the examples' agreement split ([] without examples)."""
    import tensorflow as tf
    if not input_dict.get(EXAMPLES_KEY):
        return []
    split = exec_properties.get(AGREEMENT_SPLIT_KEY) or DEFAULT_AGREEMENT_SPLIT
    split_uri = artifact_utils.get_split_uri(input_dict[EXAMPLES_KEY], split)
    return sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))


class Executor(base_executor.BaseExecutor):
    """Blesses the model (InfraBlessing) or raises ServingCheckError."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        saved_model_dir = path_utils.serving_model_path(
            model.uri, path_utils.is_old_model_artifact(model))
        try:
            report = check_saved_model(saved_model_dir, _example_texts(exec_properties))
            try:
                report["precision_agreement"] = check_precision_agreement(
                    saved_model_dir, _agreement_files(input_dict, exec_properties),
                    int(exec_properties.get(AGREEMENT_EXAMPLES_KEY)
                        or DEFAULT_AGREEMENT_EXAMPLES))
            except ServingCheckError as error:  # keep the servability report beside it
                raise ServingCheckError(str(error), error.problems,
                                        dict(report, precision_agreement=error.report)) from error
        except ServingCheckError as error:
            _write_report(blessing, dict(error.report, problems=error.problems))
            _mark(blessing, blessed=False)
            raise ServingCheckError(f"{error}\nThe run stops here: the model is not infra-blessed "
                                    "and is not pushed.", error.problems, error.report) from error
        _write_report(blessing, report)
        _mark(blessing, blessed=True)


class ServingCheckSpec(ComponentSpec):
    """model (Trainer's Model) -> blessing (InfraBlessing); example_texts to call it with;
    examples (optional) whose agreement_split a reduced-precision model is compared on."""

    PARAMETERS = {EXAMPLE_TEXTS_KEY: ExecutionParameter(type=List[str], optional=True),
                  AGREEMENT_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
                  AGREEMENT_EXAMPLES_KEY: ExecutionParameter(type=int, optional=True)}
    INPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
              EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True)}
    OUTPUTS = {BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing)}


class ServingCheck(base_component.BaseComponent):
    """Infra-blesses a model that stock TF Serving TF_SERVING_RELEASE can load and call.

    Wire it before the Pusher: `Pusher(model=..., infra_blessing=check.outputs["blessing"])`.
    """

    SPEC_CLASS = ServingCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel,
                 example_texts: Optional[Sequence[str]] = None,
                 examples: Optional[types.BaseChannel] = None,
                 agreement_split: str = DEFAULT_AGREEMENT_SPLIT,
                 agreement_examples: int = DEFAULT_AGREEMENT_EXAMPLES):
        super().__init__(spec=ServingCheckSpec(
            model=model, examples=examples, agreement_split=agreement_split,
            agreement_examples=agreement_examples,
            example_texts=list(example_texts) if example_texts is not None else None,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing)))
