"""TextExampleGen: CSV or TSV files with a header row -> tf.Examples, every row checked.

TFX's CsvExampleGen hard-codes the comma and turns malformed rows into errors deep inside Beam.
This ExampleGen reads both delimiters with Python's csv module and checks every file: a header
naming the text and label columns, the same number of fields in every row, UTF-8, a label on
every row, a text column that is not empty throughout. Problems are collected on the Beam
workers and raised together, after the Beam job, as one `InputDataError` that names file, line
and column; the examples written so far are deleted, so nothing downstream sees partial data.

Spans (`{SPAN}` in a pattern), input splits and hash splits come from FileBasedExampleGen: its
driver picks the latest span. With `span_window` N > 1 this ExampleGen reads the latest N spans
(a rolling window) into the one Examples artifact of the run, whose `span` is the latest. The
input fingerprint, which decides TFX caching, covers the latest span's files: earlier spans are
taken to be final once a later one exists.
"""
from __future__ import annotations

import csv
import hashlib
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from google.protobuf import struct_pb2
from tfx import types
from tfx.components.example_gen import component as example_gen_component
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from serving.text_lines import raw_lines

# Errors reported per file before the rest are only counted: enough to see the pattern.
_MAX_ERRORS_PER_FILE = 10
# Python's csv refuses fields over 128 KiB by default; a contract or a support thread is
# longer than that. A text is truncated to max_seq_length tokens later, so its length here only
# costs memory for one row; this bound is far beyond any document and keeps a file without line
# ends from being read as one endless field.
MAX_FIELD_CHARACTERS = 64 * 1024 * 1024
_ERROR_DIR_KEY = "_input_error_dir"
_ERRORS_TAG = "errors"


class InputDataError(ValueError):
    """Input files that cannot become examples; the message names file, line and column."""


def delimiter_for(path: str, data_format: str) -> str:
    """The field delimiter: from `data_format`, or from the file extension when 'auto'."""
    if data_format == "csv":
        return ","
    if data_format == "tsv":
        return "\t"
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        return ","
    if extension in (".tsv", ".tab", ".txt"):
        return "\t"
    raise InputDataError(f"{path}: cannot tell CSV from TSV by the extension {extension!r}; "
                         "name the file .csv or .tsv or set the data format (--data-format)")


def _decoded_lines(lines, path: str, errors: List[str]) -> Iterator[str]:
    """UTF-8 lines; a line that does not decode is reported and replaced by an empty line."""
    for line_number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            errors.append(f"{path} line {line_number}: not valid UTF-8 "
                          f"(byte 0x{raw[error.start]:02x} at byte offset {error.start})")
            line = "\n"
        if line_number == 1:
            line = line.lstrip("\ufeff")  # byte-order mark written by some spreadsheet tools
        yield line


def _csv_problem(error: csv.Error, delimiter: str) -> str:
    """Python's csv error, said in terms of the user's file."""
    message = str(error)
    if "new-line character seen in unquoted field" in message:
        return ("a carriage return (\\r) inside a field; " + (
            "TSV has no quoting, so a text cannot hold a line break (use a quoted CSV or "
            "remove it)" if delimiter == "\t" else "quote the field"))
    if "line contains NUL" in message:
        return "a NUL byte (0x00): not text; the file may be binary or corrupted"
    return message


