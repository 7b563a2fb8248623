"""The input data of bench/training_throughput.py, in each variant's format.

Reads the SST-2 sample; tokenizes it for ours (the project's in-graph tokenizer, unpadded ids,
written as the GZIP TFRecord of tf.Examples that Transform writes) and for the padded recipe
(BertTokenizerFast padded to max_length, as from_tensor_slices batches); builds the batches
that prime ours on every length-bucket shape, and counts the padded tokens ours trains on.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import bench_env  # noqa: F401  first: sets up the environment TF needs

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.text_example_gen import read_delimited_file  # noqa: E402
from preprocessing.checkpoint import read_tokenizer_settings  # noqa: E402
from preprocessing.features import INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS, LABEL  # noqa: E402
from preprocessing.tokenization import BertTokenizerGraph  # noqa: E402
from trainer import input_pipeline  # noqa: E402

BATCH_SIZE = 32
# What Transform's transformed_feature_spec() gives the Trainer: the sparse token outputs are
# VarLen, the (dense) label index is FixedLen.
FEATURE_SPEC = {INPUT_IDS: tf.io.VarLenFeature(tf.int64),
                INPUT_MASK: tf.io.VarLenFeature(tf.int64),
                INPUT_TYPE_IDS: tf.io.VarLenFeature(tf.int64),
                LABEL: tf.io.FixedLenFeature([], tf.int64)}


def read_sample(path: str, rows: Optional[int]):
    texts, labels = read_delimited_file(path, "sentence", "label")
    rows = len(texts) if rows is None else rows
    # SST-2's labels are '0'/'1'; schemas/sst2.pbtxt lists them in that order, so the
    # Trainer's class index is the integer value.
    return texts[:rows], np.array([int(label) for label in labels[:rows]], np.int64)


def tokenize_ours(texts: Sequence[str], checkpoint: str, max_seq_length: int
                  ) -> Dict[str, List[List[int]]]:
    """The project's in-graph tokenizer, as Transform runs it: unpadded rows per text."""
    tokenizer = BertTokenizerGraph(read_tokenizer_settings(checkpoint), max_seq_length)
    rows: Dict[str, List[List[int]]] = {name: [] for name in (INPUT_IDS, INPUT_MASK,
                                                              INPUT_TYPE_IDS)}
    for start in range(0, len(texts), 1024):
        tokens = tokenizer(tf.constant(list(texts[start:start + 1024])))
        for name in rows:
            rows[name].extend(tokens[name].to_list())
    return rows


def write_tfrecord(path: str, rows: Dict[str, List[List[int]]], labels: np.ndarray) -> str:
    """Transform's output format: one GZIP'd tf.Example per text, ids unpadded."""
    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for index, label in enumerate(labels):
            feature = {name: int64s(rows[name][index]) for name in rows}
            feature[LABEL] = int64s([int(label)])
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return path


def tokenize_padded(texts: Sequence[str], checkpoint: str, max_seq_length: int
                    ) -> Dict[str, np.ndarray]:
    """The transformers-docs recipe: every text padded (or truncated) to max_length."""
    from transformers import BertTokenizerFast
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    encoded = tokenizer(list(texts), padding="max_length", max_length=max_seq_length,
                        truncation=True, return_tensors="np")
    return {name: np.asarray(values, np.int32) for name, values in encoded.items()}


def padded_dataset(features: Dict[str, np.ndarray], labels: np.ndarray, seed: int,
                   training: bool) -> tf.data.Dataset:
    """from_tensor_slices(dict(...)).shuffle().batch(32); repeated, so that one iterator lasts
    every window (drop_remainder: one shape, as the recipe has whenever N % 32 == 0)."""
    dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels))
    if not training:
        return dataset.batch(BATCH_SIZE)
    return dataset.shuffle(len(labels), seed=seed).batch(BATCH_SIZE, drop_remainder=True).repeat()


