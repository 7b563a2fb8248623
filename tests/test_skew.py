"""Training/serving skew: the local server's request log and `bertpipe skew`.

The request logger on its own (sampled PredictionLog records, files visible only when whole,
rotation, a full queue dropping instead of blocking); then one pipeline run on the demo data
with the tiny BERT (text anomalies only warned of: the 28-token vocabulary makes most tokens
[UNK]), whose pushed model one `bertpipe serve` process serves with every request logged; and
`bertpipe skew` on what it logged (texts like the training data: no skew) and on texts three
times as long (skew on the text lengths, exit 1, the HTML page written).
"""
import csv
import dataclasses
import glob
import os
import pathlib
import random
import threading
import time

import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

from conftest import REPO_ROOT, TINY_VOCAB_SETTINGS
from pipeline import cli, runs, skew
from serving import request_log, server_process
from serving.request_log import RequestLogger, predict_log_from_texts
from trainer_harness import subprocess_env

DEMO = REPO_ROOT / "data" / "demo"


def read_logs(directory):
    """[PredictionLog] of the closed log files in `directory`, oldest file first."""
    logs = []
    for path in sorted(glob.glob(os.path.join(directory, request_log.LOG_FILE_PATTERN))):
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    return logs


def logged_texts(log):
    return [text.decode() for text in
            tf.make_ndarray(log.predict_log.request.inputs["text"]).reshape(-1)]


def rest_record(texts, version=1):
    return lambda: predict_log_from_texts("classifier", None, "", texts, version,
                                          {"label": [b"positive"] * len(texts)}, 1.0)


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --------------------------------------------------------------------------- the logger


def test_logger_writes_prediction_logs_in_rotated_files_readable_by_tensorflow(tmp_path):
    logger = RequestLogger(str(tmp_path), 1.0, max_records_per_file=3)
    for index in range(7):
        assert logger.maybe_log(rest_record([f"text {index}", "second"]))
    logger.close()
    files = sorted(glob.glob(str(tmp_path / "requests-*.tfrecord")))
    assert len(files) == 3 and not glob.glob(str(tmp_path / ".*"))  # 3 + 3 + 1, nothing .tmp
    logs = read_logs(tmp_path)
    assert [logged_texts(log) for log in logs] == [[f"text {index}", "second"]
                                                   for index in range(7)]
    first = logs[0]
    assert first.predict_log.request.model_spec.name == "classifier"
    assert first.predict_log.response.model_spec.version.value == 1
    assert first.predict_log.response.model_spec.signature_name == "serving_default"
    assert first.log_metadata.sampling_config.sampling_rate == 1.0
    assert list(first.log_metadata.saved_model_tags) == ["serve"]
    assert logger.logged == 7 and logger.dropped == logger.failed == 0


def test_an_open_file_stays_hidden_until_it_is_closed(tmp_path):
    logger = RequestLogger(str(tmp_path), 1.0, max_file_seconds=3600)
    logger.maybe_log(rest_record(["a"]))
    wait_until(lambda: logger.logged == 1)
    assert glob.glob(str(tmp_path / request_log.LOG_FILE_PATTERN)) == []
    [tmp_file] = glob.glob(str(tmp_path / ".requests-*.tfrecord.tmp"))
    logger.close()
    [closed] = glob.glob(str(tmp_path / request_log.LOG_FILE_PATTERN))
    assert os.path.basename(tmp_file) == f".{os.path.basename(closed)}.tmp"
    assert os.path.basename(closed).endswith(f"-{os.getpid()}.tfrecord")


def test_a_file_is_closed_after_max_file_seconds_without_new_requests(tmp_path):
    logger = RequestLogger(str(tmp_path), 1.0, max_file_seconds=0.2)
    logger.maybe_log(rest_record(["a"]))
    wait_until(lambda: glob.glob(str(tmp_path / request_log.LOG_FILE_PATTERN)))
    assert [logged_texts(log) for log in read_logs(tmp_path)] == [["a"]]
    logger.close()


def test_requests_are_sampled_at_the_rate(tmp_path):
    logger = RequestLogger(str(tmp_path), 0.2, max_queued=10_000,
                           random_number=random.Random(7).random)
    queued = sum(logger.maybe_log(rest_record(["a"])) for _ in range(5000))
    logger.close()
    assert 900 <= queued <= 1100  # 1000 expected; a binomial's sd is 28
    assert len(read_logs(tmp_path)) == queued == logger.logged