def parse_delimited_file(path: str, text_column: Optional[str], label_column: Optional[str],
                         data_format: str = "auto") -> Iterator[Any]:
    """Yields (text, label) pairs of one file, then the list of problems found (maybe empty).

    The problem list comes last so that a caller can stream rows without holding the file.
    text_column None: the first column. label_column None: no label needed (label is None).
    """
    errors: List[str] = []
    total_errors = 0

    def report(message: str):
        nonlocal total_errors
        total_errors += 1
        if len(errors) < _MAX_ERRORS_PER_FILE:
            errors.append(message)

    delimiter = delimiter_for(path, data_format)
    if csv.field_size_limit() < MAX_FIELD_CHARACTERS:  # process-wide: raise it, never lower it
        csv.field_size_limit(MAX_FIELD_CHARACTERS)
    # TSV (GLUE style) has no quoting: a quote character is part of the text.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows, texts = 0, 0
    with tf.io.gfile.GFile(path, "rb") as handle:
        decode_errors: List[str] = []
        reader = csv.reader(_decoded_lines(raw_lines(handle), path, decode_errors),
                            delimiter=delimiter, quoting=quoting, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise InputDataError(f"{path}: the file is empty; expected a header row naming "
                                     f"the text column {text_column!r} and the label column "
                                     f"{label_column!r}")
            text_column = header[0] if text_column is None else text_column
            missing = [(role, name) for role, name in
                       (("text", text_column), ("label", label_column))
                       if name is not None and name not in header]
            if missing:
                raise InputDataError(
                    f"{path}: the header has no " + " and no ".join(
                        f"{role} column {name!r}" for role, name in missing)
                    + f"; its columns are {header}. Name the columns with --text-column / "
                      "--label-column.")
            text_index = header.index(text_column)
            label_index = None if label_column is None else header.index(label_column)
            for row in reader:
                line = reader.line_num
                for message in decode_errors:
                    report(message)
                if decode_errors:
                    decode_errors.clear()
                    continue
                if not row:
                    continue  # blank line
                rows += 1
                if len(row) != len(header):
                    report(f"{path} line {line}: {len(row)} fields, but the header has "
                           f"{len(header)} ({delimiter!r}-separated: {header})")
                    continue
                label = None if label_index is None else row[label_index].strip()
                if label == "":
                    report(f"{path} line {line}: the label column {label_column!r} is empty")
                    continue
                text = row[text_index]
                texts += bool(text.strip())
                yield text, label
        except csv.Error as error:
            report(f"{path} line {reader.line_num}: {_csv_problem(error, delimiter)}")
        for message in decode_errors:
            report(message)
    if not total_errors and rows == 0:
        report(f"{path}: the file has a header but no data rows")
    elif not total_errors and texts == 0:
        report(f"{path}: the text column {text_column!r} is empty in all {rows} rows")
    if total_errors > len(errors):
        errors.append(f"{path}: ... and {total_errors - len(errors)} more problems")
    yield errors


def read_delimited_file(path: str, text_column: Optional[str], label_column: Optional[str],
                        data_format: str = "auto") -> Tuple[List[str], List[Optional[str]]]:
    """All (texts, labels) of one file in memory; raises InputDataError on any problem."""
    texts, labels = [], []
    for item in parse_delimited_file(path, text_column, label_column, data_format):
        if isinstance(item, list):
            if item:
                raise InputDataError("\n".join(item))
        else:
            texts.append(item[0])
            labels.append(item[1])
    return texts, labels


class _ParseFileToExamples(beam.DoFn):
    """One file -> tf.Examples (main output) and problem messages (the 'errors' output)."""

    def __init__(self, text_column: str, label_column: str, data_format: str):
        self._text_column = text_column
        self._label_column = label_column
        self._data_format = data_format

    def process(self, path: str):
        try:
            for item in parse_delimited_file(path, self._text_column, self._label_column,
                                             self._data_format):
                if isinstance(item, list):
                    for message in item:
                        yield beam.pvalue.TaggedOutput(_ERRORS_TAG, message)
                else:
                    text, label = item
                    yield tf.train.Example(features=tf.train.Features(feature={
                        self._text_column: _bytes_feature(text),
                        self._label_column: _bytes_feature(label),
                    }))
        except InputDataError as error:
            yield beam.pvalue.TaggedOutput(_ERRORS_TAG, str(error))


def _bytes_feature(value: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))


