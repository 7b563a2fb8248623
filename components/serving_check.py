"""ServingCheck: proves, before the Pusher, that stock TensorFlow Serving can serve the model.

Its one job: bless (InfraBlessing) only a SavedModel that the targeted stock TensorFlow Serving
release can load and call. Two checks, each in a fresh Python subprocess so nothing the pipeline
process has imported (tfx, tensorflow_transform, transformers, tensorflow_text) can hide a gap:

1. Ops. Every op type in saved_model.pb (graph nodes and every library function body) is looked
   up in a process that has imported tensorflow only. The ops core TensorFlow does not register
   must all be in `TF_SERVING_CUSTOM_OPS`, the custom ops that TF Serving `TF_SERVING_RELEASE`
   links into its model server; otherwise the server would fail with "Op type not registered".
2. Signature. In a process that imports tensorflow and tensorflow_text only, the SavedModel is
   loaded the way the model server loads it (TF1 loader, tag "serve", SignatureDef tensors) and
   `serving_default` is called on example texts. The contract our Trainer exports: one input,
   `text`, a 1-D tf.string tensor; outputs `probabilities` (float [batch, num_labels], rows
   summing to 1), `label` (string [batch], the class with the highest probability) and
   `classes` (string [batch, num_labels]).

A model that fails either check raises `ServingCheckError`, which names the ops or the signature
problem, so the run fails and the Pusher never sees a blessing. A model that passes gets an
InfraBlessing marked as InfraValidator marks it (custom property `blessed` = 1 and an
INFRA_BLESSED file), which the standard Pusher takes as `infra_blessing`, plus a JSON report
(ops, non-core ops, sample predictions) in the blessing's directory.

`check_saved_model(saved_model_dir, texts)` runs both checks without TFX (for a CLI).
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import AbstractSet, Any, Dict, List, Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from serving.contract import CLASSES as CLASSES_OUTPUT
from serving.contract import PREDICTED_LABEL as LABEL_OUTPUT
from serving.contract import PROBABILITIES as PROBABILITIES_OUTPUT
from serving.contract import SERVING_SIGNATURE as SIGNATURE_KEY
from serving.contract import TEXT_INPUT

TF_SERVING_RELEASE = "2.16.1"

# The custom (non-core) ops that stock TensorFlow Serving 2.16.1 links into tensorflow_model_server.
#
# Where this comes from (GitHub tensorflow/serving and tensorflow/text, read through the code
# and issue search; derivation steps marked "inferred" were not read from the 2.16.1 tag itself):
# * tensorflow/serving, tensorflow_serving/model_servers/BUILD: SUPPORTED_TENSORFLOW_OPS, linked
#   into :server_lib, is "@org_tensorflow_text//tensorflow_text:ops_lib" plus TensorFlow
#   Decision Forests' inference ops (not listed here: this project never uses them, so a model
#   with them is rejected, which errs on the safe side).
# * tensorflow/serving, tensorflow_serving/workspace.bzl: org_tensorflow_text is pinned at
#   "text-2.12.1" (with third_party/tf_text/tftext.patch, which patches
#   fast_wordpiece_tokenizer.cc so that it compiles into the server). The pin moved to v2.12.0-rc0
#   in March 2023 (tensorflow/serving PR #2119) and was still v2.12.1 in February 2025
#   (tensorflow/serving PR #4057, "The embedded TensorFlow Text version is 2.12.1"), so the
#   2.16.1 release (2024) links TF Text 2.12.1: inferred from those dates.
# * The op names: the ops registered by the tensorflow-text 2.12.1 wheel from PyPI
#   (tensorflow_text/python/ops/_*.so), checked against the names the pinned tensorflow-text
#   2.16.1 registers. Inferred: that TF Text 2.12.1's ops_lib target links every one of these op
#   libraries. The ops_lib read in tensorflow/text tensorflow_text/BUILD (a later commit) links
#   all of them, and the Fast* ones were added before 2.12 (next point).
# * Fast* ops (FastWordpieceTokenizeWithOffsets, FastBertNormalize, FastSentencepiece*) ARE in:
#   tensorflow/serving issue #2064 ("Op type not registered 'FastBertNormalize'") was reported
#   against TF Serving 2.10 and closed once nightly (TF Text 2.11+) loaded such models; the
#   missing-op reports of that era do not apply to 2.16.1.
# * NOT in (present in the pinned tensorflow-text 2.16.1, absent from 2.12.1):
#   TFText>RoundRobinTrim and TFText>RoundRobinGenerateMasks (RoundRobinTrimmer; reported missing
#   in tensorflow/serving issue #2267 and PR #4057: "Op type not registered
#   'TFText>RoundRobinTrim'") and TFText>Utf8Binarize.
TF_SERVING_CUSTOM_OPS = frozenset({
    "CaseFoldUTF8",
    "ConstrainedSequence",
    "FastBertNormalize",
    "FastWordpieceTokenizeWithOffsets",
    "FindSourceOffsets",
    "MaxSpanningTree",
    "NormalizeUTF8",
    "NormalizeUTF8WithOffsetsMap",
    "PhraseTokenize",
    "RegexSplitWithOffsets",
    "SentenceFragments",
    "SentenceFragmentsV2",
    "SentencepieceDetokenizeOp",
    "SentencepieceIdToStringOp",
    "SentencepieceOp",
    "SentencepieceStringToIdOp",
    "SentencepieceTokenizeOp",
    "SentencepieceTokenizeWithOffsetsOp",
    "SentencepieceVocabSizeOp",
    "SplitMergeTokenizeWithOffsets",
    "TFText>BoiseTagsToOffsets",
    "TFText>ByteSplitByOffsets",
    "TFText>ByteSplitWithOffsets",
    "TFText>FastSentencepieceDetokenize",
    "TFText>FastSentencepieceTokenize",
    "TFText>FastWordpieceDetokenize",
    "TFText>NgramsStringJoin",
    "TFText>OffsetsToBoiseTags",
    "TFText>PhraseDetokenize",
    "TFText>WhitespaceTokenizeWithOffsetsV2",
    "TokenizerFromLogits",
    "UnicodeScriptTokenizeWithOffsets",
    "WhitespaceTokenizeWithOffsets",
    "WordpieceTokenizeWithOffsets",
})
ALLOW_LIST_SOURCE = (
    f"TF Serving {TF_SERVING_RELEASE} links tensorflow_text:ops_lib of TF Text 2.12.1 "
    "(tensorflow/serving tensorflow_serving/model_servers/BUILD and workspace.bzl); the op "
    "names are those TF Text 2.12.1 registers; see TF_SERVING_CUSTOM_OPS in "
    "components/serving_check.py")

FLOAT_DTYPES = ("DT_FLOAT", "DT_HALF", "DT_BFLOAT16", "DT_DOUBLE")
PROBABILITY_SUM_TOLERANCE = 1e-3
DEFAULT_EXAMPLE_TEXTS = ("a great film", "terrible service", "")
SUBPROCESS_TIMEOUT_SECONDS = 900

# Component keys, and the InfraBlessing markers as tfx's InfraValidator executor writes them.
MODEL_KEY, BLESSING_KEY, EXAMPLE_TEXTS_KEY = "model", "blessing", "example_texts"
BLESSED_PROPERTY = "blessed"
BLESSED_FILE_NAME, NOT_BLESSED_FILE_NAME = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
TF_SERVING_RELEASE_PROPERTY = "tf_serving_release"
REPORT_FILE_NAME = "serving_check.json"


class ServingCheckError(ValueError):
    """The model cannot be served by stock TF Serving; the message lists every problem."""

    def __init__(self, message: str, problems: Sequence[str] = (),
                 report: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.problems = list(problems)
        self.report = report or {}


# Runs as `python -c` in a fresh interpreter. It imports tensorflow (plus tensorflow_text in
# "call" mode) and nothing of this project, TFX, TF Transform or transformers.
_SUBPROCESS_SOURCE = r'''
import json
import sys

MODE, SAVED_MODEL_DIR, REQUEST_PATH, RESULT_PATH = sys.argv[1:5]
NOT_IMPORTED = ["tfx", "tensorflow_transform", "transformers"]


def list_op_types(saved_model_dir):
    """Op types of every graph node and every library function body (the library holds the
    bodies of all functions, nested calls included). A node whose op is a library function's
    name calls that function and is not an op."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2
    saved_model = saved_model_pb2.SavedModel()
    pb_path = tf.io.gfile.join(saved_model_dir, "saved_model.pb")
    if tf.io.gfile.exists(pb_path):
        with tf.io.gfile.GFile(pb_path, "rb") as handle:
            saved_model.ParseFromString(handle.read())
    else:
        with tf.io.gfile.GFile(tf.io.gfile.join(saved_model_dir, "saved_model.pbtxt")) as handle:
            text_format.Parse(handle.read(), saved_model)
    op_types, function_names = set(), set()
    for meta_graph in saved_model.meta_graphs:
        op_types.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            function_names.add(function.signature.name)
            op_types.update(node.op for node in function.node_def)
    return sorted(op_types - function_names)


