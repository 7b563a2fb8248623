"""Looks at a SavedModel the way stock TensorFlow Serving would, in a process of its own.

Run as `python -m serving.model_probe MODE SAVED_MODEL_DIR REQUEST_JSON RESULT_JSON` by the
serving check (serving/servability.py), in a fresh interpreter, so that nothing the pipeline has
imported (TFX, TF Transform, transformers, tensorflow_text) can register an op the model server
lacks or hide a loading problem:

- `check`: first, with TensorFlow alone imported, lists every op type of the SavedModel (graph
  nodes and every library function body) and those core TensorFlow does not register; then
  imports tensorflow_text (TF Serving links TF Text's ops), loads the model as the model server
  does (TF1 loader, tag "serve", SignatureDef tensors), replays its warm-up requests as the
  model server does before a version takes traffic (serving/warmup.py), and calls
  `serving_default` on the request's batches of texts. One process for both: TensorFlow's
  import is most of a probe's time, and the op list is taken before anything but TensorFlow
  is imported;
- `compare_precision`: imports TensorFlow and tensorflow_text only, loads the model (TF2
  loader) and runs the request's serialized tf.Examples through `serving_examples` (the served
  precision) and through the model's float32 reference function (serving/contract.py), returning
  both probabilities.

The result file also names any of those packages that got imported anyway (a sitecustomize or
.pth file would), because then the probe proves nothing. `describe_signature` is also used by
the local server to check a version it loads (serving/servable.py).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List

from serving.contract import (EXAMPLES_SIGNATURE, FLOAT32_REFERENCE_FUNCTION, PROBABILITIES,
                              SERVE_TAG, SERVING_SIGNATURE, TEXT_INPUT)
from serving.warmup import WARMUP_FILE, WarmupFileError, read_warmup_requests

# Modules that must not be in a probe process (tensorflow_text is allowed when calling).
NOT_IMPORTED = ("tfx", "tensorflow_transform", "transformers")


def list_op_types(saved_model_dir: str) -> List[str]:
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


def list_ops(saved_model_dir: str) -> Dict[str, Any]:
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry
    ops = list_op_types(saved_model_dir)
    return {"ops": ops, "non_core_ops": [op for op in ops if op_def_registry.get(op) is None],
            "tensorflow_version": tf.__version__}


def describe_tensors(tensor_infos) -> Dict[str, Dict[str, Any]]:
    """TensorInfos as serving/contract.py describes tensors: dtype name, shape, dense."""
    from tensorflow.core.framework import types_pb2
    described = {}
    for name, info in sorted(tensor_infos.items()):
        shape = (None if info.tensor_shape.unknown_rank
                 else [dim.size for dim in info.tensor_shape.dim])
        described[name] = {"dtype": types_pb2.DataType.Name(info.dtype), "shape": shape,
                           "dense": info.WhichOneof("encoding") == "name"}
    return described


def describe_signature(signature_def) -> Dict[str, Any]:
    return {"method_name": signature_def.method_name,
            "inputs": describe_tensors(signature_def.inputs),
            "outputs": describe_tensors(signature_def.outputs)}


def _as_json_value(array) -> Dict[str, Any]:
    values = array.tolist()
    if array.dtype == object:
        def decode(value):
            if isinstance(value, list):
                return [decode(item) for item in value]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        values = decode(values)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "values": values}


def call_signature(saved_model_dir: str, batches: List[List[str]]) -> Dict[str, Any]:
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the TF Text ops, as TF Serving links them in
    result: Dict[str, Any] = {"tensorflow_version": tf.__version__,
                              "tensorflow_text_version": tensorflow_text.__version__}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = tf.compat.v1.saved_model.load(session, [SERVE_TAG], saved_model_dir)
        except Exception as error:  # reported to the parent, which names the problem
            result["load_error"] = f"{type(error).__name__}: {error}"
            return result
        result["signature_keys"] = sorted(meta_graph.signature_def)
        signature = meta_graph.signature_def.get(SERVING_SIGNATURE)
        if signature is None:
            return result
        result["signature"] = describe_signature(signature)
        text = signature.inputs.get(TEXT_INPUT)
        if list(signature.inputs) != [TEXT_INPUT] or text.dtype != tf.string.as_datatype_enum:
            return result
        fetches = {name: info.name for name, info in signature.outputs.items()
                   if info.WhichOneof("encoding") == "name"}
        result["warmup_error"] = _replay_warmup(session, saved_model_dir, text.name, fetches,
                                                result)
        result["calls"] = []
        for texts in batches:
            call: Dict[str, Any] = {"texts": texts}
            try:
                feed = np.array([value.encode("utf-8") for value in texts], dtype=object)
                outputs = session.run(fetches, feed_dict={text.name: feed})
                call["outputs"] = {name: _as_json_value(np.asarray(value))
                                   for name, value in outputs.items()}
            except Exception as error:
                call["error"] = f"{type(error).__name__}: {error}"
            result["calls"].append(call)
    return result


def _replay_warmup(session, saved_model_dir: str, feed: str, fetches: Dict[str, str],
                   result: Dict[str, Any]) -> str:
    """Runs the model's warm-up requests; the first failure, as TF Serving would name it ('' if
    none). Counts them in result["warmup_requests"]."""
    import numpy as np
    try:
        batches = read_warmup_requests(saved_model_dir)
    except WarmupFileError as error:
        return str(error)
    result["warmup_requests"] = len(batches)
    for number, texts in enumerate(batches, start=1):
        try:
            session.run(fetches, feed_dict={feed: np.asarray(texts, dtype=object)})
        except Exception as error:  # reported to the parent, which names the problem
            return f"{WARMUP_FILE}, request {number}: {type(error).__name__}: {error}"
    return ""


def compare_precision(saved_model_dir: str, example_files: List[str], max_examples: int,
                      batch_size: int = 32) -> Dict[str, Any]:
    """Probabilities of the served model and of its float32 weights on the first
    `max_examples` tf.Examples of `example_files` (TFRecord files, gzipped if named *.gz)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the TF Text ops
    model = tf.saved_model.load(saved_model_dir)
    if not hasattr(model, FLOAT32_REFERENCE_FUNCTION):
        return {"error": f"the model has no {FLOAT32_REFERENCE_FUNCTION!r} function to compare "
                         "its precision with float32 (exported by an older version of this "
                         "project?)"}
    served_fn = model.signatures[EXAMPLES_SIGNATURE]
    [input_name] = served_fn.structured_input_signature[1]
    reference_fn = getattr(model, FLOAT32_REFERENCE_FUNCTION)
    served, reference = [], []
    for path in example_files:
        compression = "GZIP" if path.endswith(".gz") else ""
        dataset = tf.data.TFRecordDataset(path, compression_type=compression)
        for batch in dataset.take(max_examples - len(served)).batch(batch_size):
            served += served_fn(**{input_name: batch})[PROBABILITIES].numpy().tolist()
            reference += reference_fn(batch).numpy().tolist()
        if len(served) >= max_examples:
            break
    return {"served": served, "reference": reference}


def _imported(names) -> List[str]:
    return [name for name in names if name in sys.modules]


def main(argv: List[str]) -> None:
    mode, saved_model_dir, request_path, result_path = argv
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    if mode == "check":
        ops = list_ops(saved_model_dir)
        unexpected = _imported(NOT_IMPORTED + ("tensorflow_text",))
        result = {**call_signature(saved_model_dir, request["batches"]), **ops}
    elif mode == "compare_precision":
        result = compare_precision(saved_model_dir, request["example_files"],
                                   request["max_examples"])
        unexpected = []
    else:
        raise SystemExit(f"unknown probe mode {mode!r}: 'check' or 'compare_precision'")
    result["unexpected_imports"] = sorted(set(unexpected) | set(_imported(NOT_IMPORTED)))
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
