"""Scheduled retraining on spans, end to end with a tiny BERT, as `make retrain` runs it.

Span 1 trains and pushes; the same call again, with no new data, does nothing (no execution, no
push); the same call with another learning rate trains again (it would compute another model);
span 2 arrives and the run reads the rolling window of spans 1 and 2, warm-starts the Trainer
from the latest blessed model, evaluates against the served version (that model), and pushes a
new version.
"""
import csv
import glob
import shutil

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from conftest import REPO_ROOT, TINY_VOCAB_FLAGS
from pipeline import cli
from pipeline.config import PipelineConfig
from test_pipeline_end_to_end import versions
from trainer_harness import make_tiny_checkpoint_with_weights

DEMO = REPO_ROOT / "data" / "demo"


def write_span(spans_dir, span, rows, eval_rows, header):
    directory = spans_dir / f"span-{span}"
    directory.mkdir(parents=True)
    for name, part in (("train.csv", rows), ("eval.csv", eval_rows)):
        with open(directory / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *part])


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def executions_by_component(store):
    """{component id: [executions]} of the pipeline's ML Metadata."""
    found = {}
    for node in store.get_contexts_by_type("node"):
        found[node.name.split(".", 1)[1]] = store.get_executions_by_context(node.id)
    return found


def artifact_inputs(store, execution, type_name):
    ids = [event.artifact_id for event in store.get_events_by_execution_ids([execution.id])
           if event.type == metadata_store_pb2.Event.INPUT]
    type_id = store.get_artifact_type(type_name).id
    return [artifact for artifact in store.get_artifacts_by_id(ids) if artifact.type_id == type_id]


def artifact_outputs(store, execution):
    ids = [event.artifact_id for event in store.get_events_by_execution_ids([execution.id])
           if event.type == metadata_store_pb2.Event.OUTPUT]
    return store.get_artifacts_by_id(ids)


def trained_models(store):
    """The Trainer's Model artifacts (the ServedBaseline's copies of served versions are Models
    too)."""
    return [model for model in store.get_artifacts_by_type("Model")
            if "served_version" not in model.custom_properties]


def count_examples(examples_uri):
    files = glob.glob(f"{examples_uri}/Split-*/*.gz")
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_checkpoint_with_weights(tmp_path_factory.mktemp("checkpoint") / "tiny")


