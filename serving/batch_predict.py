"""Batch prediction of a file of any size with Beam RunInference: the job behind
`bertpipe predict --model DIR --data FILE --output FILE`.

Input, by the name of --data (a file or a glob):
- CSV (.csv) or TSV (.tsv) with a header row naming the text column. CSV is read with Python's
  csv module (quoted fields, also with line breaks inside); TSV has no quoting (GLUE style, as
  the pipeline reads it), so a TSV text cannot hold a tab or a line break. Each file is read as
  one stream by one worker (Beam's fileio: MatchFiles, ReadMatches) and not split by byte
  ranges as ReadFromText would: a line-based split cannot tell a line break inside a quoted
  field from a row end, and reading a file whole gives every error its line number. Reading
  costs little next to the model, and on a distributed runner the rows are reshuffled across
  the workers for inference. Blank lines are skipped.
- TFRecord files of tf.Example (a name containing "tfrecord": .tfrecord, .tfrecord.gz, TFX's
  data_tfrecord-*.gz; gzip by the .gz extension), read with Beam's ReadAllFromTFRecord; the
  text is the one value of the bytes feature named by the text column.

Output, written to a new directory next to --output and renamed to --output only when the
whole job succeeded (so a failed job leaves no output, or the previous one untouched, and no
temporary files):
- CSV/TSV input -> the same format (--output must end in .csv/.tsv alike): every input column,
  then `label` and `probability_<class>` per class of the model, with Beam's WriteToText
  (header= for the header row);
- TFRecord input -> TFRecord (--output must end in .tfrecord or .tfrecord.gz): each input
  tf.Example plus the features `label` (bytes) and `probabilities` (float list, in the order of
  the model's classes, which the summary prints), with Beam's WriteToTFRecord.
An added column or feature whose name the input already has (a `label` column of labeled data)
is called `predicted_<name>` instead. Beam does not promise any row order: with the
DirectRunner (one bundle) the rows come out in input order in practice, a distributed runner
mixes them; keep an id column to join on.

Memory: on the DirectRunner (in_memory, one worker, as the pipeline's own Beam components run)
rows stream from the reader through RunInference to the writer in one fused stage, so memory
does not grow with the file: the writer gets num_shards=0 (one file per bundle; the local
runner makes one bundle), because WriteToText's num_shards=1 (and shard_name_template="",
which implies it) groups every row under one key first, which the DirectRunner holds in memory
(about 5x the output's size, measured). On Dataflow, num_shards=1: its shuffle is on disk and
one worker writes the single file. More than one shard (not seen with either) would be
concatenated into the one output file.

Bad input fails the job with a BatchPredictionError naming the file and line: a missing text
column (before the job starts: the header and the first tf.Example are read first), a row with
the wrong number of fields, an unclosed quote, text that is not UTF-8. Empty texts are valid
input and get a label like any other text.

What happens on failure: Beam's WriteToText/WriteToTFRecord write temporary files in a
beam-temp-* directory and rename them only in their final step, so Beam alone never leaves a
half-written file under the final name, but it leaves its temporary files behind. Here both
live inside the job's own temporary directory (.<output name>.tmp-<id> next to --output),
which is deleted whether the job succeeds or fails; only a process killed outright leaves it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import shutil
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from serving.contract import BATCH_PREDICTION_BATCH_SIZE, PREDICTED_LABEL, PROBABILITIES
from serving.signature_model_handler import (ServingSignatureModelHandler, load_serving_model,
                                             model_classes)
from serving.text_lines import READ_CHUNK_BYTES, raw_lines

PROBABILITY_PREFIX = "probability_"
COLLISION_PREFIX = "predicted_"
_METRICS_NAMESPACE = "bertpipe_batch_predict"
_ROWS_READ, _ROWS_WRITTEN = "rows_read", "rows_written"
# As components/text_example_gen.py: Python's csv refuses fields over 128 KiB by default.
MAX_FIELD_CHARACTERS = 64 * 1024 * 1024
_SHOWN_CHARS = 200
_LOCAL_RUNNERS = ("DirectRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner",
                  "FnApiRunner", "PrismRunner")


class BatchPredictionError(ValueError):
    """Input or arguments batch prediction cannot work with; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class BatchPredictionSummary:
    rows_read: int
    rows_written: int
    output: str
    seconds: float
    added: Tuple[str, ...]  # the columns or features added to each row
    classes: Tuple[str, ...]

    @property
    def rows_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{self.rows_read} rows read, {self.rows_written} rows written to "
                f"{self.output} in {self.seconds:.1f} s ({self.rows_per_second:.0f} rows/s)\n"
                f"added: {', '.join(self.added)} (classes in probability order: "
                f"{', '.join(self.classes)})")


