"""Property-based tests of the CSV/TSV reader (hypothesis): every generated file is either read
with every row intact or refused with a message naming the file and line.

The files are generated the way users' files come: quoting, embedded separators, quotes and
newlines, BOMs, CRLF line ends, NUL bytes, invalid UTF-8, empty and huge fields, missing and
extra fields in a row, extra columns in the header. For each file the test knows the rows it
meant to write and whether the format can carry them (a TSV has no quoting, so a tab or newline
in a text breaks its row; a NUL byte is never text). A file the format carries must be read back
row for row, text and label equal; with a fault injected into a row (a field more or less,
invalid UTF-8, a NUL byte) it must be refused with an InputDataError naming the file and the
line. Never a traceback of another kind, never a row dropped or altered.

Two levels: the reader itself (`parse_delimited_file`, many files, fast), and TextExampleGen's
real executor on Beam's DirectRunner (fewer files): the tf.Examples it writes, or its refusal
with nothing left behind.
"""
import csv
import dataclasses
import glob
import io
import os
from typing import List, Optional, Tuple

import hypothesis
import pytest
import tensorflow as tf
from hypothesis import strategies as st
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from components.text_example_gen import InputDataError, TextExampleGen, read_delimited_file
from components.text_example_gen import Executor as TextExampleGenExecutor
from test_cloud_resources import serialized

LABELS = ["positive", "negative", "0", "1", "contract: termination"]
# Characters that stress a reader: separators, quotes, line ends, NUL, a BOM, non-ASCII.
SPECIAL = ",\t\"'\n\r\x00\ufeff \\é中😀"
FAULTS = ["none", "extra field", "missing field", "invalid UTF-8", "NUL byte"]
HUGE = 300_000  # characters: beyond Python csv's default 128 KiB field limit


@dataclasses.dataclass
class GeneratedFile:
    data_format: str  # csv or tsv
    rows: List[Tuple[str, str]]  # the (text, label) rows meant to be written
    content: bytes
    fault_line: Optional[int]  # the physical line of an injected fault
    bare_carriage_return: bool = False  # the CSV writer left a text's \r unquoted

    @property
    def carriable(self) -> bool:
        """The format can carry these texts unchanged: no NUL (never text), and for a TSV,
        which has no quoting, no tab or line break inside a text. A file with texts it cannot
        carry is a different, maybe valid, file than the one meant: no reader can tell."""
        texts = [text for text, _ in self.rows]
        if any("\x00" in text for text in texts) or self.bare_carriage_return:
            return False
        return self.data_format == "csv" or not any(
            char in text for text in texts for char in "\t\n\r")

    @property
    def all_texts_blank(self) -> bool:
        return not any(text.strip() for text, _ in self.rows)


texts = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from(SPECIAL),
                               st.characters(blacklist_categories=("Cs",))), max_size=40),
    st.text(alphabet="ab ", min_size=1, max_size=20),
    st.builds(lambda char: char * HUGE, st.sampled_from("x,\"é")))


@st.composite
def generated_files(draw, max_rows=12, faults=tuple(FAULTS)):
    data_format = draw(st.sampled_from(["csv", "tsv"]))
    rows = draw(st.lists(st.tuples(texts, st.sampled_from(LABELS)), min_size=1,
                         max_size=max_rows))
    label_first = draw(st.booleans())
    extra_column = draw(st.booleans())  # an "id" column the reader must ignore
    line_end = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.booleans())
    fault = draw(st.sampled_from(faults))
    fault_row = draw(st.integers(0, len(rows) - 1))

    header = ["label", "text"] if label_first else ["text", "label"]
    if extra_column:
        header.append("id")
    lines: List[bytes] = []

    def line(fields: List[str]) -> bytes:
        if data_format == "csv":
            buffer = io.StringIO()
            try:
                csv.writer(buffer, lineterminator=line_end).writerow(fields)
                return buffer.getvalue().encode("utf-8")
            except csv.Error:  # Python's writer cannot write a NUL; quote every field by hand
                return (",".join('"' + field.replace('"', '""') + '"' for field in fields)
                        + line_end).encode("utf-8")
        return ("\t".join(fields) + line_end).encode("utf-8")

    lines.append(line(header))
    fault_line = None
    physical_line = 2
    for index, (text, label) in enumerate(rows):
        fields = [label, text] if label_first else [text, label]
        if extra_column:
            fields.append(str(index))
        encoded = line(fields)
        if index == fault_row and fault != "none":
            if fault == "extra field":
                encoded = line(fields + ["surplus"])
            elif fault == "missing field":
                encoded = line(fields[:-1])
                # A row whose one remaining field is empty is a blank line: no row at all.
                hypothesis.assume(encoded.strip() != b"")
            elif fault == "invalid UTF-8":
                encoded = b"\xff" + encoded
            elif fault == "NUL byte":
                encoded = encoded[:1] + b"\x00" + encoded[1:]
            fault_line = physical_line
        lines.append(encoded)
        physical_line += encoded.count(b"\n")
    content = (b"\xef\xbb\xbf" if bom else b"") + b"".join(lines)
    # Python's writer quotes a field holding a character of its line terminator, so with "\n"
    # it writes a lone "\r" unquoted, which readers take for a line end (Python's refuses it).
    bare = data_format == "csv" and any(
        "\r" in text and not line([text]).startswith(b'"') for text, _ in rows)
    return GeneratedFile(data_format, rows, content, fault_line, bare)