def list_ops():
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry
    ops = list_op_types(SAVED_MODEL_DIR)
    return {"ops": ops, "non_core_ops": [op for op in ops if op_def_registry.get(op) is None],
            "tensorflow_version": tf.__version__}


def describe_tensors(tensor_infos):
    from tensorflow.core.framework import types_pb2
    described = {}
    for name, info in sorted(tensor_infos.items()):
        shape = (None if info.tensor_shape.unknown_rank
                 else [dim.size for dim in info.tensor_shape.dim])
        described[name] = {"dtype": types_pb2.DataType.Name(info.dtype), "shape": shape,
                           "dense": info.WhichOneof("encoding") == "name"}
    return described


def as_json_value(array):
    values = array.tolist()
    if array.dtype == object:
        def decode(value):
            if isinstance(value, list):
                return [decode(item) for item in value]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        values = decode(values)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "values": values}


def call_signature():
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the TF Text ops, as TF Serving links them in
    with open(REQUEST_PATH) as handle:
        batches = json.load(handle)["batches"]
    result = {"tensorflow_version": tf.__version__, "tensorflow_text_version":
              tensorflow_text.__version__}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], SAVED_MODEL_DIR)
        except Exception as error:  # reported to the parent, which names the problem
            result["load_error"] = f"{type(error).__name__}: {error}"
            return result
        result["signature_keys"] = sorted(meta_graph.signature_def)
        signature = meta_graph.signature_def.get("serving_default")
        if signature is None:
            return result
        result["method_name"] = signature.method_name
        result["inputs"] = describe_tensors(signature.inputs)
        result["outputs"] = describe_tensors(signature.outputs)
        text = signature.inputs.get("text")
        if list(signature.inputs) != ["text"] or text.dtype != tf.string.as_datatype_enum:
            return result
        fetches = {name: info.name for name, info in signature.outputs.items()
                   if info.WhichOneof("encoding") == "name"}
        result["calls"] = []
        for texts in batches:
            call = {"texts": texts}
            try:
                feed = np.array([value.encode("utf-8") for value in texts], dtype=object)
                outputs = session.run(fetches, feed_dict={text.name: feed})
                call["outputs"] = {name: as_json_value(np.asarray(value))
                                   for name, value in outputs.items()}
            except Exception as error:
                call["error"] = f"{type(error).__name__}: {error}"
            result["calls"].append(call)
    return result


