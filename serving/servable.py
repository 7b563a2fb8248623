"""One model version loaded for serving: its raw-text signature, checked against the contract.

The local server (serving/local_server.py) holds one `Servable` per served version. Loading
checks the signature against the contract TF Serving clients of this project rely on, with the
same validator as the ServingCheck (serving/contract.py): a `serving_default` signature taking
`text` (1-D strings) and returning `probabilities`, `label` and `classes`; then it runs one
warm-up request, so a version that cannot predict is never swapped in and the first client
request does not pay for tracing.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.contract import (OUTPUTS, SERVE_TAG, SERVING_SIGNATURE, TEXT_INPUT,
                              signature_problems)
from serving.model_probe import describe_signature

_WARMUP_TEXT = b"warm-up"


class ServableError(ValueError):
    """A model version that cannot be served: not a SavedModel, or not the raw-text contract."""


def read_signature_defs(saved_model_dir: str) -> get_model_metadata_pb2.SignatureDefMap:
    """The signatures of the `serve` MetaGraphDef, as TF Serving's GetModelMetadata reports them."""
    path = os.path.join(saved_model_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    try:
        with open(path, "rb") as handle:
            saved_model.ParseFromString(handle.read())
    except (OSError, ValueError) as error:  # DecodeError is a ValueError
        raise ServableError(f"{path}: cannot read the SavedModel ({error})") from error
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return get_model_metadata_pb2.SignatureDefMap(
                signature_def=meta_graph.signature_def)
    raise ServableError(f"{path} has no MetaGraphDef tagged {SERVE_TAG!r}")


def _check_contract(signature_defs: get_model_metadata_pb2.SignatureDefMap, where: str) -> None:
    signature = signature_defs.signature_def.get(SERVING_SIGNATURE)
    problems = signature_problems(
        describe_signature(signature) if signature is not None else None,
        list(signature_defs.signature_def))
    if problems:
        raise ServableError(f"{where}: " + "; ".join(problems))


class Servable:
    """A loaded version: `run(texts)` returns the contract's outputs as numpy arrays."""

    def __init__(self, name: str, version: int, path: str):
        self.name, self.version, self.path = name, version, path
        self.signature_defs = read_signature_defs(path)
        _check_contract(self.signature_defs, path)
        try:
            self._loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        except Exception as error:  # TF raises many types; all mean "cannot load this version"
            raise ServableError(f"{path}: TensorFlow cannot load it ({error})") from error
        # The object returned by load must stay referenced while its signature is in use.
        self._function = self._loaded.signatures[SERVING_SIGNATURE]
        self.run([_WARMUP_TEXT])

    def run(self, texts: Sequence[bytes]) -> Dict[str, np.ndarray]:
        outputs = self._function(**{TEXT_INPUT: tf.constant(list(texts), dtype=tf.string)})
        return {name: outputs[name].numpy() for name in OUTPUTS}

    def signature_names(self) -> List[str]:
        return sorted(self.signature_defs.signature_def)
