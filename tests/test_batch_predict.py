"""`bertpipe predict --model DIR --data FILE --output FILE`: batch prediction through Beam
RunInference (serving/batch_predict.py) on the model the demo pipeline run pushed, checked
against in-process predictions (serving.predict.predict) row by row."""
import csv
import itertools
import os

import pytest

from conftest import read_tsv
from pipeline import cli
from serving import batch_predict

PROBABILITY_TOLERANCE = 1e-5
# Texts beyond SST-2's single-line ASCII-ish sentences: quoting, a line break inside a quoted
# field, an empty text (valid: the model labels it), non-ASCII.
SPECIAL_TEXTS = ['multi\nline, "quoted" text', "", "café 北京 naïve", "tab\tinside, comma"]


@pytest.fixture(scope="module")
def model_dir(demo_first_run):
    """<serving root>/text_classifier of the demo run (version 1; a tiny BERT)."""
    return demo_first_run.resolved().model_dir


def expected_predictions(model_dir, texts, batch=2500):
    from serving.predict import predict
    results = []
    for start in range(0, len(texts), batch):
        results += predict(model_dir, texts[start:start + batch])
    return results


def assert_matches(rows, label_of, probabilities_of, texts, expected):
    """Each row's label and probabilities equal the in-process prediction of its text."""
    assert len(rows) == len(texts) == len(expected)
    mismatched = [i for i, (row, want) in enumerate(zip(rows, expected))
                  if label_of(row) != want["label"]]
    assert not mismatched, [(texts[i], label_of(rows[i]), expected[i]) for i in mismatched[:5]]
    worst = max(abs(got - want) for row, prediction in zip(rows, expected)
                for got, want in zip(probabilities_of(row),
                                     prediction["probabilities"].values()))
    assert worst <= PROBABILITY_TOLERANCE, worst


def sst2_rows(sst2_dir, name, count):
    """`count` (sentence, label) rows of an SST-2 file, cycled if it has fewer."""
    rows = read_tsv(sst2_dir / name)[1:]
    return list(itertools.islice(itertools.cycle(rows), count))