def test_a_full_queue_drops_records_and_never_blocks_a_request(tmp_path, caplog):
    release = threading.Event()

    def slow_record():
        release.wait()
        return rest_record(["slow"])()

    logger = RequestLogger(str(tmp_path), 1.0, max_queued=1)
    logger.maybe_log(slow_record)  # taken by the writer, which waits
    wait_until(lambda: logger._queue.empty())
    started = time.monotonic()
    results = [logger.maybe_log(rest_record([str(index)])) for index in range(5)]
    assert time.monotonic() - started < 0.5
    assert results == [True, False, False, False, False] and logger.dropped == 4
    assert sum("dropped" in record.getMessage() for record in caplog.records) == 1
    release.set()
    logger.close()
    assert [logged_texts(log) for log in read_logs(tmp_path)] == [["slow"], ["0"]]


def test_a_record_that_cannot_be_built_is_counted_not_raised(tmp_path):
    logger = RequestLogger(str(tmp_path), 1.0)
    logger.maybe_log(lambda: 1 / 0)
    logger.maybe_log(rest_record(["fine"]))
    logger.close()
    assert (logger.failed, logger.logged) == (1, 1)
    assert [logged_texts(log) for log in read_logs(tmp_path)] == [["fine"]]


@pytest.mark.parametrize("rate", ["0", "1.5", "-0.1", "often"])
def test_sampling_rate_flag_is_checked(rate, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["serve", "--model-root", "m",
                                       "--request-log-sampling-rate", rate])
    assert exited.value.code == 2
    assert "--request-log-sampling-rate" in capsys.readouterr().err


# ------------------------------------------------------------- a real run, served and logged


def demo_texts(name="train.csv"):
    with open(DEMO / name, encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def skew_run(tiny_bert, tmp_path_factory):
    """One pipeline run on the demo data with the tiny BERT, blessed and pushed as version 1
    (its own: the session's demo run may have pushed more versions by now)."""
    from pipeline import local_runner
    from pipeline.config import PipelineConfig
    config = PipelineConfig.from_settings(
        train_data=str(DEMO / "train.csv"), eval_data=str(DEMO / "eval.csv"),
        schema_path=str(REPO_ROOT / "schemas" / "demo.pbtxt"), checkpoint=str(tiny_bert),
        max_seq_length=32, epochs=1, train_batch_size=16, min_accuracy=0.0,
        max_accuracy_drop=1.0, output_dir=str(tmp_path_factory.mktemp("skew_runs")),
        **TINY_VOCAB_SETTINGS)
    local_runner.run(config)
    return config


@dataclasses.dataclass
class LoggedRequests:
    """What the logging server was sent, and the directory it logged to."""

    log_dir: pathlib.Path
    model_name: str
    texts: list
    grpc_request: predict_pb2.PredictRequest
    grpc_response: predict_pb2.PredictResponse


@pytest.fixture(scope="module")
def logged_requests(skew_run, tmp_path_factory):
    """`bertpipe serve` on the run's pushed model, logging every request: half the training
    texts sent over REST and gRPC, then the server stopped (SIGTERM), which closes the log."""
    import grpc
    directory = tmp_path_factory.mktemp("logged_server")
    log_dir = directory / "requests"
    launched = server_process.start(
        skew_run.model_dir, directory / "server.log", env=subprocess_env(),
        flags=["--request-log-dir", str(log_dir), "--request-log-sampling-rate", "1"])
    try:
        texts = demo_texts()[::2]
        rest_texts, grpc_texts = texts[:-8], texts[-8:]
        name = launched.model_name
        for start in range(0, len(rest_texts), 8):
            answer = requests.post(f"{launched.rest_url}/v1/models/{name}:predict",
                                   json={"instances": rest_texts[start:start + 8]}, timeout=60)
            assert answer.status_code == 200, answer.text
        grpc_request = predict_pb2.PredictRequest()
        grpc_request.model_spec.name = name
        grpc_request.inputs["text"].CopyFrom(tf.make_tensor_proto(
            [text.encode() for text in grpc_texts], shape=[8]))
        with grpc.insecure_channel(launched.grpc_target) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                grpc_request, timeout=60)
    finally:
        output = launched.stop()
    assert launched.process.returncode == 0 and "server stopped" in output, launched.log_tail()
    return LoggedRequests(log_dir, name, texts, grpc_request, response)


def test_the_local_server_logs_rest_and_grpc_predict_requests(logged_requests):
    log_dir = logged_requests.log_dir
    logs = read_logs(log_dir)
    assert not glob.glob(str(log_dir / ".*.tmp"))
    assert [text for log in logs for text in logged_texts(log)] == logged_requests.texts
    grpc_log = logs[-1].predict_log
    assert grpc_log.request == logged_requests.grpc_request  # as received
    assert grpc_log.response == logged_requests.grpc_response
    rest_log = logs[0].predict_log
    assert rest_log.request.model_spec.name == logged_requests.model_name
    assert rest_log.response.model_spec.version.value == 1
    assert set(rest_log.response.outputs) == {"probabilities", "label", "classes"}


