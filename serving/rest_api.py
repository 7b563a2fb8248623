"""TensorFlow Serving's REST API for the raw-text signature: JSON in, texts out, and back.

The local server (serving/local_server.py) speaks TF Serving 2.16's REST API for the endpoints
a text classifier needs, so one client works against both. The semantics are TF Serving's, from
tensorflow_serving/g3doc/api_rest.md and model_servers/http_rest_api_handler.cc,
http_rest_api_util.cc (paths, status and metadata JSON) and util/json_tensor.cc (predict
request and response JSON, error wording):

- paths: `POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict`,
  `GET /v1/models/<name>[/versions/<v>|/labels/<l>]` (status) and `.../metadata`; matched case
  insensitively, the model name URL-decoded;
- predict, row format: `{"instances": ["a", "b"]}` or `{"instances": [{"text": "a"}, ...]}`
  -> `{"predictions": [{"probabilities": [...], "label": "...", "classes": [...]}, ...]}`;
- predict, columnar format: `{"inputs": {"text": ["a", "b"]}}` or `{"inputs": ["a", "b"]}` ->
  `{"outputs": {"probabilities": [[...]], "label": [...], "classes": [[...]]}}`;
- a string may be sent as `{"b64": "<base64>"}`; `signature_name` is optional;
- status: GetModelStatusResponse as JSON with proto field names and defaults
  (`{"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {...}}]}`);
- metadata: `{"model_spec": {...}, "metadata": {"signature_def": <SignatureDefMap>}}`;
- errors: `{"error": "<message>"}`, HTTP status from the error (serving/errors.py).

Deliberately stricter than TF Serving, because the served signature takes a 1-D batch of
strings: an input name other than `text` (TF Serving ignores extra keys in an `inputs` object),
nested lists and scalars are 400 errors saying what is expected, and requests are bounded
(serving/request_limits.py).
"""
from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import functools
import json
import os
import re
import urllib.parse
from typing import Any, Dict, List, Optional

import numpy as np
import yaml
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from serving.contract import SHOWN_TEXT_CHARS, TEXT_INPUT, InvalidTextError, text_bytes
from serving.errors import InvalidArgument

# http_rest_api_util.cc: kPredictionApiGegex and kModelStatusApiRegex.
_VERSION_OR_LABEL = r"(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
PREDICT_PATH = re.compile(rf"/v1/models/([^/:]+){_VERSION_OR_LABEL}:(classify|regress|predict)",
                          re.IGNORECASE)
STATUS_PATH = re.compile(rf"/v1/models(?:/([^/:]+))?{_VERSION_OR_LABEL}(?:/(metadata))?",
                         re.IGNORECASE)
INSTANCES, INPUTS, SIGNATURE_NAME = "instances", "inputs", "signature_name"
PREDICTIONS, OUTPUTS = "predictions", "outputs"
_B64 = "b64"
OPENAPI_PATH = "/openapi.json"  # where the server publishes its OpenAPI document
_OPENAPI_FILE = os.path.join(os.path.dirname(__file__), "openapi.yaml")


@dataclasses.dataclass(frozen=True)
class ModelPath:
    """What a request path names: the model, and optionally a version or a version label."""

    model_name: str
    version: Optional[int]
    label: Optional[str]
    method: str  # predict/classify/regress for POST; "" (status) or "metadata" for GET


def parse_path(http_method: str, path: str) -> ModelPath:
    """The model a /v1/ path names; InvalidArgument "Malformed request" as TF Serving says."""
    match = None
    if http_method == "POST":
        match = PREDICT_PATH.fullmatch(path)
    elif http_method == "GET":
        match = STATUS_PATH.fullmatch(path)
    if not match or not match.group(1):
        if match and http_method == "GET":  # GET /v1/models: TF Serving lists no models
            raise InvalidArgument("Missing model name in request.")
        raise InvalidArgument(f"Malformed request: {http_method} {path}")
    name, version, label, method = match.groups()
    return ModelPath(urllib.parse.unquote(name), int(version) if version else None,
                     urllib.parse.unquote(label) if label else None,
                     (method or "").lower())


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    texts: List[bytes]
    columnar: bool  # "inputs" (answer with "outputs") rather than "instances" ("predictions")
    signature_name: str


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_TEXT_CHARS else text[:SHOWN_TEXT_CHARS] + "..."


