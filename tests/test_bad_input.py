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
def test_bad_input_file_fails_in_example_gen_with_file_and_line(case, tmp_path,
                                                                 bad_input_record):
    content, overrides, expected = CASES[case]
    message = run_expecting(InputDataError, csv_config(tmp_path, content, **overrides))
    bad_input_record("input file, whole pipeline", case, "InputDataError before Transform")
    assert expected in message
    assert "nothing was written" in message


def test_label_unknown_to_the_curated_schema_stops_before_transform(sst2_sample, tmp_path,
                                                                    bad_input_record):
    rows = read_tsv(sst2_sample / "dev.tsv")
    write_tsv(tmp_path / "dev.tsv", rows[:60] + [["a row with a new label ", "neutral"]])
    config = PipelineConfig.from_settings(
        train_data=str(sst2_sample / "train.tsv"), eval_data=str(tmp_path / "dev.tsv"),
        text_column="sentence", schema_path=str(REPO_ROOT / "schemas" / "sst2.pbtxt"),
        output_dir=str(tmp_path / "runs"), train=False)
    message = run_expecting(DataValidationError, config)
    bad_input_record("input file, whole pipeline", "a label the curated schema lacks",
                     "DataValidationError before Transform")
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


# --- settings the checkpoint cannot take: refused before any component runs -------------------


def checkpoint_variant(tmp_path, **config_changes):
    """The tiny checkpoint (no weights needed: nothing may get as far as loading them) with
    config.json changed; a value None removes the key, `vocab=False` removes vocab.txt."""
    import json
    from conftest import write_tiny_checkpoint
    directory = write_tiny_checkpoint(tmp_path / "checkpoint")
    if config_changes.pop("vocab", True) is False:
        (directory / "vocab.txt").unlink()
    settings = json.loads((directory / "config.json").read_text())
    settings.update(config_changes)
    (directory / "config.json").write_text(json.dumps(settings))
    return directory


@pytest.mark.parametrize("changes, max_seq_length, message", [
    ({}, 100, "max_seq_length (--max-seq-length) 100 is above the checkpoint's 64 position "
              "embeddings (max_position_embeddings in "),
    ({"model_type": "roberta"}, 32, "model_type 'roberta' in config.json; the pipeline "
                                    "fine-tunes the BERT architecture"),
    ({"vocab": False}, 32, "has no vocab.txt; expected a Hugging Face BERT-family model"),
])
def test_settings_the_checkpoint_cannot_take_are_refused_before_any_component(
        tmp_path, capsys, changes, max_seq_length, message, bad_input_record):
    from pipeline import cli
    checkpoint = checkpoint_variant(tmp_path, **changes)
    status = cli.main(["run", "--train-data", str(REPO_ROOT / "data" / "demo" / "train.csv"),
                       "--checkpoint", str(checkpoint), "--max-seq-length", str(max_seq_length),
                       "--output-dir", str(tmp_path / "runs")])
    error = capsys.readouterr().err
    assert status == 2
    assert message in error
    assert not (tmp_path / "runs").exists()  # no component ran, nothing was written
    bad_input_record("bertpipe run settings", message.split(";")[0][:60],
                     f"exit {status}, no component run")


# --- `bertpipe evaluate` on labels that are not the model's classes ---------------------------


def test_evaluate_refuses_a_file_whose_labels_are_not_the_models_classes(
        demo_first_run, sst2_dir, capsys, bad_input_record):
    from pipeline import cli
    model = demo_first_run.resolved().model_dir  # classes 'negative', 'positive'
    data = sst2_dir / "test.tsv"  # labels '0' and '1'
    assert cli.main(["evaluate", "--model", model, "--data", str(data),
                     "--text-column", "sentence"]) == 2
    captured = capsys.readouterr()
    assert (f"error: no label in {data} (column 'label') is a class of the model: the data has "
            "['0', '1'], the model's classes are ['negative', 'positive']") in captured.err
    assert "accuracy" not in captured.out
    bad_input_record("bertpipe evaluate", "no label of the file is a class", "exit 2")


def test_evaluate_warns_about_rows_whose_label_is_not_a_class(demo_first_run, tmp_path, capsys,
                                                              bad_input_record):
    from pipeline import cli
    rows = (REPO_ROOT / "data" / "demo" / "eval.csv").read_text(encoding="utf-8").splitlines()
    data = tmp_path / "eval.csv"
    data.write_text("\n".join(rows + ['"It was fine, I guess.",neutral'] * 2) + "\n",
                    encoding="utf-8")
    assert cli.main(["evaluate", "--model", demo_first_run.resolved().model_dir,
                     "--data", str(data)]) == 0
    captured = capsys.readouterr()
    assert (f"warning: 2 of {len(rows) + 1} rows of {data} (column 'label') have a label that "
            "is not a class of the model ('neutral' (2)); they count as wrong") in captured.err
    assert f"{len(rows) + 1} examples, accuracy 0." in captured.out
    bad_input_record("bertpipe evaluate", "some labels are not classes", "exit 0, warning")