def read_custom_config(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    """The settings TextExampleGen packed into its CustomConfig proto."""
    config = example_gen_pb2.CustomConfig()
    serialized = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if serialized:
        proto_utils.json_to_proto(serialized, config)
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    return dict(struct)


def _pattern_for_span(pattern: str, span: int) -> str:
    return example_gen_utils.get_pattern_for_span_version(
        pattern, is_match_span=True, is_match_date=False, is_match_version=False, span=span,
        version=None)


def _earlier_span_patterns(settings: Dict[str, Any], exec_properties: Dict[str, Any],
                           split_pattern: str) -> List[str]:
    """The patterns of the spans before the latest one that the rolling window takes in."""
    window = int(settings.get("span_window", 1))
    span = exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME)
    if window <= 1 or span is None:
        return []
    span = int(span)
    # The driver has put the latest span into `split_pattern`; find the pattern it came from.
    for raw_pattern in settings.get("split_patterns", []):
        if "{SPAN" in raw_pattern and _pattern_for_span(raw_pattern, span) == split_pattern:
            return [_pattern_for_span(raw_pattern, earlier)
                    for earlier in range(max(0, span - window + 1), span)]
    return []


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _DelimitedFilesToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                             split_pattern: str) -> beam.pvalue.PCollection:
    settings = read_custom_config(exec_properties)
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    pattern = os.path.join(input_base, split_pattern)
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise InputDataError(f"no input file matches {pattern}")
    for earlier_pattern in _earlier_span_patterns(settings, exec_properties, split_pattern):
        files += sorted(tf.io.gfile.glob(os.path.join(input_base, earlier_pattern)))
    parsed = (pipeline
              | "Files" >> beam.Create(files)
              | "Parse" >> beam.ParDo(_ParseFileToExamples(
                  settings["text_column"], settings["label_column"], settings["data_format"])
                                      ).with_outputs(_ERRORS_TAG, main="examples"))
    error_file = os.path.join(exec_properties[_ERROR_DIR_KEY],
                              hashlib.sha1(split_pattern.encode()).hexdigest()[:12])
    _ = parsed[_ERRORS_TAG] | "WriteErrors" >> beam.io.WriteToText(error_file)
    # A file is parsed by one worker; spread its examples before the writes downstream.
    return parsed.examples | "Spread" >> beam.Reshuffle()


class Executor(BaseExampleGenExecutor):
    """Runs the Beam job, then raises the collected input problems (if any) as one error."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _DelimitedFilesToExample

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        error_dir = os.path.join(self._get_tmp_dir(), "input_errors")
        exec_properties = dict(exec_properties, **{_ERROR_DIR_KEY: error_dir})
        super().Do(input_dict, output_dict, exec_properties)
        errors = []
        for error_file in sorted(tf.io.gfile.glob(os.path.join(error_dir, "*"))):
            with tf.io.gfile.GFile(error_file) as handle:
                errors.extend(line.rstrip("\n") for line in handle if line.strip())
        if errors:
            examples = artifact_utils.get_single_instance(
                output_dict[standard_component_specs.EXAMPLES_KEY])
            if tf.io.gfile.exists(examples.uri):
                tf.io.gfile.rmtree(examples.uri)  # no partial examples for anyone to pick up
            raise InputDataError("The input data has problems; nothing was written:\n  "
                                 + "\n  ".join(sorted(errors)))


class TextExampleGen(example_gen_component.FileBasedExampleGen):
    """FileBasedExampleGen over CSV/TSV files with a header, validating every row."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: str, text_column: str, label_column: str,
                 data_format: str = "auto", span_window: int = 1, **kwargs):
        input_config = kwargs.get("input_config")
        settings = struct_pb2.Struct()
        settings.update({"text_column": text_column, "label_column": label_column,
                         "data_format": data_format, "span_window": span_window,
                         "split_patterns": [split.pattern for split in input_config.splits]
                                           if input_config else []})
        custom_config = example_gen_pb2.CustomConfig()
        custom_config.custom_config.Pack(settings)
        super().__init__(input_base=input_base, custom_config=custom_config, **kwargs)