def run_skew(capsys, *args):
    code = cli.main(["skew", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_skew_of_requests_like_the_training_data_is_none(logged_requests, skew_run, capsys):
    log_dir = logged_requests.log_dir
    code, out, err = run_skew(capsys, "--request-log", log_dir, "--run-dir", skew_run.run_dir,
                              "--model-root", skew_run.model_dir)
    assert code == 0, out + err
    run_id = runs.pushes(skew_run.run_dir)[-1].run_id
    assert f"model version 1 ({skew_run.model_dir}/1), trained by run {run_id}" in out
    assert "no skew" in out and "SKEW" not in out
    assert os.path.isfile(log_dir / "skew.html")


def test_skew_of_texts_three_times_as_long_is_an_anomaly(skew_run, tmp_path, capsys):
    logger = RequestLogger(str(tmp_path / "long"), 1.0)
    texts = demo_texts("eval.csv")
    for start in range(0, len(texts), 10):
        logger.maybe_log(rest_record([" ".join([text] * 3) for text in
                                      texts[start:start + 10]]))
    logger.close()
    html = tmp_path / "page.html"
    code, out, err = run_skew(capsys, "--request-log", tmp_path / "long", "--run-dir",
                              skew_run.run_dir, "--html", html)
    assert code == 1, out + err
    assert f"{len(texts)} texts" in out
    for feature in ("text_length", "token_count"):
        line = next(line for line in out.splitlines() if line.startswith(feature))
        assert line.endswith("SKEW"), out
        divergence, bound = line.split()[-3:-1]
        assert float(divergence) > float(bound) == 0.1
        assert (f"skew anomaly: {feature}: The approximate Jensen-Shannon divergence between "
                f"training and serving is") in out
    assert "above the threshold 0.1" in out
    page = html.read_text()
    assert "Training/serving skew: text_length, token_count" in page and "p50" in page


def test_skew_names_the_file_and_record_it_cannot_read(skew_run, tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    with tf.io.TFRecordWriter(str(logs / "a.tfrecord")) as writer:
        writer.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog()).SerializeToString())
        writer.write(b"not a PredictionLog \xff\xff")
    code, out, err = run_skew(capsys, "--request-log", logs, "--run-dir", skew_run.run_dir)
    assert code == 2
    assert f"{logs / 'a.tfrecord'} record 0: the Predict request has no input 'text'" in err

    good = tmp_path / "good.tfrecord"
    with tf.io.TFRecordWriter(str(good)) as writer:
        for _ in range(2):
            writer.write(rest_record(["a text"])().SerializeToString())
    (logs / "a.tfrecord").write_bytes(good.read_bytes()[:-3])  # a torn last record
    code, out, err = run_skew(capsys, "--request-log", logs, "--run-dir", skew_run.run_dir)
    assert code == 2
    assert f"{logs / 'a.tfrecord'}: cannot read record 1: truncated record" in err, err


def test_skew_reads_classify_logs_of_tf_examples(skew_run, tmp_path):
    example = tf.train.Example()
    example.features.feature["text"].bytes_list.value.append(b"great food")
    log = prediction_log_pb2.PredictionLog()
    log.classify_log.request.input.example_list.examples.append(example)
    assert skew.texts_of_record(log, "text", "here") == [b"great food"]


def test_a_copied_serving_root_is_matched_by_the_model_fingerprint(skew_run, tmp_path):
    import shutil
    copy = tmp_path / "elsewhere" / "text_classifier"
    shutil.copytree(skew_run.model_dir, copy)
    served = skew.find_served_run(skew_run.run_dir, str(copy))
    assert (served.version, served.version_dir) == (1, str(copy / "1"))
    assert served.run.run_id == runs.pushes(skew_run.run_dir)[-1].run_id
    with pytest.raises(skew.SkewError, match="has no version 2; it has \\[1\\]"):
        skew.find_served_run(skew_run.run_dir, str(copy), 2)


def test_the_readmes_tf_serving_logging_config_is_a_model_server_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Training/serving skew"):]
    block = next(block for block in section.split("```")[1::2] if "logging_config" in block)
    config = text_format.Parse(block, model_server_config_pb2.ModelServerConfig())
    logging_config = config.model_config_list.config[0].logging_config
    assert logging_config.sampling_config.sampling_rate == 0.1