result = list_ops() if MODE == "list_ops" else call_signature()
not_imported = NOT_IMPORTED + (["tensorflow_text"] if MODE == "list_ops" else [])
result["unexpected_imports"] = [name for name in not_imported if name in sys.modules]
with open(RESULT_PATH, "w") as handle:
    json.dump(result, handle)
'''


def _run_in_clean_subprocess(mode: str, saved_model_dir: str,
                             request: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Runs _SUBPROCESS_SOURCE in `mode` ("list_ops" or "call_signature"); its JSON result."""
    with tempfile.TemporaryDirectory(prefix="serving_check_") as work_dir:
        request_path = os.path.join(work_dir, "request.json")
        result_path = os.path.join(work_dir, "result.json")
        with open(request_path, "w") as handle:
            json.dump(request or {}, handle)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # cwd is the empty work directory: no module of the caller's directory can be imported.
        process = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SOURCE, mode, saved_model_dir, request_path,
             result_path], cwd=work_dir, env=env, capture_output=True, text=True,
            timeout=SUBPROCESS_TIMEOUT_SECONDS)
        if process.returncode != 0 or not os.path.exists(result_path):
            stderr_tail = "\n".join(process.stderr.strip().splitlines()[-15:])
            raise ServingCheckError(
                f"The serving check subprocess ({mode}) failed with exit status "
                f"{process.returncode} on {saved_model_dir}:\n{stderr_tail}",
                problems=[f"{mode} subprocess failed: {stderr_tail}"])
        with open(result_path) as handle:
            result = json.load(handle)
    if result.get("unexpected_imports"):
        raise ServingCheckError(
            f"The serving check subprocess ({mode}) was not clean: it imported "
            f"{result['unexpected_imports']} (a sitecustomize or .pth file?), so it cannot prove "
            "what a stock model server registers.")
    return result


def unsupported_op_problems(non_core_ops: Sequence[str],
                            allowed_custom_ops: AbstractSet[str] = TF_SERVING_CUSTOM_OPS
                            ) -> List[str]:
    """One problem naming the non-core ops the model server does not link in; [] if none."""
    unsupported = sorted(set(non_core_ops) - set(allowed_custom_ops))
    if not unsupported:
        return []
    names = ", ".join(repr(op) for op in unsupported)
    return [f"the model uses op(s) {names}, which core TensorFlow does not register and stock "
            f"TensorFlow Serving {TF_SERVING_RELEASE} does not link in: the model server would "
            f"fail to load it with \"Op type not registered\" (allow-list: {ALLOW_LIST_SOURCE})"]


def _tensor_problems(described: Dict[str, Dict[str, Any]], name: str, dtypes: Sequence[str],
                     rank: int, role: str) -> List[str]:
    tensor = described[name]
    where = f"{role} {name!r} of signature {SIGNATURE_KEY!r}"
    problems = []
    if not tensor["dense"]:
        problems.append(f"{where} is a composite (sparse/ragged) tensor; it must be dense")
    if tensor["dtype"] not in dtypes:
        problems.append(f"{where} is {tensor['dtype']}, expected {' or '.join(dtypes)}")
    if tensor["shape"] is not None and len(tensor["shape"]) != rank:
        problems.append(f"{where} has shape {tensor['shape']}, expected rank {rank}")
    return problems


def signature_problems(call_result: Dict[str, Any]) -> List[str]:
    """The problems with the signature the subprocess found: missing, wrong inputs/outputs."""
    if "load_error" in call_result:
        return [f"loading the SavedModel (tag 'serve') failed: {call_result['load_error']}"]
    if "inputs" not in call_result:
        return [f"the SavedModel has no {SIGNATURE_KEY!r} signature (it has "
                f"{call_result.get('signature_keys')}); TF Serving's default requests use it"]
    inputs, outputs = call_result["inputs"], call_result["outputs"]
    problems = []
    if list(inputs) != [TEXT_INPUT]:
        problems.append(f"signature {SIGNATURE_KEY!r} must take exactly one input, "
                        f"{TEXT_INPUT!r} (a 1-D tf.string tensor of raw texts); it takes "
                        f"{sorted(inputs)}")
    else:
        problems += _tensor_problems(inputs, TEXT_INPUT, ["DT_STRING"], 1, "input")
    expected_outputs = {PROBABILITIES_OUTPUT: (FLOAT_DTYPES, 2), LABEL_OUTPUT: (["DT_STRING"], 1),
                        CLASSES_OUTPUT: (["DT_STRING"], 2)}
    missing = sorted(set(expected_outputs) - set(outputs))
    if missing:
        problems.append(f"signature {SIGNATURE_KEY!r} lacks output(s) {missing}; it returns "
                        f"{sorted(outputs)}")
    for name, (dtypes, rank) in expected_outputs.items():
        if name in outputs:
            problems += _tensor_problems(outputs, name, dtypes, rank, "output")
    return problems


def prediction_problems(call: Dict[str, Any]) -> List[str]:
    """The problems with one call's outputs: shapes, probabilities, label/classes agreement."""
    texts = call["texts"]
    where = f"calling {SIGNATURE_KEY!r} on {texts!r}"
    if "error" in call:
        return [f"{where} failed: {call['error']}"]
    outputs = call["outputs"]
    probabilities = outputs.get(PROBABILITIES_OUTPUT)
    labels, classes = outputs.get(LABEL_OUTPUT), outputs.get(CLASSES_OUTPUT)
    if not (probabilities and labels and classes) or not probabilities["dtype"].startswith(
            ("float", "bfloat", "int", "uint")):
        return []  # signature_problems names the missing, composite or non-numeric outputs
    batch = len(texts)
    problems = []
    if len(probabilities["shape"]) != 2 or probabilities["shape"][0] != batch:
        return [f"{where}: {PROBABILITIES_OUTPUT!r} has shape {probabilities['shape']}, "
                f"expected [{batch}, num_labels]"]
    num_labels = probabilities["shape"][1]
    if labels["shape"] != [batch]:
        problems.append(f"{where}: {LABEL_OUTPUT!r} has shape {labels['shape']}, "
                        f"expected [{batch}]")
    if classes["shape"] != [batch, num_labels]:
        problems.append(f"{where}: {CLASSES_OUTPUT!r} has shape {classes['shape']}, expected "
                        f"[{batch}, {num_labels}] (one class name per probability)")
    for row, (text, row_probabilities) in enumerate(zip(texts, probabilities["values"])):
        total = sum(row_probabilities)
        if not all(-PROBABILITY_SUM_TOLERANCE <= p <= 1 + PROBABILITY_SUM_TOLERANCE
                   for p in row_probabilities) or not (
                       abs(total - 1.0) <= PROBABILITY_SUM_TOLERANCE):
            problems.append(f"{where}: {PROBABILITIES_OUTPUT!r} for {text!r} is "
                            f"{row_probabilities} (sum {total:.6g}); expected probabilities "
                            f"in [0, 1] summing to 1 within {PROBABILITY_SUM_TOLERANCE}")
    if not problems:
        for text, row_probabilities, label, row_classes in zip(
                texts, probabilities["values"], labels["values"], classes["values"]):
            best = row_classes[row_probabilities.index(max(row_probabilities))]
            if label != best:
                problems.append(f"{where}: {LABEL_OUTPUT!r} for {text!r} is {label!r}, but the "
                                f"most probable class in {CLASSES_OUTPUT!r} is {best!r}")
    return problems


def _sample_predictions(call: Dict[str, Any]) -> List[Dict[str, Any]]:
    outputs = call["outputs"]
    return [{"text": text, LABEL_OUTPUT: label, CLASSES_OUTPUT: row_classes,
             PROBABILITIES_OUTPUT: row_probabilities}
            for text, label, row_classes, row_probabilities in zip(
                call["texts"], outputs[LABEL_OUTPUT]["values"], outputs[CLASSES_OUTPUT]["values"],
                outputs[PROBABILITIES_OUTPUT]["values"])]


def check_saved_model(saved_model_dir: str, texts: Sequence[str] = DEFAULT_EXAMPLE_TEXTS,
                      allowed_custom_ops: AbstractSet[str] = TF_SERVING_CUSTOM_OPS
                      ) -> Dict[str, Any]:
    """Checks that stock TF Serving can load and call the SavedModel; returns the report.

    Raises ServingCheckError naming every problem (unsupported ops, signature, predictions);
    the report so far is on the error's `report`.
    """
    texts = list(texts)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise ValueError(f"texts must be a non-empty list of strings, got {texts!r}")
    if not any(fileio.exists(os.path.join(saved_model_dir, name))
               for name in ("saved_model.pb", "saved_model.pbtxt")):
        problem = f"there is no SavedModel (saved_model.pb) in {saved_model_dir}"
        raise ServingCheckError(f"The serving check found nothing to check: {problem}; a Model "
                                "artifact keeps its serving export in <uri>/Format-Serving.",
                                problems=[problem])
    ops = _run_in_clean_subprocess("list_ops", saved_model_dir)
    call_result = _run_in_clean_subprocess("call_signature", saved_model_dir,
                                           {"batches": [texts, texts[:1]]})
    problems = unsupported_op_problems(ops["non_core_ops"], allowed_custom_ops)
    problems += signature_problems(call_result)
    calls = call_result.get("calls", [])
    for call in calls:  # all texts in one batch, then a batch of one: report the first failure
        call_problems = prediction_problems(call)
        if call_problems:
            problems += call_problems
            break
    report = {
        "saved_model_dir": saved_model_dir,
        "tf_serving_release": TF_SERVING_RELEASE,
        "allow_list_source": ALLOW_LIST_SOURCE,
        "tensorflow_version": ops["tensorflow_version"],
        "tensorflow_text_version": call_result.get("tensorflow_text_version"),
        "ops": ops["ops"],
        "non_core_ops": ops["non_core_ops"],
        "unsupported_ops": sorted(set(ops["non_core_ops"]) - set(allowed_custom_ops)),
        "signature": {key: call_result[key] for key in ("method_name", "inputs", "outputs")
                      if key in call_result},
        "sample_predictions": (_sample_predictions(calls[0])
                               if calls and not problems else []),
        "problems": problems,
    }
    if problems:
        raise ServingCheckError(
            f"The model at {saved_model_dir} fails the serving check (stock TensorFlow Serving "
            f"{TF_SERVING_RELEASE}, signature {SIGNATURE_KEY!r}):\n"
            + "\n".join(f"  - {problem}" for problem in problems),
            problems=problems, report=report)
    return report


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
        except ServingCheckError as error:
            _write_report(blessing, dict(error.report, problems=error.problems))
            _mark(blessing, blessed=False)
            raise ServingCheckError(f"{error}\nThe run stops here: the model is not infra-blessed "
                                    "and is not pushed.", error.problems, error.report) from error
        _write_report(blessing, report)
        _mark(blessing, blessed=True)


class ServingCheckSpec(ComponentSpec):
    """model (Trainer's Model) -> blessing (InfraBlessing); example_texts to call it with."""

    PARAMETERS = {EXAMPLE_TEXTS_KEY: ExecutionParameter(type=List[str], optional=True)}
    INPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing)}


class ServingCheck(base_component.BaseComponent):
    """Infra-blesses a model that stock TF Serving TF_SERVING_RELEASE can load and call.

    Wire it before the Pusher: `Pusher(model=..., infra_blessing=check.outputs["blessing"])`.
    """

    SPEC_CLASS = ServingCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel,
                 example_texts: Optional[Sequence[str]] = None):
        super().__init__(spec=ServingCheckSpec(
            model=model,
            example_texts=list(example_texts) if example_texts is not None else None,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing)))
