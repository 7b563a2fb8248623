"""The export's warm-up requests (assets.extra/tf_serving_warmup_requests, serving/warmup.py).

The model is the real export (trainer/export.py) of a tiny BERT classifier on the demo data's
Transform graph. The checks: the warm-up texts reach every encoder shape the export can run
(by the real tokenizer), the ServingCheck's probe replays the file in its own process as TF
Serving would, the local server's Servable replays it at load, and a file TF Serving could not
replay stops both.
"""
import os
import shutil

import pytest
import tensorflow as tf

from preprocessing.checkpoint import read_tokenizer_settings
from preprocessing.tokenization import BertTokenizerGraph
from serving.servability import ServingCheckError, check_saved_model
from serving.servable import Servable, ServableError
from serving.warmup import WARMUP_FILE, read_warmup_requests
from test_serving_precision import export_model
from trainer import export


@pytest.fixture(scope="module")
def float32_model(trainer_inputs, tmp_path_factory):
    """The export's SavedModel directory (max_seq_length 32, groups of 8 rows)."""
    uri = export_model(trainer_inputs, tmp_path_factory.mktemp("float32"), "float32")
    return os.path.join(uri, "Format-Serving")


def test_warmup_texts_reach_every_encoder_shape(trainer_inputs):
    max_seq_length = 30  # not a multiple of the 8-token bucket: the last width is 30
    tokenizer = BertTokenizerGraph(read_tokenizer_settings(trainer_inputs.checkpoint),
                                   max_seq_length)
    batches = export.warmup_batches(max_seq_length, group_size=8)
    shapes = set()
    for texts in batches:
        lengths = set(tokenizer(tf.constant(texts))["input_ids"].row_lengths().numpy().tolist())
        assert len(lengths) == 1, texts
        [length] = lengths
        bucket = export.TOKEN_BUCKET
        shapes.add((len(texts), min(-(-length // bucket) * bucket, max_seq_length)))
    assert shapes == {(rows, width) for rows in (1, 2, 4, 8) for width in (8, 16, 24, 30)}
    assert len(batches) == len(shapes)  # one request per shape, no more


def test_the_export_writes_them_and_the_serving_check_replays_them(float32_model):
    batches = read_warmup_requests(float32_model)
    assert len(batches) == 4 * 4  # rows 1, 2, 4, 8 x widths 8, 16, 24, 32
    assert all(isinstance(text, bytes) for texts in batches for text in texts)
    report = check_saved_model(float32_model)
    assert report["warmup_requests"] == len(batches)
    Servable("m", 1, float32_model).close()  # loads: every request ran


def test_a_warmup_file_tf_serving_could_not_replay_stops_the_check_and_the_server(
        float32_model, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(float32_model, broken)
    with tf.io.TFRecordWriter(os.path.join(broken, WARMUP_FILE)) as writer:
        writer.write(b"\xff\xff not a PredictionLog")
    with pytest.raises(ServingCheckError, match="tf_serving_warmup_requests, record 1: not a "
                                                "PredictionLog") as caught:
        check_saved_model(broken)
    assert "refuses the version" in str(caught.value)
    with pytest.raises(ServableError, match="record 1: not a PredictionLog"):
        Servable("m", 1, broken)
