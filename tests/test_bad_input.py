"""Bad input ends in a clear error or a validation anomaly naming the problem, and nothing is
transformed. Each case runs the real pipeline (LocalDagRunner, Beam DirectRunner)."""
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT, read_tsv, write_tsv
from components.text_example_gen import InputDataError
from components.validation_gate import DataValidationError
from pipeline import local_runner
from pipeline.cli import find_user_error
from pipeline.config import PipelineConfig


def run_expecting(error_type, config):
    with pytest.raises(Exception) as raised:
        local_runner.run(config)
    error = find_user_error(raised.value)
    assert isinstance(error, error_type), f"got {raised.value!r}"
    transform_dir = os.path.join(config.resolved().pipeline_root, "Transform")
    assert not os.path.exists(transform_dir), "Transform ran despite bad input"
    return str(error)


def csv_config(tmp_path, train_text, **overrides):
    train = tmp_path / "train.csv"
    train.write_bytes(train_text if isinstance(train_text, bytes) else train_text.encode())
    return PipelineConfig.from_settings(train_data=str(train), output_dir=str(tmp_path / "runs"),
                          train=False, **overrides)


GOOD_ROWS = "".join(f"review number {i} was fine,positive\nreview {i} was dull,negative\n"
                    for i in range(10))

CASES = {
    "missing text column": ("review,label\n" + GOOD_ROWS, {},
                            "the header has no text column 'text'; its columns are "
                            "['review', 'label']"),
    "missing label column": ("text,sentiment\n" + GOOD_ROWS, {},
                             "the header has no label column 'label'"),
    "empty file": ("", {}, "train.csv: the file is empty"),
    "non-UTF-8 bytes": (("text,label\n" + GOOD_ROWS).encode() + b"caf\xe9,positive\n", {},
                        "train.csv line 22: not valid UTF-8 (byte 0xe9 at byte offset 3)"),
    "row with an extra field": ("text,label\n" + GOOD_ROWS + "too,many,fields\n", {},
                                "train.csv line 22: 3 fields, but the header has 2"),
    "entirely empty text column": ("text,label\n" + ",positive\n,negative\n" * 10, {},
                                   "the text column 'text' is empty in all 20 rows"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_file_fails_in_example_gen_with_file_and_line(case, tmp_path):
    content, overrides, expected = CASES[case]
    message = run_expecting(InputDataError, csv_config(tmp_path, content, **overrides))
    assert expected in message
    assert "nothing was written" in message


def test_label_unknown_to_the_curated_schema_stops_before_transform(sst2_sample, tmp_path):
    rows = read_tsv(sst2_sample / "dev.tsv")
    write_tsv(tmp_path / "dev.tsv", rows[:60] + [["a row with a new label ", "neutral"]])
    config = PipelineConfig.from_settings(
        train_data=str(sst2_sample / "train.tsv"), eval_data=str(tmp_path / "dev.tsv"),
        text_column="sentence", schema_path=str(REPO_ROOT / "schemas" / "sst2.pbtxt"),
        output_dir=str(tmp_path / "runs"), train=False)
    message = run_expecting(DataValidationError, config)
    assert ("split 'eval': feature 'label': Unexpected string values: Examples contain values "
            "missing from the schema: neutral") in message


def test_command_line_prints_the_problem_without_a_traceback(tmp_path):
    config = csv_config(tmp_path, "text,label\n" + GOOD_ROWS + "too,many,fields\n")
    bertpipe = shutil.which("bertpipe", path=os.path.dirname(os.sys.executable))
    result = subprocess.run([bertpipe, "run", "--train-data", config.data.train_data,
                             "--output-dir", config.runtime.output_dir], capture_output=True, text=True)
    assert result.returncode == 2
    assert "error: The input data has problems; nothing was written:" in result.stderr
    assert "line 22: 3 fields, but the header has 2" in result.stderr
    assert "Traceback" not in result.stderr
