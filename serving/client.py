"""Clients of a running model server: raw text in, labels and probabilities out.

The same clients work against TensorFlow Serving (docker, serving/deploy/) and the local server
(`bertpipe serve`), because both speak TF Serving's APIs:

- `RestClient`: `POST /v1/models/<name>[/versions/<v>]:predict` (row or columnar format),
  `GET /v1/models/<name>` (status) and `GET /v1/models/<name>/metadata`, with requests;
- `GrpcClient`: PredictionService.Predict / GetModelMetadata and ModelService.GetModelStatus
  from tensorflow-serving-api, with grpcio.

`connect(url)` picks one from the URL: `http(s)://host:port` is REST, `grpc://host:port` (or
`host:port` with use_grpc) is gRPC. Failures raise ServingClientError with the server's message.
"""
from __future__ import annotations

import urllib.parse
from typing import Any, Dict, List, Optional, Sequence

import requests

from serving.contract import (CLASSES, PREDICTED_LABEL, PROBABILITIES, TEXT_INPUT, text_bytes,
                              text_predict_request)
from serving.results import label_results

DEFAULT_TIMEOUT_SECONDS = 30.0
_GRPC_SCHEME = "grpc"
_REST_SCHEMES = ("http", "https")


class ServingClientError(RuntimeError):
    """The server could not be reached or refused the request; the message says which."""


class RestClient:
    """TF Serving's REST API for one model (and optionally one pinned version)."""

    def __init__(self, base_url: str, model_name: str, version: Optional[int] = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 session: Optional[requests.Session] = None):
        self.base_url, self.model_name = base_url.rstrip("/"), model_name
        self.version, self.timeout = version, timeout
        self._session = session or requests.Session()  # keeps connections open between calls

    @property
    def model_url(self) -> str:
        name = urllib.parse.quote(self.model_name, safe="")
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.base_url}/v1/models/{name}{version}"

    def _call(self, method: str, url: str, body: Optional[Dict] = None) -> Dict[str, Any]:
        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise ServingClientError(f"cannot reach {url}: {error} (is the server running?)"
                                     ) from error
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text.strip()[:500]}
        if response.status_code != 200:
            raise ServingClientError(f"{method} {url}: HTTP {response.status_code}: "
                                     f"{payload.get('error', payload)}")
        return payload

    def predict_request(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """POSTs a predict request body as is; returns the response JSON."""
        return self._call("POST", f"{self.model_url}:predict", body)

    def predict(self, texts: Sequence[str], columnar: bool = False) -> List[Dict]:
        """Label and probabilities per text, in order (row format unless columnar)."""
        if columnar:
            outputs = self.predict_request({"inputs": {TEXT_INPUT: list(texts)}})["outputs"]
            return label_results(texts, outputs[PREDICTED_LABEL], outputs[CLASSES],
                                 outputs[PROBABILITIES])
        rows = self.predict_request({"instances": list(texts)})["predictions"]
        return label_results(texts, [row[PREDICTED_LABEL] for row in rows],
                             [row[CLASSES] for row in rows],
                             [row[PROBABILITIES] for row in rows])

    def status(self) -> Dict[str, Any]:
        return self._call("GET", self.model_url)

    def metadata(self) -> Dict[str, Any]:
        return self._call("GET", f"{self.model_url}/metadata")

    def close(self) -> None:
        self._session.close()


class GrpcClient:
    """TF Serving's gRPC PredictionService and ModelService for one model."""

    def __init__(self, target: str, model_name: str, version: Optional[int] = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS):
        import grpc  # pylint: disable=import-outside-toplevel  (REST users do not need it)
        from tensorflow_serving.apis import (  # pylint: disable=import-outside-toplevel
            model_service_pb2_grpc, prediction_service_pb2_grpc)
        self.target, self.model_name, self.version, self.timeout = (target, model_name, version,
                                                                   timeout)
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _spec(self, model_spec) -> None:
        model_spec.name = self.model_name
        if self.version is not None:
            model_spec.version.value = self.version

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            raise ServingClientError(f"gRPC {self.target}: {error.code().name}: "
                                     f"{error.details()}") from error

    def predict_outputs(self, texts: Sequence[str]) -> Dict[str, Any]:
        """The signature's outputs as numpy arrays."""
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        request = text_predict_request(
            [text_bytes(text, index) for index, text in enumerate(texts)], self.model_name,
            self.version)
        response = self._call(self._predictions.Predict, request)
        return {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}

    def predict(self, texts: Sequence[str]) -> List[Dict]:
        outputs = self.predict_outputs(texts)
        return label_results(texts, outputs[PREDICTED_LABEL], outputs[CLASSES],
                             outputs[PROBABILITIES])

    def status(self) -> Dict[str, Any]:
        from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
        from tensorflow_serving.apis import get_model_status_pb2  # pylint: disable=C0415
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        return json_format.MessageToDict(self._call(self._models.GetModelStatus, request),
                                         preserving_proto_field_name=True)

    def metadata(self) -> Dict[str, Any]:
        """{"model_spec": ..., "signature_def": <SignatureDefMap as a dict>}."""
        from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
        from tensorflow_serving.apis import get_model_metadata_pb2  # pylint: disable=C0415
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        return {"model_spec": json_format.MessageToDict(response.model_spec,
                                                        preserving_proto_field_name=True),
                "signature_def": json_format.MessageToDict(
                    signature_defs, preserving_proto_field_name=True)["signature_def"]}

    def close(self) -> None:
        self._channel.close()


def connect(url: str, model_name: str, version: Optional[int] = None, use_grpc: bool = False,
            timeout: float = DEFAULT_TIMEOUT_SECONDS):
    """A RestClient or GrpcClient for `url` (see the module docstring for the forms)."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"//{url}")
    if not parsed.hostname or not parsed.port:
        raise ServingClientError(f"--url {url!r}: expected http://HOST:PORT (REST), "
                                 "grpc://HOST:PORT, or HOST:PORT with --grpc")
    if parsed.scheme in _REST_SCHEMES:
        if use_grpc:
            raise ServingClientError(f"--url {url!r} is an {parsed.scheme} URL (REST) but "
                                     "--grpc was given; use grpc://HOST:PORT for gRPC")
        if parsed.path.strip("/") or parsed.query:
            raise ServingClientError(f"--url {url!r}: give the server only (http://HOST:PORT); "
                                     "the client adds /v1/models/<name>")
        return RestClient(f"{parsed.scheme}://{parsed.netloc}", model_name, version, timeout)
    if parsed.scheme == _GRPC_SCHEME or (not parsed.scheme and use_grpc):
        return GrpcClient(parsed.netloc, model_name, version, timeout)
    if not parsed.scheme:
        raise ServingClientError(f"--url {url!r}: say http://{url} for REST, or grpc://{url} "
                                 "(or --grpc) for gRPC")
    raise ServingClientError(f"--url {url!r}: unknown scheme {parsed.scheme!r}; use http, "
                             "https or grpc")