def test_ten_thousand_csv_rows_are_labeled_like_in_process_predictions(
        model_dir, sst2_dir, tmp_path, capsys):
    rows = [[str(i), sentence, label]
            for i, (sentence, label) in enumerate(sst2_rows(sst2_dir, "train.tsv", 10_000))]
    for i, text in enumerate(SPECIAL_TEXTS):
        rows[1000 * i + 7][1] = text
    data, output = tmp_path / "reviews.csv", tmp_path / "out" / "labeled.csv"
    with open(data, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["id", "text", "gold"], *rows])

    assert cli.main(["predict", "--model", model_dir, "--data", str(data),
                     "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert f"10000 rows read, 10000 rows written to {output} in " in printed
    assert "rows/s" in printed

    with open(output, encoding="utf-8", newline="") as handle:
        header, *written = list(csv.reader(handle))
    assert header == ["id", "text", "gold", "label", "probability_negative",
                      "probability_positive"]
    assert len(written) == 10_000
    by_id = {row[0]: row for row in written}  # Beam promises no order: join on the id
    assert sorted(by_id, key=int) == [row[0] for row in rows]
    written = [by_id[row[0]] for row in rows]
    assert [row[:3] for row in written] == rows  # every input column, unchanged
    texts = [row[1] for row in rows]
    assert_matches(written, lambda row: row[3], lambda row: map(float, row[4:]), texts,
                   expected_predictions(model_dir, texts))
    assert sorted(os.listdir(output.parent)) == ["labeled.csv"]  # no temporary files left


def test_tsv_with_a_label_column_gets_a_predicted_label_column(model_dir, sst2_dir, tmp_path,
                                                                capsys):
    rows = sst2_rows(sst2_dir, "dev.tsv", 200)
    data, output = tmp_path / "dev.tsv", tmp_path / "dev_labeled.tsv"
    with open(data, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None,
                   lineterminator="\n").writerows([["sentence", "label"], *rows])

    assert cli.main(["predict", "--model", model_dir, "--data", str(data), "--output",
                     str(output), "--text-column", "sentence", "--batch-size", "16"]) == 0
    assert "added: predicted_label, probability_negative" in capsys.readouterr().out
    header, *written = read_tsv(output)
    assert header == ["sentence", "label", "predicted_label", "probability_negative",
                      "probability_positive"]
    assert sorted(row[:2] for row in written) == sorted(rows)
    written.sort(key=lambda row: rows.index(row[:2]))
    texts = [row[0] for row in rows]
    assert_matches(written, lambda row: row[2], lambda row: map(float, row[3:]), texts,
                   expected_predictions(model_dir, texts))


def test_tfrecord_examples_get_label_and_probabilities_features(model_dir, sst2_dir, tmp_path):
    import tensorflow as tf
    rows = sst2_rows(sst2_dir, "dev.tsv", 200)
    data = tmp_path / "examples" / "data_tfrecord-00000-of-00001.gz"  # TFX's own naming
    data.parent.mkdir()
    with tf.io.TFRecordWriter(str(data), "GZIP") as writer:
        for index, (sentence, label) in enumerate(rows):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "text": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[sentence.encode()])),
                "gold": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
                "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
            })).SerializeToString())
    output = tmp_path / "labeled.tfrecord.gz"

    assert cli.main(["predict", "--model", model_dir, "--data", str(data.parent / "*"),
                     "--output", str(output)]) == 0
    examples = [tf.train.Example.FromString(record.numpy())
                for record in tf.data.TFRecordDataset(str(output), "GZIP")]
    examples.sort(key=lambda example: example.features.feature["id"].int64_list.value[0])
    assert [e.features.feature["id"].int64_list.value[0] for e in examples] == list(range(200))
    assert sorted(examples[0].features.feature) == ["gold", "id", "label", "probabilities",
                                                    "text"]
    texts = [sentence for sentence, _ in rows]
    assert [e.features.feature["text"].bytes_list.value[0].decode() for e in examples] == texts
    assert_matches(examples,
                   lambda e: e.features.feature["label"].bytes_list.value[0].decode(),
                   lambda e: e.features.feature["probabilities"].float_list.value,
                   texts, expected_predictions(model_dir, texts))


# --- bad input: a clear error naming file and line, and no output --------------------------

def test_missing_text_column_is_refused_before_the_job(model_dir, tmp_path, capsys,
                                                       bad_input_record):
    data, output = tmp_path / "reviews.csv", tmp_path / "labeled.csv"
    data.write_text("review,label\nfine,positive\n", encoding="utf-8")
    assert cli.main(["predict", "--model", model_dir, "--data", str(data),
                     "--output", str(output)]) == 2
    assert (f"error: {data}: the header has no text column 'text'; its columns are "
            "['review', 'label']") in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["reviews.csv"]  # no output, no temporary files
    bad_input_record("bertpipe predict --data", "missing text column", "exit 2, no output")


