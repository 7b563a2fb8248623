"""TF Serving's two config messages that the tensorflow-serving-api wheel does not ship.

`tensorflow_model_server --monitoring_config_file` parses a `MonitoringConfig`
(tensorflow_serving/config/monitoring_config.proto) and `--batching_parameters_file` a
`BatchingParameters` (tensorflow_serving/servables/tensorflow/session_bundle_config.proto). The
pip package has neither, so they are declared here with the upstream package, message names,
field names, numbers and types (fields 1-7 of BatchingParameters, unchanged since TF Serving
1.x; the later fields such as enable_large_batch_splitting are not declared). Text-format files
that parse here therefore parse in TF Serving 2.16.1 too, and the local server
(serving/local_server.py) reads its batching settings from the same file as the container.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2

_PACKAGE = "tensorflow.serving"
_FILE_NAME = "bertpipe/tensorflow_serving_config_subset.proto"
_Field = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, field_type: int, type_name: str = "",
           repeated: bool = False) -> _Field:
    field = _Field(name=name, number=number, type=field_type,
                   label=_Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL)
    if type_name:  # set only for message fields: an empty type_name is an error, not a default
        field.type_name = type_name
    return field


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    int64_value, string_value = ".google.protobuf.Int64Value", ".google.protobuf.StringValue"
    message = _Field.TYPE_MESSAGE
    return descriptor_pb2.FileDescriptorProto(
        name=_FILE_NAME, package=_PACKAGE, syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name],
        message_type=[
            descriptor_pb2.DescriptorProto(name="PrometheusConfig", field=[
                _field("enable", 1, _Field.TYPE_BOOL),
                _field("path", 2, _Field.TYPE_STRING)]),
            descriptor_pb2.DescriptorProto(name="MonitoringConfig", field=[
                _field("prometheus_config", 1, message, f".{_PACKAGE}.PrometheusConfig")]),
            descriptor_pb2.DescriptorProto(name="BatchingParameters", field=[
                _field("max_batch_size", 1, message, int64_value),
                _field("batch_timeout_micros", 2, message, int64_value),
                _field("max_enqueued_batches", 3, message, int64_value),
                _field("num_batch_threads", 4, message, int64_value),
                _field("thread_pool_name", 5, message, string_value),
                _field("allowed_batch_sizes", 6, _Field.TYPE_INT64, repeated=True),
                _field("pad_variable_length_inputs", 7, _Field.TYPE_BOOL)]),
        ])


def _message_classes():
    # A private pool: the names cannot clash with a real tensorflow_serving module that a later
    # tensorflow-serving-api might ship and register in the default pool.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(_file_descriptor())
    return {name: message_factory.MessageFactory(pool).GetPrototype(
                pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in ("MonitoringConfig", "BatchingParameters")}


_CLASSES = _message_classes()
MonitoringConfig = _CLASSES["MonitoringConfig"]
BatchingParameters = _CLASSES["BatchingParameters"]


def parse_text_file(path: str, message_class):
    """The text-format proto in `path`; ValueError naming the file and the problem."""
    message = message_class()
    with open(path, encoding="utf-8") as handle:
        try:
            text_format.Parse(handle.read(), message)
        except text_format.ParseError as error:
            raise ValueError(f"{path} is not a {message.DESCRIPTOR.full_name} in text "
                             f"format: {error}") from error
    return message