def _json_type(value: Any) -> str:
    """rapidjson's type names, as TF Serving's messages use them."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_B64), str)


def _text(value: Any) -> bytes:
    """A JSON string or {"b64": ...} as bytes; InvalidArgument naming the JSON type otherwise."""
    if isinstance(value, str):
        try:
            return text_bytes(value)
        except InvalidTextError as error:
            # TF Serving's JSON parser (RapidJSON) refuses these while parsing, with this text.
            raise InvalidArgument(f"JSON Parse error: The surrogate pair in string is invalid. "
                                  f"({error})") from None
    if _is_b64(value):
        try:
            return base64.b64decode(value[_B64], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"JSON Value: {_shown(value)} not formatted correctly for "
                                  "base64 data") from None
    raise InvalidArgument(f"JSON Value: {_shown(value)} Type: {_json_type(value)} is not of "
                          f"expected type: string (input '{TEXT_INPUT}' is a 1-D batch of "
                          "strings, one text each)")


def _texts_from_instances(instances: List[Any]) -> List[bytes]:
    objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    texts = []
    for index, item in enumerate(instances):
        is_object = isinstance(item, dict) and not _is_b64(item)
        if objects and not is_object:
            raise InvalidArgument(f"Expecting object but got {_json_type(item)} at item {index} "
                                  "of input list")
        if is_object and not objects:
            raise InvalidArgument(f"Expecting value/list but got object at item {index} of "
                                  "input list")
        if is_object and set(item) != {TEXT_INPUT}:
            raise InvalidArgument(f"Failed to process element: {index} of 'instances' list. "
                                  f"JSON object: {_shown(item)} keys must be equal to: "
                                  f"{TEXT_INPUT}")
        try:
            texts.append(_text(item[TEXT_INPUT] if is_object else item))
        except InvalidArgument as error:
            raise InvalidArgument(f"Failed to process element: {index} of 'instances' list. "
                                  f"Error: {error}") from None
    return texts


def _texts_from_inputs(inputs: Any) -> List[bytes]:
    if isinstance(inputs, dict) and not _is_b64(inputs):
        if TEXT_INPUT not in inputs:
            raise InvalidArgument(f"Missing named input: {TEXT_INPUT} in 'inputs' object.")
        unknown = sorted(set(inputs) - {TEXT_INPUT})
        if unknown:
            raise InvalidArgument(f"Unknown named inputs {unknown} in 'inputs' object; the "
                                  f"signature's only input is {TEXT_INPUT}")
        inputs = inputs[TEXT_INPUT]
    if not isinstance(inputs, list):
        raise InvalidArgument(f"'{INPUTS}' must be a list of strings (input '{TEXT_INPUT}' is a "
                              f"1-D batch), not {_json_type(inputs)}: {_shown(inputs)}")
    if not inputs:
        raise InvalidArgument(f"No values in '{INPUTS}' list")
    texts = []
    for index, item in enumerate(inputs):
        try:
            texts.append(_text(item))
        except InvalidArgument as error:
            raise InvalidArgument(f"Failed to process element: {index} of '{INPUTS}' list. "
                                  f"Error: {error}") from None
    return texts


def parse_predict_request(body: bytes) -> PredictRequest:
    """The texts of a predict request body, as FillPredictRequestFromJson reads them."""
    if not body.strip():
        raise InvalidArgument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except UnicodeDecodeError as error:
        raise InvalidArgument(f"JSON Parse error: the body is not UTF-8 ({error.reason} at "
                              f"offset: {error.start})") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"JSON Value: {_shown(document)} Is not object")
    signature_name = document.get(SIGNATURE_NAME, "")
    if not isinstance(signature_name, str):
        raise InvalidArgument(f"JSON Value: {_shown(document)} not formatted correctly. "
                              "'signature_name' key must be a string value.")
    if INSTANCES in document and INPUTS in document:
        raise InvalidArgument(f"JSON Value: {_shown(document)} Not formatted correctly "
                              f"expecting only one of '{INPUTS}' or '{INSTANCES}' keys to exist")
    if INSTANCES in document:
        instances = document[INSTANCES]
        if not isinstance(instances, list):
            raise InvalidArgument(f"JSON Value: {_shown(document)} Expecting '{INSTANCES}' to "
                                  "be an list/array")
        if not instances:
            raise InvalidArgument(f"JSON Value: {_shown(document)} No values in '{INSTANCES}' "
                                  "array")
        return PredictRequest(_texts_from_instances(instances), False, signature_name)
    if INPUTS in document:
        return PredictRequest(_texts_from_inputs(document[INPUTS]), True, signature_name)
    raise InvalidArgument(f"Missing '{INPUTS}' or '{INSTANCES}' key")


def _json_values(values: np.ndarray) -> Any:
    """Nested lists for JSON: strings decoded; floats as the shortest text that reads back
    as the same float32, as TF Serving writes them (json_tensor.cc WriteDecimal)."""
    if values.dtype.kind in ("S", "O"):
        flat = [value.decode("utf-8", "replace") for value in values.reshape(-1)]
    elif values.dtype.kind == "f":
        # Iterating the array keeps numpy float32 scalars, whose str() is the shortest
        # float32 text (0.9, where the float64 value would print as 0.8999999761581421).
        flat = [float(str(value)) for value in values.reshape(-1)]
    else:
        return values.tolist()
    return np.array(flat, dtype=object).reshape(values.shape).tolist()


def predict_response(outputs: Dict[str, np.ndarray], columnar: bool) -> Dict[str, Any]:
    """TF Serving's predict response JSON object (MakeJsonFromTensors) for named outputs."""
    columns = {name: _json_values(values) for name, values in outputs.items()}
    if columnar:
        return {OUTPUTS: columns}
    rows = len(next(iter(columns.values())))
    return {PREDICTIONS: [{name: column[row] for name, column in columns.items()}
                          for row in range(rows)]}


def _message_json(message) -> str:
    # http_rest_api_util.cc ToJsonString: defaults printed, proto field names kept.
    return json_format.MessageToJson(message, including_default_value_fields=True,
                                     preserving_proto_field_name=True)


def status_json(response) -> str:
    """A GetModelStatusResponse as TF Serving's REST status endpoint writes it."""
    return _message_json(response)


def metadata_json(name: str, version: int,
                  signature_defs: get_model_metadata_pb2.SignatureDefMap) -> str:
    """TF Serving's metadata JSON: the model spec and the signature_def metadata field."""
    model_spec = model_pb2.ModelSpec(name=name)
    model_spec.version.value = version
    return (f'{{\n"model_spec":{_message_json(model_spec)},\n'
            f'"metadata": {{"signature_def": {_message_json(signature_defs)}}}\n}}\n')


def error_json(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


@functools.lru_cache(maxsize=1)
def _openapi_template() -> Dict[str, Any]:
    with open(_OPENAPI_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def openapi_document(model_name: str) -> Dict[str, Any]:
    """The REST API's OpenAPI document (serving/openapi.yaml), with the served model's name as
    the example model name, so that generated and copied requests reach the model."""
    document = copy.deepcopy(_openapi_template())
    document["components"]["parameters"]["ModelName"]["schema"]["example"] = model_name
    return document