GOOD_ROWS = "".join(f"review {i} was fine,positive\n" for i in range(300))
BAD_ROWS = {
    "row with an extra field": ("text,label\n" + GOOD_ROWS + "too,many,fields\n",
                                "line 302: 3 fields, but the header has 2"),
    "non-UTF-8 bytes": (("text,label\n" + GOOD_ROWS).encode() + b"caf\xe9,positive\n",
                        "line 302: not valid UTF-8 (byte 0xe9 at byte offset 3)"),
    "unclosed quote": ("text,label\n" + GOOD_ROWS + '"never closed,positive\n',
                       "line 302: the file ends inside a quoted field"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_bad_row_fails_the_job_and_leaves_the_previous_output(case, model_dir, tmp_path, capsys,
                                                              bad_input_record):
    content, expected = BAD_ROWS[case]
    data, output = tmp_path / "reviews.csv", tmp_path / "labeled.csv"
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    output.write_text("an earlier run's output\n")
    assert cli.main(["predict", "--model", model_dir, "--data", str(data),
                     "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert f"error: {data} {expected}" in err
    assert "Traceback" not in err
    assert output.read_text() == "an earlier run's output\n"  # untouched, not half-written
    assert sorted(os.listdir(tmp_path)) == ["labeled.csv", "reviews.csv"]  # no temp files
    bad_input_record("bertpipe predict --data", case, "exit 2, output untouched")


def test_texts_and_data_are_one_or_the_other(tmp_path, capsys):
    data = str(tmp_path / "x.csv")
    assert cli.main(["predict", "--model", "m", "--data", data, "--output", data + ".out.csv",
                     "great food"]) == 2
    assert "give either texts to classify or --data, not both" in capsys.readouterr().err
    assert cli.main(["predict", "--model", "m"]) == 2
    assert "give texts to classify, or --data FILE --output FILE" in capsys.readouterr().err
    assert cli.main(["predict", "--model", "m", "--data", data]) == 2
    assert "--data FILE and --output FILE go together" in capsys.readouterr().err


def test_several_shards_are_concatenated_with_one_header(tmp_path):
    """The fallback of _finalize (a runner that wrote more than one file)."""
    header = "text,label"
    for index, lines in enumerate((["a,1", "b,2"], ["c,3"], [])):
        (tmp_path / f"part-{index:05d}-of-00003.csv").write_text(
            "\n".join([header, *lines]) + "\n")
    output = tmp_path / "out.csv"
    batch_predict._finalize(str(tmp_path), str(output), ".csv", header)
    assert output.read_text() == "text,label\na,1\nb,2\nc,3\n"


# --- Dataflow: the options only (no network, no job) ---------------------------------------

def test_dataflow_options_stand_in_without_network(monkeypatch, capsys):
    """Stand-in for a Dataflow run: the flags `--beam-runner dataflow` gives the job are the
    pipeline's own Dataflow flags (RuntimeConfig.beam_pipeline_args); nothing is submitted."""
    from apache_beam.options.pipeline_options import (DebugOptions, GoogleCloudOptions,
                                                      StandardOptions, WorkerOptions)
    calls = []
    monkeypatch.setattr(batch_predict, "predict_file",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or "summary")
    assert cli.main(["predict", "--model", "gs://bucket/serving/text_classifier",
                     "--data", "gs://bucket/in/*.csv", "--output", "gs://bucket/out/labeled.csv",
                     "--beam-runner", "dataflow", "--gcp-project", "my-project",
                     "--gcp-region", "europe-west4", "--beam-temp-location", "gs://bucket/tmp",
                     "--image", "europe-docker.pkg.dev/my-project/repo/bertpipe:1",
                     "--batch-size", "32"]) == 0
    [(args, kwargs)] = calls
    assert args == ("gs://bucket/serving/text_classifier", "gs://bucket/in/*.csv",
                    "gs://bucket/out/labeled.csv")
    assert kwargs["batch_size"] == 32 and kwargs["text_column"] == "text"
    options = batch_predict.pipeline_options(kwargs["beam_args"])
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == (
        "my-project", "europe-west4", "gs://bucket/tmp")
    assert options.view_as(WorkerOptions).sdk_container_image == \
        "europe-docker.pkg.dev/my-project/repo/bertpipe:1"
    assert "use_runner_v2" in options.view_as(DebugOptions).experiments
    assert not batch_predict._is_local_runner(options)

    # Without a project, region and temp location: refused by the pipeline's own check.
    assert cli.main(["predict", "--model", "gs://b/m", "--data", "gs://b/in.csv",
                     "--output", "gs://b/out.csv", "--beam-runner", "dataflow"]) == 2
    assert "beam_runner 'dataflow' needs gcp_project" in capsys.readouterr().err


def test_dataflow_refuses_local_paths_before_anything(tmp_path):
    with pytest.raises(batch_predict.BatchPredictionError,
                       match="Dataflow workers cannot read or write this machine's files"):
        batch_predict.predict_file(
            str(tmp_path / "model"), str(tmp_path / "in.csv"), str(tmp_path / "out.csv"),
            beam_args=["--runner=DataflowRunner", "--project=p", "--region=r",
                       "--temp_location=gs://b/t"])
    assert os.listdir(tmp_path) == []
