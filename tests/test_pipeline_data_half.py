"""The data half (ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform)
for real: TFX components on LocalDagRunner and the Beam DirectRunner."""
import collections
import glob
import os
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from conftest import REPO_ROOT, read_tsv
from pipeline import local_runner
from pipeline.config import PipelineConfig
from preprocessing import preprocessing
from preprocessing.checkpoint import packaged_checkpoint_dir

MAX_SEQ_LENGTH = 64


def latest(pattern):
    paths = glob.glob(pattern)
    assert paths, f"nothing matches {pattern}"
    return max(paths, key=lambda path: int(path.rstrip("/").split("/")[-1]))


def read_transformed(config, split):
    graph = tft.TFTransformOutput(latest(f"{config.pipeline_root}/Transform/transform_graph/*"))
    files = glob.glob(latest(f"{config.pipeline_root}/Transform/transformed_examples/*")
                      + f"/Split-{split}/*.gz")
    records = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        parsed = tf.io.parse_single_example(record, graph.transformed_feature_spec())
        records.append({name: (tf.sparse.to_dense(value).numpy().tolist()
                               if isinstance(value, tf.SparseTensor) else value.numpy())
                        for name, value in parsed.items()})
    return graph, records


@pytest.fixture(scope="module")
def sst2_run(sst2_sample, tmp_path_factory):
    config = PipelineConfig.from_settings(
        train_data=str(sst2_sample / "train.tsv"), eval_data=str(sst2_sample / "dev.tsv"),
        text_column="sentence", schema_path=str(REPO_ROOT / "schemas" / "sst2.pbtxt"),
        max_seq_length=MAX_SEQ_LENGTH, output_dir=str(tmp_path_factory.mktemp("runs")),
        train=False)
    local_runner.run(config)
    return config.resolved()


def test_transformed_examples_are_bert_inputs_equal_to_transformers(sst2_run, sst2_sample):
    from transformers import BertTokenizerFast
    graph, records = read_transformed(sst2_run, "eval")
    rows = read_tsv(sst2_sample / "dev.tsv")[1:]
    assert len(records) == len(rows) == 100
    reference = BertTokenizerFast.from_pretrained(packaged_checkpoint_dir())
    expected = reference([text for text, _ in rows], truncation=True,
                         max_length=MAX_SEQ_LENGTH)["input_ids"]
    # Examples are shuffled on the way: compare as multisets of (ids, label name).
    labels = graph.vocabulary_by_name(preprocessing.LABEL_VOCABULARY)
    assert (collections.Counter((tuple(r["input_ids"]), labels[r["label"]].decode())
                                for r in records)
            == collections.Counter((tuple(ids), label) for ids, (_, label) in zip(expected, rows)))
    for record in records:  # unpadded on disk: each row as long as its own text
        assert len(record["input_mask"]) == len(record["input_ids"]) <= MAX_SEQ_LENGTH
        assert set(record["input_mask"]) == {1} and set(record["input_type_ids"]) == {0}


def test_label_vocabulary_follows_the_schema_and_lives_in_the_graph(sst2_run):
    graph, records = read_transformed(sst2_run, "train")
    assert len(records) == 400
    assert graph.vocabulary_by_name(preprocessing.LABEL_VOCABULARY) == [b"0", b"1"]
    assert {record["label"] for record in records} == {0, 1}
    # The wordpiece vocabulary is a constant in the graph: the only asset is the label list.
    assert os.listdir(os.path.join(graph.transform_savedmodel_dir, "assets")) == ["labels"]


def test_checkpoint_is_one_artifact_recorded_as_transform_input(sst2_run):
    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(sst2_run.metadata_path))
    [checkpoint] = store.get_artifacts_by_type("bertpipe.PretrainedCheckpoint")
    assert checkpoint.uri == packaged_checkpoint_dir()
    [transform] = [execution for execution in store.get_executions()
                   if store.get_execution_types_by_id([execution.type_id])[0].name.endswith(
                       "Transform")]
    inputs = [event.artifact_id for event in store.get_events_by_execution_ids([transform.id])
              if event.type == event.INPUT]
    assert checkpoint.id in inputs


def test_transform_graph_runs_in_a_fresh_process_without_the_checkpoint(sst2_run, tmp_path):
    """The exported graph tokenizes by itself: copied elsewhere, the checkpoint not needed."""
    graph_dir = latest(f"{sst2_run.pipeline_root}/Transform/transform_graph/*")
    copy = tmp_path / "graph"
    subprocess.run(["cp", "-r", graph_dir, str(copy)], check=True)
    script = (
        "import sys, tensorflow as tf, tensorflow_text, tensorflow_transform as tft\n"
        "out = tft.TFTransformOutput(sys.argv[1]).transform_raw_features(\n"
        "    {'sentence': tf.constant([['A gem!']])}, drop_unused_features=True)\n"
        "print(tf.sparse.to_dense(out['input_ids']).numpy().tolist())\n")
    result = subprocess.run([sys.executable, "-c", script, str(copy)], capture_output=True,
                            text=True, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.stdout.strip().splitlines()[-1] == "[[101, 1037, 17070, 999, 102]]"


def test_demo_data_first_run_infers_schema_and_hash_splits(tmp_path):
    config = PipelineConfig.from_settings(train_data=str(REPO_ROOT / "data" / "demo" / "train.csv"),
                            output_dir=str(tmp_path), max_seq_length=32, train=False)
    local_runner.run(config)
    config = config.resolved()
    schema = open(glob.glob(f"{config.pipeline_root}/SchemaGen/schema/*/schema.pbtxt")[0]).read()
    assert 'value: "negative"' in schema and 'value: "positive"' in schema
    _, train = read_transformed(config, "train")
    _, evaluation = read_transformed(config, "eval")
    assert len(train) + len(evaluation) == 330 and 0.1 < len(evaluation) / 330 < 0.3


@pytest.mark.slow  # 100 s: a scale check of the Beam runner's mode, not of our code's behaviour
def test_data_half_on_two_beam_worker_processes_gives_the_same_examples(sst2_run, tmp_path):
    """Beam's multi_processing mode: ExampleGen, StatisticsGen and Transform run in two worker
    processes, which must load the tensorflow_text ops of the transform graph themselves."""
    config = PipelineConfig.from_settings(
        train_data=sst2_run.data.train_data, eval_data=sst2_run.data.eval_data,
        text_column="sentence", schema_path=sst2_run.data.schema_path,
        max_seq_length=MAX_SEQ_LENGTH,
        output_dir=str(tmp_path), train=False, beam_workers=2)
    assert config.runtime.beam_pipeline_args[:2] == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    local_runner.run(config)

    def as_multiset(records):
        return collections.Counter((tuple(r["input_ids"]), int(r["label"])) for r in records)

    for split in ("train", "eval"):
        _, in_memory = read_transformed(sst2_run, split)
        _, two_workers = read_transformed(config.resolved(), split)
        assert as_multiset(two_workers) == as_multiset(in_memory)