def classifier_inputs(encoded: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """BertTokenizerFast's names -> build_classifier's input names."""
    return {INPUT_IDS: encoded["input_ids"], INPUT_MASK: encoded["attention_mask"],
            INPUT_TYPE_IDS: encoded["token_type_ids"]}


class TokenCounter:
    """Counts the batches the model consumes and their padded lengths (ours only: the padded
    recipe is 128 by construction). A synchronous map after make_dataset's own prefetch;
    inject_prefetch is off so tf.data adds no prefetch behind it (make_dataset already ends in
    one, so its pipeline is unchanged), i.e. the counts are of batches actually trained on."""

    def __init__(self, max_seq_length: int):
        self.tokens = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.examples = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.lengths = tf.Variable(tf.zeros([max_seq_length + 2], tf.int64), trainable=False)

    def wrap(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        def count(features, label):
            shape = tf.shape(features[INPUT_IDS], out_type=tf.int64)
            updates = [self.tokens.assign_add(shape[0] * shape[1]),
                       self.examples.assign_add(shape[0]),
                       self.lengths.assign_add(tf.one_hot(shape[1], tf.shape(self.lengths)[0],
                                                          dtype=tf.int64))]
            with tf.control_dependencies(updates):
                return {name: tf.identity(value) for name, value in features.items()}, label
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return dataset.map(count).with_options(options)

    def snapshot(self):
        return int(self.tokens.numpy()), int(self.examples.numpy()), self.lengths.numpy().copy()


def priming_batches(rows: Dict[str, List[List[int]]], labels: np.ndarray,
                    max_seq_length: int) -> List[tuple]:
    """One real batch per length bucket that holds any example, padded to the bucket bound as
    make_dataset pads it: a warm-up step on every shape ours can produce, even for buckets too
    small to fill a batch within the warm-up steps."""
    bounds = [bound - 1 for bound in input_pipeline.bucket_boundaries(max_seq_length)]
    lengths = np.array([len(ids) for ids in rows[INPUT_IDS]])
    bucket_of = np.searchsorted(bounds, lengths, side="left")
    batches = []
    for bucket, bound in enumerate(bounds):
        members = np.flatnonzero(bucket_of == bucket)
        if len(members):
            chosen = np.resize(members, BATCH_SIZE)
            batches.append(({name: np.array([values[i] + [0] * (bound - len(values[i]))
                                             for i in chosen], np.int32)
                             for name, values in rows.items()}, labels[chosen]))
    return batches


@dataclasses.dataclass
class PreparedData:
    """The sample in every variant's input format."""
    labels: np.ndarray
    test_labels: np.ndarray
    train_file: str  # ours: GZIP TFRecords of unpadded ids
    test_file: str
    padded: Dict[str, np.ndarray]  # the padded recipe: BertTokenizerFast's output
    test_padded: Dict[str, np.ndarray]
    priming: List[tuple]  # ours: one batch per length bucket
    real_lengths: np.ndarray  # tokens per training text, with [CLS]/[SEP]


def prepare_data(texts: Sequence[str], labels: np.ndarray, test_texts: Sequence[str],
                 test_labels: np.ndarray, checkpoint: str, max_seq_length: int,
                 work_dir: str) -> PreparedData:
    """Tokenizes the training and test texts both ways (ours' TFRecords go into work_dir) and
    prints how many texts the two tokenizers disagree on in length."""
    rows = tokenize_ours(texts, checkpoint, max_seq_length)
    train_file = write_tfrecord(os.path.join(work_dir, "train.tfrecord.gz"), rows, labels)
    test_file = write_tfrecord(os.path.join(work_dir, "test.tfrecord.gz"),
                               tokenize_ours(test_texts, checkpoint, max_seq_length),
                               test_labels)
    padded = tokenize_padded(texts, checkpoint, max_seq_length)
    test_padded = tokenize_padded(test_texts, checkpoint, max_seq_length)
    real_lengths = np.array([len(ids) for ids in rows[INPUT_IDS]])
    mismatches = int(np.sum(padded["attention_mask"].sum(axis=1) != real_lengths))
    print(f"{len(labels)} training texts, {len(test_labels)} test texts; "
          f"{mismatches} length mismatches between the two tokenizers", flush=True)
    return PreparedData(labels, test_labels, train_file, test_file, padded, test_padded,
                        priming_batches(rows, labels, max_seq_length), real_lengths)
