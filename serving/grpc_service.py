"""TF Serving's gRPC API in the local server: PredictionService.Predict and GetModelMetadata,
ModelService.GetModelStatus, with the protos of tensorflow-serving-api.

So the gRPC client (serving/client.py) is tested against a real gRPC endpoint, not only
against a TF Serving container. Classify, Regress and MultiInference take tf.Examples, which the
raw-text signature does not; they answer UNIMPLEMENTED, as the base servicer does.
"""
from __future__ import annotations

import functools
import time
from concurrent import futures
from typing import Callable, Dict, List, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving.contract import SERVING_SIGNATURE, TEXT_INPUT
from serving.errors import DeadlineExceeded, InvalidArgument, ServingError
from serving.metrics import ServerMetrics
from serving.model_manager import ModelManager
from serving.request_limits import RequestLimits, check_signature
from serving.request_log import RequestLogger, predict_log

_SIGNATURE_DEF_FIELD = "signature_def"  # the one metadata field TF Serving supports
# gRPC refuses a message beyond its receive limit itself, with RESOURCE_EXHAUSTED, before any
# handler sees it (TF Serving sets its limit to 2 GiB). The limit here is well above the
# largest request the request limits allow, so that a request beyond those limits (too many
# texts, a text too long) still reaches the handler and gets INVALID_ARGUMENT saying which
# limit; only a message this large is cut off by the transport.
MIN_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024


def _version(model_spec) -> Optional[int]:
    if model_spec.HasField("version_label"):
        raise InvalidArgument(f"Unrecognized servable version label: "
                              f"{model_spec.version_label}")
    return model_spec.version.value if model_spec.HasField("version") else None


def texts_from_request(request: predict_pb2.PredictRequest) -> List[bytes]:
    """The texts of a PredictRequest: one input `text`, a 1-D DT_STRING tensor."""
    names = sorted(request.inputs)
    if names != [TEXT_INPUT]:
        raise InvalidArgument(f"inputs {names}: the signature takes exactly one input, "
                              f"{TEXT_INPUT!r} (a 1-D batch of strings)")
    tensor = request.inputs[TEXT_INPUT]
    if tensor.dtype != tf.string.as_datatype_enum:
        raise InvalidArgument(f"input {TEXT_INPUT!r} is {tf.dtypes.as_dtype(tensor.dtype).name}; "
                              "expected string")
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    if len(dims) != 1 or dims[0] != len(tensor.string_val):
        raise InvalidArgument(f"input {TEXT_INPUT!r} has shape {dims} and "
                              f"{len(tensor.string_val)} values; expected a 1-D batch [n] with "
                              "n strings")
    return list(tensor.string_val)


def _answer(context: grpc.ServicerContext, call: Callable, metrics: Optional[ServerMetrics],
            endpoint: str):
    started, code = time.monotonic(), grpc.StatusCode.OK
    try:
        return call()
    except ServingError as error:
        code = error.grpc_code
        context.abort(error.grpc_code, str(error))
    except Exception:
        code = grpc.StatusCode.UNKNOWN  # grpcio answers UNKNOWN with the exception text
        raise
    finally:
        if metrics:
            metrics.record("grpc", endpoint, code.name, time.monotonic() - started)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, limits: RequestLimits, timeout_seconds: float,
                 metrics: Optional[ServerMetrics] = None,
                 request_log: Optional[RequestLogger] = None):
        self._manager, self._limits, self._timeout = manager, limits, timeout_seconds
        self._metrics, self._request_log = metrics, request_log

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        return _answer(context, lambda: self._logged(request, self._predict(request)),
                       self._metrics, "predict")

    def _logged(self, request, response):
        """`response`, after a sample of answered requests went to the request log."""
        if self._request_log is not None:
            # The protos are not changed after the answer: the writer thread copies them later.
            self._request_log.maybe_log(functools.partial(
                predict_log, request, response, self._request_log.sampling_rate))
        return response

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        version = _version(spec)
        check_signature(self._manager.servable(spec.name, version), spec.signature_name)
        texts = texts_from_request(request)
        self._limits.check(texts)
        used_version, future = self._manager.submit(spec.name, version, texts)
        try:
            outputs: Dict[str, np.ndarray] = future.result(timeout=self._timeout)
        except futures.TimeoutError:
            raise DeadlineExceeded(f"no answer from the model within {self._timeout:g} s") \
                from None
        if request.output_filter:
            unknown = sorted(set(request.output_filter) - set(outputs))
            if unknown:
                raise InvalidArgument(f"output_filter names unknown outputs {unknown}; the "
                                      f"outputs are {sorted(outputs)}")
            outputs = {name: outputs[name] for name in request.output_filter}
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = used_version
        response.model_spec.signature_name = spec.signature_name or SERVING_SIGNATURE
        for name, values in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(values))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _answer(context, lambda: self._metadata(request), self._metrics, "metadata")

    def _metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        unsupported = sorted(set(request.metadata_field) - {_SIGNATURE_DEF_FIELD})
        if unsupported or not request.metadata_field:
            raise InvalidArgument(f"metadata_field must be [{_SIGNATURE_DEF_FIELD!r}] (the only "
                                  f"field served); got {list(request.metadata_field)}")
        servable, signature_defs = self._manager.metadata(request.model_spec.name,
                                                          _version(request.model_spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[_SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, metrics: Optional[ServerMetrics] = None):
        self._manager, self._metrics = manager, metrics

    def GetModelStatus(self, request, context):  # noqa: N802
        return _answer(context, lambda: self._manager.status(request.model_spec.name,
                                                            _version(request.model_spec)),
                       self._metrics, "status")


def start_grpc_server(manager: ModelManager, limits: RequestLimits, host: str, port: int,
                      threads: int, timeout_seconds: float,
                      metrics: Optional[ServerMetrics] = None,
                      request_log: Optional[RequestLogger] = None) -> Tuple[grpc.Server, int]:
    """A started gRPC server on host:port (0: a free port); returns it and its port.
    `request_log`: where a sample of answered Predict requests is written."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length",
                  max(limits.max_body_bytes, MIN_GRPC_MESSAGE_BYTES))])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, limits, timeout_seconds, metrics, request_log), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics),
                                                              server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    server.start()
    return server, bound
