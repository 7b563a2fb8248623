"""The serving contract of every exported model, in one dependency-free module.

Shared by the exporter (trainer/export.py), the ServingCheck and the check it runs
(serving/servability.py), the ServingPusher, the local server and the clients:

- signature and tensor names: `serving_default` takes `text` (1-D tf.string, raw texts) and
  returns `probabilities` (float [batch, classes], rows summing to 1), `label` (string [batch],
  the most probable class name) and `classes` (string [batch, classes]);
- the version directory rule: TF Serving loads a child of a model's base path as a version only
  if its name is all digits; the pusher numbers versions 1, 2, 3, ...;
- `signature_problems` and `prediction_problems`, the one validator of a signature and of its
  answers, working on plain descriptions (serving/model_probe.py makes them from a SavedModel).

No imports beyond the standard library: clients, the server and the clean-process probe can all
use it without TensorFlow Extended.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

SERVING_SIGNATURE = "serving_default"  # raw text in
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Examples in (TFMA, BulkInferrer)
EVAL_FEATURES_SIGNATURE = "eval_features"  # label index and slicing features for TFMA
TEXT_INPUT = "text"  # 1-D tf.string: a batch of raw texts
PROBABILITIES = "probabilities"  # float [batch, classes], rows sum to 1
PREDICTED_LABEL = "label"  # string [batch]: the most probable class name
CLASSES = "classes"  # string [batch, classes]: the class names, in probability order
OUTPUTS = (PROBABILITIES, PREDICTED_LABEL, CLASSES)
SERVE_TAG = "serve"  # tf.saved_model.SERVING, the MetaGraphDef TF Serving loads

# The ModelServerConfig the pusher keeps at the serving root (tensorflow_model_server
# --model_config_file).
SERVING_CONFIG_FILE_NAME = "models.config"
_VERSION_DIR_NAME = re.compile(r"[0-9]+")

# The options a model was exported with (precision, XLA, ...), JSON, inside the SavedModel
# directory (TF Serving ignores assets.extra except for its warm-up file).
SERVING_OPTIONS_FILE = os.path.join("assets.extra", "serving_options.json")
# A model exported in a cheaper precision than it was trained in also has this function (not a
# signature: TF Serving does not expose it): serialized tf.Examples -> the trained float32
# weights' probabilities, which the ServingCheck compares the served ones with.
FLOAT32_REFERENCE_FUNCTION = "float32_example_probabilities"
# How closely a reduced-precision variant must answer like float32 to be pushed.
MIN_LABEL_AGREEMENT = 0.995
MAX_PROBABILITY_DIFFERENCE = 0.02

FLOAT_DTYPES = ("DT_FLOAT", "DT_HALF", "DT_BFLOAT16", "DT_DOUBLE")
PROBABILITY_SUM_TOLERANCE = 1e-3


# ----------------------------------------------------------------------- texts

SHOWN_TEXT_CHARS = 200  # of a bad text or JSON value, in an error message
# Texts per model call in batch prediction (`bertpipe predict --data`, RunInference's batches).
BATCH_PREDICTION_BATCH_SIZE = 64


class InvalidTextError(ValueError):
    """A text that is not valid Unicode, so it has no UTF-8 bytes to classify."""


def text_bytes(text: str, index: Optional[int] = None) -> bytes:
    """A text as the UTF-8 bytes the model takes; InvalidTextError naming the bad character.

    A Python str can hold an unpaired UTF-16 surrogate: from a JSON escape such as "\\ud800",
    or, as U+DC80..U+DCFF, from bytes of a command line that are not UTF-8 (surrogateescape).
    The REST server, the gRPC client and `bertpipe predict` all refuse those with this message.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        char = text[error.start]
        shown = json.dumps(text)[:SHOWN_TEXT_CHARS]
        if 0xDC80 <= ord(char) <= 0xDCFF:  # surrogateescape: an undecodable byte
            what = f"the byte 0x{ord(char) - 0xDC00:02x}, which is not UTF-8,"
        else:
            what = f"an unpaired surrogate {char!r}"
        which = "the text" if index is None else f"text {index}"
        raise InvalidTextError(f"{which} {shown} has {what} at character {error.start}; "
                               "a text must be valid Unicode (UTF-8)") from None