def find_batch_error(error: Optional[BaseException]) -> Optional[BatchPredictionError]:
    """The BatchPredictionError behind `error` (Beam re-raises a worker's error with the step
    name appended, the original as its cause): the innermost one, else None."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, BatchPredictionError):
            found = error
        error = error.__cause__ or error.__context__
    return found


class _HideBatchErrors(logging.Filter):
    """Drops Beam's own log record (message and traceback) of a BatchPredictionError raised in a
    DoFn: the error reaches the caller, which says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return find_batch_error(record.exc_info[1] if record.exc_info else None) is None


# Beam logs an exception raised in a DoFn here (runners/common.py) before re-raising it.
_BEAM_DOFN_LOGGER = "apache_beam.runners.common"


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    return PipelineOptions(list(beam_args))


def _is_local_runner(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner is None or (runner if isinstance(runner, str)
                              else type(runner).__name__) in _LOCAL_RUNNERS


# ----------------------------------------------------------------------------- formats


def _format_of(name: str) -> Optional[str]:
    lower = os.path.basename(name).lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".tsv"):
        return "tsv"
    if "tfrecord" in lower:
        return "tfrecord"
    return None


_FORMATS_SAID = ("name CSV files .csv, TSV files .tsv and TFRecord files of tf.Example "
                 ".tfrecord or .tfrecord.gz")


def input_format(pattern: str, paths: Sequence[str]) -> str:
    """csv, tsv or tfrecord: from the name of --data, else from the first file it matches."""
    found = _format_of(pattern) or (_format_of(paths[0]) if paths else None)
    if found is None:
        raise BatchPredictionError(f"{pattern}: cannot tell the format from the name; "
                                   f"{_FORMATS_SAID}")
    return found


def _output_suffix(output: str, data_format: str) -> str:
    """The extension the output keeps (.csv, .tsv, .tfrecord, .tfrecord.gz); refuses an output
    name of another format than the input's."""
    lower = output.lower()
    wanted = {"csv": (".csv",), "tsv": (".tsv",),
              "tfrecord": (".tfrecord.gz", ".tfrecord")}[data_format]
    for suffix in wanted:
        if lower.endswith(suffix):
            return output[-len(suffix):]
    raise BatchPredictionError(
        f"--output {output}: the output has the input's format ({data_format}), so its name "
        f"must end in {' or '.join(wanted)}")


# ----------------------------------------------------------------------------- CSV / TSV


