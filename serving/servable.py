"""One model version loaded for serving: its raw-text signature, checked against the contract.

The local server (serving/local_server.py) holds one `Servable` per served version. Loading
checks the signature against the contract TF Serving clients of this project rely on, with the
same validator as the ServingCheck (serving/contract.py): a `serving_default` signature taking
`text` (1-D strings) and returning `probabilities`, `label` and `classes`; then it replays the
model's warm-up requests as TF Serving does (serving/warmup.py; one request if it has none), so
a version that cannot predict is never swapped in and no client request pays for an encoder
shape's first call (an XLA compilation, in an XLA export).

The version runs as TF Serving runs it: its `serve` MetaGraph loaded into a TF1 Session
(SavedModelBundle) with the session's thread settings, one `Session.run` per batch. That
path costs less per call than the TF2 function `tf.saved_model.load` returns (about 2 ms less
for one sentence in bench/serving_latency.py's --runner both), and what is measured here is
what the TF Serving deployment gets.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.contract import (OUTPUTS, SERVE_TAG, SERVING_SIGNATURE, TEXT_INPUT,
                              signature_problems)
from serving.model_probe import describe_signature
from serving.warmup import WarmupFileError, read_warmup_requests

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
    """A loaded version: `run(texts)` returns the contract's outputs as numpy arrays.

    threads: (intra-op, inter-op) threads of its session, as tensorflow_model_server's
    --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism (0: TF's default)."""

    def __init__(self, name: str, version: int, path: str, threads: Tuple[int, int] = (0, 0)):
        self.name, self.version, self.path = name, version, path
        self.signature_defs = read_signature_defs(path)
        _check_contract(self.signature_defs, path)
        graph = tf.Graph()
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads[0],
                                          inter_op_parallelism_threads=threads[1])
        self._session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            with graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [SERVE_TAG],
                                                                  path)
        except Exception as error:  # TF raises many types; all mean "cannot load this version"
            self._session.close()
            raise ServableError(f"{path}: TensorFlow cannot load it ({error})") from error
        signature = meta_graph.signature_def[SERVING_SIGNATURE]
        self._feed = signature.inputs[TEXT_INPUT].name
        self._fetches = {name: signature.outputs[name].name for name in OUTPUTS}
        try:
            for texts in read_warmup_requests(path) or [[_WARMUP_TEXT]]:
                self.run(texts)
        except WarmupFileError as error:
            self._session.close()
            raise ServableError(str(error)) from error

    def run(self, texts: Sequence[bytes]) -> Dict[str, np.ndarray]:
        return self._session.run(self._fetches,
                                 {self._feed: np.asarray(list(texts), dtype=object)})

    def close(self) -> None:
        """Frees the session (its graph, weights and XLA programs)."""
        self._session.close()

    def signature_names(self) -> List[str]:
        return sorted(self.signature_defs.signature_def)