def text_predict_request(texts: Sequence[bytes], model_name: str = "",
                         version: Optional[int] = None,
                         signature_name: str = SERVING_SIGNATURE):
    """The Predict request of the raw-text contract: input `text`, a 1-D string tensor of
    `texts`. TensorFlow and tensorflow-serving-api are imported here, not with this module."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    if version is not None:
        request.model_spec.version.value = version
    request.model_spec.signature_name = signature_name
    request.inputs[TEXT_INPUT].CopyFrom(tf.make_tensor_proto(list(texts), dtype=tf.string,
                                                             shape=[len(texts)]))
    return request


# ----------------------------------------------------------------------- version directories


def version_of(name: str) -> Optional[int]:
    """The version a directory name stands for (TF Serving's rule: all digits), else None."""
    name = name.rstrip("/")
    return int(name) if _VERSION_DIR_NAME.fullmatch(name) else None


def version_numbers(model_dir: str, listdir: Callable[[str], Iterable[str]] = os.listdir,
                    isdir: Callable[[str], bool] = os.path.isdir) -> List[int]:
    """The version numbers present in a model directory, ascending; [] if there is none.

    `listdir`/`isdir` default to the local disk; pass tf.io.gfile's for an object store."""
    if not isdir(model_dir):
        return []
    return sorted(version for version, name in
                  ((version_of(name), name.rstrip("/")) for name in listdir(model_dir))
                  if version is not None and isdir(os.path.join(model_dir, name)))


def model_names(serving_root: str, listdir: Callable[[str], Iterable[str]] = os.listdir,
                isdir: Callable[[str], bool] = os.path.isdir) -> List[str]:
    """The directories under a serving root that hold at least one model version."""
    return sorted(name.rstrip("/") for name in listdir(serving_root)
                  if not name.startswith(".")
                  and version_numbers(os.path.join(serving_root, name.rstrip("/")), listdir,
                                      isdir))


# ------------------------------------------------------------------------- signature checks
# A tensor is described as {"dtype": "DT_STRING", "shape": [-1] or None (unknown rank),
# "dense": bool}; a signature as {"inputs": {name: tensor}, "outputs": {name: tensor}}.


def _tensor_problems(tensor: Dict[str, Any], where: str, dtypes: Sequence[str],
                     rank: int) -> List[str]:
    problems = []
    if not tensor["dense"]:
        problems.append(f"{where} is a composite (sparse/ragged) tensor; it must be dense")
    if tensor["dtype"] not in dtypes:
        problems.append(f"{where} is {tensor['dtype']}, expected {' or '.join(dtypes)}")
    if tensor["shape"] is not None and len(tensor["shape"]) != rank:
        problems.append(f"{where} has shape {tensor['shape']}, expected rank {rank}")
    return problems


def signature_problems(signature: Optional[Dict[str, Any]],
                       signature_keys: Sequence[str] = ()) -> List[str]:
    """What keeps a `serving_default` signature (None: absent) from meeting the contract."""
    if signature is None:
        return [f"the SavedModel has no {SERVING_SIGNATURE!r} signature (it has "
                f"{sorted(signature_keys)}); TF Serving's default requests use it"]
    inputs, outputs = signature["inputs"], signature["outputs"]
    problems = []
    if list(inputs) != [TEXT_INPUT]:
        problems.append(f"signature {SERVING_SIGNATURE!r} must take exactly one input, "
                        f"{TEXT_INPUT!r} (a 1-D tf.string tensor of raw texts); it takes "
                        f"{sorted(inputs)}")
    else:
        problems += _tensor_problems(inputs[TEXT_INPUT], f"input {TEXT_INPUT!r} of signature "
                                     f"{SERVING_SIGNATURE!r}", ["DT_STRING"], 1)
    expected = {PROBABILITIES: (FLOAT_DTYPES, 2), PREDICTED_LABEL: (["DT_STRING"], 1),
                CLASSES: (["DT_STRING"], 2)}
    missing = sorted(set(expected) - set(outputs))
    if missing:
        problems.append(f"signature {SERVING_SIGNATURE!r} lacks output(s) {missing}; it returns "
                        f"{sorted(outputs)}")
    for name, (dtypes, rank) in expected.items():
        if name in outputs:
            problems += _tensor_problems(outputs[name], f"output {name!r} of signature "
                                         f"{SERVING_SIGNATURE!r}", dtypes, rank)
    return problems


def prediction_problems(texts: Sequence[str], outputs: Dict[str, Dict[str, Any]]) -> List[str]:
    """What is wrong with one call's outputs (each {"dtype", "shape", "values"} as lists):
    shapes, probabilities, and the label agreeing with the most probable class."""
    where = f"calling {SERVING_SIGNATURE!r} on {list(texts)!r}"
    probabilities = outputs.get(PROBABILITIES)
    labels, classes = outputs.get(PREDICTED_LABEL), outputs.get(CLASSES)
    if not (probabilities and labels and classes) or not probabilities["dtype"].startswith(
            ("float", "bfloat", "int", "uint")):
        return []  # signature_problems names the missing, composite or non-numeric outputs
    batch = len(texts)
    if len(probabilities["shape"]) != 2 or probabilities["shape"][0] != batch:
        return [f"{where}: {PROBABILITIES!r} has shape {probabilities['shape']}, "
                f"expected [{batch}, num_labels]"]
    num_labels = probabilities["shape"][1]
    problems = []
    if labels["shape"] != [batch]:
        problems.append(f"{where}: {PREDICTED_LABEL!r} has shape {labels['shape']}, "
                        f"expected [{batch}]")
    if classes["shape"] != [batch, num_labels]:
        problems.append(f"{where}: {CLASSES!r} has shape {classes['shape']}, expected "
                        f"[{batch}, {num_labels}] (one class name per probability)")
    for text, row in zip(texts, probabilities["values"]):
        total = sum(row)
        if not all(-PROBABILITY_SUM_TOLERANCE <= p <= 1 + PROBABILITY_SUM_TOLERANCE
                   for p in row) or not abs(total - 1.0) <= PROBABILITY_SUM_TOLERANCE:
            problems.append(f"{where}: {PROBABILITIES!r} for {text!r} is {row} (sum "
                            f"{total:.6g}); expected probabilities in [0, 1] summing to 1 "
                            f"within {PROBABILITY_SUM_TOLERANCE}")
    if not problems:
        for text, row, label, row_classes in zip(texts, probabilities["values"],
                                                 labels["values"], classes["values"]):
            best = row_classes[row.index(max(row))]
            if label != best:
                problems.append(f"{where}: {PREDICTED_LABEL!r} for {text!r} is {label!r}, but "
                                f"the most probable class in {CLASSES!r} is {best!r}")
    return problems