def test_two_spans_retrain_warm_started_and_a_rerun_without_new_data_does_nothing(
        tiny_bert, tmp_path, capsys):
    header, train = read_rows(DEMO / "train.csv")
    _, evaluation = read_rows(DEMO / "eval.csv")
    spans_dir = tmp_path / "incoming"
    write_span(spans_dir, 1, train[:160], evaluation[:50], header)

    # What `make retrain` runs: the span pattern, a rolling window of two spans.
    argv = ["run", "--train-data", str(spans_dir / "span-{SPAN}" / "train.csv"),
            "--eval-data", str(spans_dir / "span-{SPAN}" / "eval.csv"),
            "--span-window", "2", "--schema-path", str(REPO_ROOT / "schemas" / "demo.pbtxt"),
            "--checkpoint", str(tiny_bert), "--max-seq-length", "32", "--epochs", "1",
            "--train-batch-size", "16", "--min-accuracy", "0", "--max-accuracy-drop", "1",
            "--output-dir", str(tmp_path / "runs"), "--pipeline-name", "retrain",
            *TINY_VOCAB_FLAGS]
    config = PipelineConfig.from_settings(train_data=str(spans_dir / "span-{SPAN}" / "train.csv"),
                            pipeline_name="retrain", output_dir=str(tmp_path / "runs"))

    assert cli.main(argv) == 0
    assert versions(config) == [1]
    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(config.resolved().metadata_path))
    first = executions_by_component(store)
    assert len(trained_models(store)) == 1
    [trainer_run] = first["Trainer"]
    assert artifact_inputs(store, trainer_run, "Model") == []  # nothing to warm-start from

    # The cron job fires again, nothing new arrived: no execution at all, no new version.
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert ("span 1 (input fingerprint and model settings unchanged) was already processed"
            in capsys.readouterr().out)
    assert executions_by_component(store) == first
    assert versions(config) == [1]
    # A blessing threshold shapes no model: still nothing to do.
    assert cli.main(argv + ["--min-accuracy", "0.1"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert executions_by_component(store) == first

    # Another learning rate would compute another model: the same span trains again.
    assert cli.main(argv + ["--learning-rate", "1e-4"]) == 0
    assert "nothing to do" not in capsys.readouterr().out
    relearned = executions_by_component(store)
    assert len(relearned["Trainer"]) == 2
    assert versions(config) == [1, 2]
    latest_model = max(trained_models(store), key=lambda model: model.id)

    write_span(spans_dir, 2, train[160:], evaluation[50:], header)
    assert cli.main(argv) == 0
    second = executions_by_component(store)
    assert len(second["Trainer"]) == 3
    trainer_run = max(second["Trainer"], key=lambda execution: execution.id)
    assert [model.id for model in artifact_inputs(store, trainer_run, "Model")] == \
        [latest_model.id]  # warm start from the latest blessed model
    evaluator_run = max(second["Evaluator"], key=lambda execution: execution.id)
    # The baseline: what is served, version 2, which the latest blessed model was pushed as.
    assert [model.custom_properties["served_version"].int_value
            for model in artifact_inputs(store, evaluator_run, "Model")
            if "served_version" in model.custom_properties] == [2]
    example_gen_run = max(second["TextExampleGen"], key=lambda execution: execution.id)
    [newest_examples] = artifact_outputs(store, example_gen_run)
    assert newest_examples.custom_properties["span"].int_value == 2
    assert count_examples(newest_examples.uri) == len(train) + len(evaluation)  # both spans
    assert versions(config) == [1, 2, 3]

    # Span 3's label balance flips (the window of spans 2 and 3 is almost all one label): the
    # model is trained and evaluated, but the drift from span 2 stops the push.
    positive = [row for row in train if row[-1] == "positive"]
    negative = [row for row in train if row[-1] == "negative"]
    write_span(spans_dir, 3, negative[:150] + positive[:8], evaluation[:10], header)
    capsys.readouterr()
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    third = executions_by_component(store)
    assert len(third["Trainer"]) == 4
    assert versions(config) == [1, 2, 3]  # nothing pushed
    pusher_run = max(third["ServingPusher"], key=lambda execution: execution.id)
    [pushed] = artifact_outputs(store, pusher_run)
    assert pushed.custom_properties["pushed"].int_value == 0
    reason = pushed.custom_properties["not_pushed_reason"].string_value
    assert reason.startswith("not pushed: span 3 drifted from the previous span "
                             "(--drift-action stop-push): split 'train': feature 'label_name': ")
    assert "above the threshold 0.1" in reason
    assert reason in printed  # the run's summary says why
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)


@pytest.mark.slow  # four pipeline runs (5 min): `make test-all`
def test_retrain_on_drift_trains_the_first_span_and_spans_that_drifted_only(
        tiny_bert, tmp_path, capsys):
    """--retrain-on drift: TFX's Cond on the DriftValidator's verdict around the training half."""
    header, train = read_rows(DEMO / "train.csv")
    _, evaluation = read_rows(DEMO / "eval.csv")
    spans_dir = tmp_path / "incoming"
    argv = ["run", "--train-data", str(spans_dir / "span-{SPAN}" / "train.csv"),
            "--eval-data", str(spans_dir / "span-{SPAN}" / "eval.csv"),
            "--schema-path", str(REPO_ROOT / "schemas" / "demo.pbtxt"),
            "--checkpoint", str(tiny_bert), "--max-seq-length", "32", "--epochs", "1",
            "--train-batch-size", "16", "--min-accuracy", "0", "--max-accuracy-drop", "1",
            "--retrain-on", "drift", "--drift-action", "warn",
            # Spans of ~160 texts, eval splits of 54: two samples of one distribution already
            # differ by up to ~0.1 in Jensen-Shannon divergence of lengths at this size.
            "--max-length-drift", "0.25",
            "--output-dir", str(tmp_path / "runs"), "--pipeline-name", "on_drift",
            *TINY_VOCAB_FLAGS]
    config = PipelineConfig.from_settings(train_data=str(spans_dir / "span-{SPAN}" / "train.csv"),
                                          pipeline_name="on_drift",
                                          output_dir=str(tmp_path / "runs"))
    store = lambda: metadata_store.MetadataStore(  # noqa: E731
        metadata.sqlite_metadata_connection_config(config.resolved().metadata_path))

    # The demo's eval file lists the negative rows first: every other row keeps its balance.
    write_span(spans_dir, 1, train[:165], evaluation[::2], header)
    assert cli.main(argv) == 0  # the first span: nothing to compare with, so it trains
    assert versions(config) == [1]

    write_span(spans_dir, 2, train[165:], evaluation[1::2], header)  # the same distribution
    capsys.readouterr()
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    for split in ("train", "eval"):
        line = printed.split(f"drift of span 2 from the previous span ({split}): ")[1]
        assert line.splitlines()[0].endswith(": within bounds"), line
    executions = executions_by_component(store())
    assert len(executions["Trainer"]) == 1 and len(executions["DriftValidator"]) == 2
    assert versions(config) == [1]
    # The cron job again: span 2 was processed (it did not drift), nothing to do.
    assert cli.main(argv) == 0
    assert "nothing to do" in capsys.readouterr().out

    positive = [row for row in train if row[-1] == "positive"]
    negative = [row for row in train if row[-1] == "negative"]
    write_span(spans_dir, 3, negative[:150] + positive[:8], evaluation[:20], header)
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "DRIFTED (label_name)" in printed
    assert len(executions_by_component(store())["Trainer"]) == 2
    assert versions(config) == [1, 2]