def check_outcome(generated: GeneratedFile, path: str, read) -> str:
    """Runs `read` (path -> list of (text, label)) and checks the property; returns the
    outcome's name for the record.

    - texts the format can carry, no fault: every row read back, text and label equal (or, if
      every text is blank, the file refused as a whole);
    - texts the format can carry, a fault injected: refused, naming the file and a line;
    - texts the format cannot carry: read or refused, but refused only with the file named.
    """
    try:
        rows = read(path)
    except InputDataError as error:
        message = str(error)
        context = (message, generated.content[:600], generated.fault_line)
        assert path in message, context
        if generated.carriable:
            if generated.fault_line is not None:
                assert " line " in message, context
            else:
                assert generated.all_texts_blank, ("a file the format carries was refused",
                                                   context)
                assert "is empty in all" in message, context
        return "refused, file and line named"
    if generated.carriable:
        assert generated.fault_line is None, ("a faulty row was read without an error",
                                              generated.content[:600], generated.fault_line)
        assert not generated.all_texts_blank
        assert sorted(rows) == sorted(generated.rows), "rows altered or lost"
        assert len(rows) == len(generated.rows)
        return "read, every row intact"
    return "read as the different file it is (texts the format cannot carry)"


def file_for(tmp_path_factory, generated: GeneratedFile) -> str:
    directory = tmp_path_factory.mktemp("generated")
    path = os.path.join(directory, f"data.{generated.data_format}")
    with open(path, "wb") as handle:
        handle.write(generated.content)
    return path


def read_with_the_reader(path: str):
    texts, labels = read_delimited_file(path, "text", "label")
    return list(zip(texts, labels))


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow,
                                            hypothesis.HealthCheck.function_scoped_fixture,
                                            hypothesis.HealthCheck.data_too_large])
@hypothesis.given(generated=generated_files())
def test_the_reader_reads_every_row_intact_or_names_file_and_line(generated, tmp_path_factory,
                                                                  bad_input_record):
    path = file_for(tmp_path_factory, generated)
    outcome = check_outcome(generated, path, read_with_the_reader)
    bad_input_record("CSV/TSV file (reader)", describe(generated), outcome)


def describe(generated: GeneratedFile) -> str:
    return (f"{generated.data_format}, {len(generated.rows)} rows, "
            f"{'fault at line %d' % generated.fault_line if generated.fault_line else 'no fault'}")


def run_text_example_gen(path: str, output_dir: str):
    """TextExampleGen's executor, as TFX's launcher runs it (span 0, one input file), on Beam's
    DirectRunner; returns the (text, label) of every tf.Example written, in all splits."""
    component = TextExampleGen(
        input_base=os.path.dirname(path), text_column="text", label_column="label",
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
            name="single", pattern=os.path.basename(path))]))
    exec_properties = serialized(component.exec_properties)
    exec_properties.update(span=0, version=None)
    examples = standard_artifacts.Examples()
    examples.uri = output_dir
    context = base_beam_executor.BaseBeamExecutor.Context(
        tmp_dir=os.path.join(output_dir, ".tmp"), unique_id="property",
        beam_pipeline_args=["--direct_running_mode=in_memory"])
    TextExampleGenExecutor(context).Do({}, {"examples": [examples]}, exec_properties)
    rows = []
    for record_file in glob.glob(os.path.join(output_dir, "Split-*", "*.gz")):
        for record in tf.data.TFRecordDataset(record_file, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            feature = example.features.feature
            rows.append((feature["text"].bytes_list.value[0].decode("utf-8"),
                         feature["label"].bytes_list.value[0].decode("utf-8")))
    return rows


EXECUTOR_EXAMPLES = 8


@hypothesis.settings(max_examples=EXECUTOR_EXAMPLES, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow,
                                            hypothesis.HealthCheck.function_scoped_fixture,
                                            hypothesis.HealthCheck.data_too_large])
# Half the files without an injected fault, so that both outcomes are seen in few examples.
@hypothesis.given(generated=generated_files(max_rows=6, faults=("none",) * 4 + tuple(FAULTS[1:])))
def test_text_example_gen_writes_every_row_intact_or_refuses_and_leaves_nothing(
        generated, tmp_path_factory, bad_input_record):
    path = file_for(tmp_path_factory, generated)
    output_dir = str(tmp_path_factory.mktemp("examples"))
    outcome = check_outcome(generated, path, lambda p: run_text_example_gen(p, output_dir))
    if outcome.startswith("refused"):
        assert not glob.glob(os.path.join(output_dir, "Split-*")), \
            "a refused file left examples behind"
    bad_input_record("CSV/TSV file (TextExampleGen)", describe(generated), outcome)