def _dialect(delimiter: str) -> Dict[str, Any]:
    # TSV (GLUE style, as the pipeline reads it) has no quoting: a quote is part of the text.
    if delimiter == "\t":
        return dict(delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
    return dict(delimiter=",", quoting=csv.QUOTE_MINIMAL)


def _decoded_lines(handle, path: str) -> Iterator[str]:
    """The UTF-8 lines of a binary stream, line ends kept (also a \\r inside a quoted field);
    BatchPredictionError naming the line for bytes that are not UTF-8."""
    for number, raw in enumerate(raw_lines(handle), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BatchPredictionError(
                f"{path} line {number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at byte "
                f"offset {error.start}); save the file as UTF-8") from None
        yield line.lstrip("\ufeff") if number == 1 else line  # a spreadsheet's byte-order mark


def _csv_problem(error: csv.Error, delimiter: str) -> str:
    message = str(error)
    if "new-line character seen in unquoted field" in message:
        return ("a carriage return (\\r) inside a field; " + (
            "TSV has no quoting, so a text cannot hold a line break" if delimiter == "\t"
            else "quote the field"))
    if "unexpected end of data" in message:
        return "the file ends inside a quoted field (a quote that is never closed?)"
    if "line contains NUL" in message:
        return "a NUL byte (0x00): not text; the file may be binary or corrupted"
    return message


def _delimited_records(handle, path: str, delimiter: str) -> Iterator[Tuple[int, List[str]]]:
    """(line number of the record's last line, fields) of a CSV/TSV stream, header first."""
    if csv.field_size_limit() < MAX_FIELD_CHARACTERS:  # process-wide: raise it, never lower it
        csv.field_size_limit(MAX_FIELD_CHARACTERS)
    reader = csv.reader(_decoded_lines(handle, path), strict=True, **_dialect(delimiter))
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as error:
        raise BatchPredictionError(
            f"{path} line {reader.line_num}: {_csv_problem(error, delimiter)}") from None


def read_header(path: str, delimiter: str) -> List[str]:
    with FileSystems.open(path) as handle:
        first = next(_delimited_records(handle, path, delimiter), None)
    if first is None:
        raise BatchPredictionError(f"{path}: the file is empty; expected a header row naming "
                                   "the text column")
    return first[1]


class _ReadDelimitedRows(beam.DoFn):
    """A matched file -> (row fields, text) per data row, streaming; fails on a bad row."""

    def __init__(self, delimiter: str, header: List[str], text_index: int, first_path: str):
        self._delimiter = delimiter
        self._header = header
        self._text_index = text_index
        self._first_path = first_path
        self._rows = Metrics.counter(_METRICS_NAMESPACE, _ROWS_READ)

    def process(self, readable_file) -> Iterator[Tuple[Tuple[str, ...], str]]:
        path = readable_file.metadata.path
        with readable_file.open() as handle:
            records = _delimited_records(handle, path, self._delimiter)
            _, header = next(records, (0, None))
            if header != self._header:
                raise BatchPredictionError(
                    f"{path}: the header {header} differs from the header of "
                    f"{self._first_path}, {self._header}; the files of one --data glob must "
                    "have the same columns")
            for line, row in records:
                if not row:
                    continue  # a blank line
                if len(row) != len(header):
                    raise BatchPredictionError(
                        f"{path} line {line}: {len(row)} fields, but the header has "
                        f"{len(header)} ({self._delimiter!r}-separated: {header}); a CSV "
                        "field with a delimiter or line break must be quoted")
                self._rows.inc()
                yield tuple(row), row[self._text_index]


def _number(value) -> str:
    """A float32 as the shortest decimal that reads back as the same float32."""
    import numpy as np
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


class _FormatDelimited(beam.DoFn):
    """(row fields, PredictionResult) -> one output line (no line end: WriteToText adds it)."""

    def __init__(self, delimiter: str):
        self._delimiter = delimiter
        self._rows = Metrics.counter(_METRICS_NAMESPACE, _ROWS_WRITTEN)

    def setup(self):
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n", **_dialect(self._delimiter))

    def process(self, element) -> Iterator[str]:
        row, result = element
        inference = result.inference
        self._rows.inc()
        yield self.line([*row, inference[PREDICTED_LABEL],
                         *(_number(p) for p in inference[PROBABILITIES])])

    def line(self, fields: Sequence[str]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        try:
            self._writer.writerow(fields)
        except csv.Error as error:  # TSV: a class name with a tab cannot be written
            raise BatchPredictionError(f"cannot write {list(fields)[:20]} as TSV: {error}") \
                from None
        return self._buffer.getvalue()[:-1]


def format_line(fields: Sequence[str], delimiter: str) -> str:
    formatter = _FormatDelimited(delimiter)
    formatter.setup()
    return formatter.line(fields)


# ----------------------------------------------------------------------------- TFRecord


def _text_of_example(example, text_column: str, path: str) -> str:
    feature = example.features.feature.get(text_column)
    values = feature.bytes_list.value if feature is not None else None
    if feature is None or feature.WhichOneof("kind") != "bytes_list" or len(values) != 1:
        kind = ("missing" if feature is None else
                f"a bytes_list of {len(values)} values"
                if feature.WhichOneof("kind") == "bytes_list" else
                f"of kind {feature.WhichOneof('kind')}")
        raise BatchPredictionError(
            f"{path}: a tf.Example's text feature {text_column!r} is {kind}; expected a "
            f"bytes_list with one text. Its features are "
            f"{sorted(example.features.feature)} (choose one with --text-column)")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError as error:
        raise BatchPredictionError(
            f"{path}: a tf.Example's text feature {text_column!r} is not valid UTF-8 (byte "
            f"0x{values[0][error.start]:02x} at byte offset {error.start}: "
            f"{values[0][:_SHOWN_CHARS]!r})") from None


def first_example(path: str):
    """The first tf.Example of a TFRecord file (gzip by the .gz extension), or None."""
    import tensorflow as tf
    dataset = tf.data.TFRecordDataset(path, compression_type="GZIP"
                                      if path.lower().endswith(".gz") else "")
    for record in dataset.take(1):
        return tf.train.Example.FromString(record.numpy())
    return None


class _ParseExamples(beam.DoFn):
    """(file name, serialized tf.Example) -> (serialized tf.Example, text)."""

    def __init__(self, text_column: str):
        self._text_column = text_column
        self._rows = Metrics.counter(_METRICS_NAMESPACE, _ROWS_READ)

    def process(self, element) -> Iterator[Tuple[bytes, str]]:
        import tensorflow as tf
        path, record = element
        text = _text_of_example(tf.train.Example.FromString(record), self._text_column, path)
        self._rows.inc()
        yield record, text


class _ExtendExamples(beam.DoFn):
    """(serialized tf.Example, PredictionResult) -> the serialized tf.Example with the label
    and probabilities features added."""

    def __init__(self, label_feature: str, probabilities_feature: str):
        self._label_feature = label_feature
        self._probabilities_feature = probabilities_feature
        self._rows = Metrics.counter(_METRICS_NAMESPACE, _ROWS_WRITTEN)

    def process(self, element) -> Iterator[bytes]:
        import tensorflow as tf
        record, result = element
        example = tf.train.Example.FromString(record)
        features = example.features.feature
        for name in (self._label_feature, self._probabilities_feature):
            if name in features:
                raise BatchPredictionError(
                    f"a tf.Example already has a feature {name!r} (the first one did not); "
                    "the prediction would overwrite it")
        features[self._label_feature].bytes_list.value.append(
            result.inference[PREDICTED_LABEL].encode("utf-8"))
        features[self._probabilities_feature].float_list.value.extend(
            [float(p) for p in result.inference[PROBABILITIES]])
        self._rows.inc()
        yield example.SerializeToString()


# ----------------------------------------------------------------------------- the job


def _added_name(name: str, existing: Sequence[str]) -> str:
    return COLLISION_PREFIX + name if name in existing else name


def _matched_paths(pattern: str) -> List[str]:
    try:
        [result] = FileSystems.match([pattern])
    except Exception as error:  # BeamIOError: a pattern no filesystem can list
        raise BatchPredictionError(f"--data {pattern}: {error}") from None
    paths = sorted(metadata.path for metadata in result.metadata_list)
    if not paths:
        raise BatchPredictionError(f"--data {pattern}: no file matches")
    return paths


def _resolve_model(model: str) -> str:
    from serving.predict import resolve_saved_model_dir
    try:
        return resolve_saved_model_dir(model)
    except FileNotFoundError as error:
        raise BatchPredictionError(f"--model {error}") from None


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _counter(result, name: str) -> int:
    counters = result.metrics().query(
        MetricsFilter().with_namespace(_METRICS_NAMESPACE).with_name(name))["counters"]
    return int(sum((counter.committed if counter.committed is not None else counter.attempted)
                   or 0 for counter in counters))


class _Placeholder:
    """A weak-referenceable nothing, for _release_shared_model."""


def _release_shared_model() -> None:
    """Lets the model go once the job is done.

    RunInference holds its model through apache_beam.utils.shared, whose process-wide map keeps
    the object acquired last alive until another one is acquired (so that a worker's next
    bundle finds it loaded). With the DirectRunner that is this process: the model would live
    until the interpreter exits, and TensorFlow's functions, destroyed after TensorFlow's own
    modules, then print "Exception ignored in AtomicFunction.__del__". Acquiring a placeholder
    displaces it."""
    from apache_beam.utils import shared
    shared.Shared().acquire(_Placeholder)


def _finalize(temp_dir: str, output: str, suffix: str, header: Optional[str]) -> None:
    """Moves the job's one shard to `output`; concatenates first if there are several."""
    [match] = FileSystems.match([FileSystems.join(temp_dir, f"part-*-of-*{suffix}")])
    shards = sorted(metadata.path for metadata in match.metadata_list)
    if not shards:
        raise RuntimeError(f"the Beam job wrote no output file into {temp_dir}")
    source = shards[0]
    if len(shards) > 1:
        source = FileSystems.join(temp_dir, f"combined{suffix}")
        header_bytes = (header + "\n").encode("utf-8") if header is not None else b""
        with FileSystems.create(source, compression_type=CompressionTypes.AUTO) as combined:
            for index, shard in enumerate(shards):
                with FileSystems.open(shard, compression_type=CompressionTypes.AUTO) as part:
                    if index and header_bytes:
                        if part.read(len(header_bytes)) != header_bytes:
                            raise RuntimeError(f"{shard} does not start with the header")
                    shutil.copyfileobj(part, combined, READ_CHUNK_BYTES)
    # A local rename is atomic and replaces an existing file; on an object store it is a copy
    # and a delete.
    FileSystems.rename([source], [output])


def predict_file(model: str, data: str, output: str, text_column: str = "text",
                 batch_size: int = BATCH_PREDICTION_BATCH_SIZE,
                 beam_args: Sequence[str] = ("--direct_running_mode=in_memory",
                                             "--direct_num_workers=1")
                 ) -> BatchPredictionSummary:
    """Labels every row of `data` (file or glob) with the model and writes `output`."""
    started = time.monotonic()
    if batch_size < 1:
        raise BatchPredictionError(f"--batch-size must be at least 1, got {batch_size}")
    options = pipeline_options(beam_args)
    local = _is_local_runner(options)
    data, output = _absolute(data), _absolute(output)
    if options.view_as(StandardOptions).runner == "DataflowRunner":
        local_paths = [f"{flag} {path}" for flag, path in
                       (("--model", model), ("--data", data), ("--output", output))
                       if "://" not in path]
        if local_paths:
            raise BatchPredictionError(
                f"Dataflow workers cannot read or write this machine's files: "
                f"{', '.join(local_paths)}; use gs:// paths")
    saved_model_dir = _resolve_model(model)
    paths = _matched_paths(data)
    data_format = input_format(data, paths)
    suffix = _output_suffix(output, data_format)
    if output in paths:
        raise BatchPredictionError(f"--output {output} is one of the input files")

    if data_format == "tfrecord":
        example = first_example(paths[0])
        existing = sorted(example.features.feature) if example is not None else []
        if example is not None:
            _text_of_example(example, text_column, paths[0])  # a clear error before the job
        header, delimiter = None, None
    else:
        delimiter = "," if data_format == "csv" else "\t"
        existing = read_header(paths[0], delimiter)
        if text_column not in existing:
            raise BatchPredictionError(
                f"{paths[0]}: the header has no text column {text_column!r}; its columns are "
                f"{existing}. Name the text column with --text-column.")

    temp_dir = None
    try:
        classes = model_classes(load_serving_model(saved_model_dir))
        label_name = _added_name(PREDICTED_LABEL, existing)
        if data_format == "tfrecord":
            added = (label_name, _added_name(PROBABILITIES, existing))
        else:
            added = (label_name, *(_added_name(PROBABILITY_PREFIX + name, existing)
                                   for name in classes))
            header = format_line([*existing, *added], delimiter)

        handler = KeyedModelHandler(ServingSignatureModelHandler(saved_model_dir, batch_size))
        output_dir, output_name = FileSystems.split(output)
        temp_dir = FileSystems.join(output_dir, f".{output_name}.tmp-{uuid.uuid4().hex[:12]}")
        FileSystems.mkdirs(temp_dir)
        pipeline = beam.Pipeline(options=options)
        if data_format == "tfrecord":
            keyed_texts = (pipeline
                           | "Pattern" >> beam.Create([data])
                           | "ReadTFRecords" >> beam.io.ReadAllFromTFRecord(with_filename=True)
                           | "ParseExamples" >> beam.ParDo(_ParseExamples(text_column)))
        else:
            keyed_texts = (pipeline
                           | "MatchFiles" >> fileio.MatchFiles(data)
                           | "ReadMatches" >> fileio.ReadMatches()
                           | "ReadRows" >> beam.ParDo(_ReadDelimitedRows(
                               delimiter, existing, existing.index(text_column), paths[0])))
        if not local:  # a file is read by one worker: spread its rows for inference
            keyed_texts = keyed_texts | "Spread" >> beam.Reshuffle()
        predictions = keyed_texts | "RunInference" >> RunInference(handler)
        prefix = FileSystems.join(temp_dir, "part")
        num_shards = 0 if local else 1
        if data_format == "tfrecord":
            _ = (predictions
                 | "AddFeatures" >> beam.ParDo(_ExtendExamples(*added))
                 | "Write" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=suffix,
                                                      num_shards=num_shards))
        else:
            _ = (predictions
                 | "FormatRows" >> beam.ParDo(_FormatDelimited(delimiter))
                 | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=suffix,
                                                  num_shards=num_shards, header=header))
        hide = _HideBatchErrors()
        logging.getLogger(_BEAM_DOFN_LOGGER).addFilter(hide)
        try:
            result = pipeline.run()
            result.wait_until_finish()
        finally:
            logging.getLogger(_BEAM_DOFN_LOGGER).removeFilter(hide)
        _finalize(temp_dir, output, suffix, header)
    finally:
        # Free the model while TensorFlow is still whole (at interpreter exit its functions
        # would complain), and the job's temporary files.
        load_serving_model.cache_clear()
        _release_shared_model()
        try:
            if temp_dir is not None:
                FileSystems.delete([temp_dir])
        except Exception:  # pylint: disable=broad-except  (the job's own error matters more)
            pass
    return BatchPredictionSummary(
        rows_read=_counter(result, _ROWS_READ), rows_written=_counter(result, _ROWS_WRITTEN),
        output=output, seconds=time.monotonic() - started, added=tuple(added),
        classes=tuple(classes))
