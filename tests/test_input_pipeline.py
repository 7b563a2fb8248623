"""trainer/input_pipeline.py on real GZIP TFRecords of unpadded token ids, as Transform writes
them: every example arrives once, batches are padded to their length bucket's bound, and the
number of distinct batch shapes stays bounded."""
import numpy as np
import pytest
import tensorflow as tf

from preprocessing.features import INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS, LABEL
from trainer import input_pipeline

FEATURE_SPEC = {INPUT_IDS: tf.io.VarLenFeature(tf.int64),
                INPUT_MASK: tf.io.VarLenFeature(tf.int64),
                INPUT_TYPE_IDS: tf.io.VarLenFeature(tf.int64),
                LABEL: tf.io.FixedLenFeature([], tf.int64)}


def write_examples(path, lengths):
    """Example i has ids 1000+i repeated `lengths[i]` times (so it can be recognised after
    batching) and label i % 2."""
    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for index, length in enumerate(lengths):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                INPUT_IDS: int64s([1000 + index] * length), INPUT_MASK: int64s([1] * length),
                INPUT_TYPE_IDS: int64s([0] * length), LABEL: int64s([index % 2])})
            ).SerializeToString())
    return str(path)


def padded_length_for(length, max_seq_length):
    """The bound (exclusive) of the bucket that holds `length`, minus one."""
    return next(bound for bound in input_pipeline.bucket_boundaries(max_seq_length)
                if length < bound) - 1


def test_bucket_boundaries_are_fine_where_sentences_are_and_bounded():
    assert input_pipeline.bucket_boundaries(128) == [9, 17, 25, 33, 41, 49, 57, 65, 81, 97,
                                                     113, 129]
    for max_seq_length in (2, 9, 64, 100, 128, 512):
        bounds = input_pipeline.bucket_boundaries(max_seq_length)
        assert bounds == sorted(set(bounds)) and bounds[-1] == max_seq_length + 1
        assert len(bounds) <= 20  # shapes (traces, XLA compilations) stay few
    assert input_pipeline.bucket_boundaries(100)[-2:] == [97, 101]
    with pytest.raises(ValueError, match="max_seq_length must be positive"):
        input_pipeline.bucket_boundaries(0)


def test_eval_batches_hold_every_example_once_padded_to_the_bucket_bound(tmp_path):
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(3, 129, size=150)) + [3, 8, 9, 16, 17, 64, 65, 128]
    path = write_examples(tmp_path / "eval.tfrecord.gz", lengths)
    seen = []
    for features, labels in input_pipeline.make_dataset(path, FEATURE_SPEC, 8, 128,
                                                        training=False):
        ids, mask = features[INPUT_IDS].numpy(), features[INPUT_MASK].numpy()
        assert ids.dtype == np.int32 and ids.shape == mask.shape
        assert features[INPUT_TYPE_IDS].shape == ids.shape
        real = mask.sum(axis=1)
        padded = ids.shape[1]
        # Every row of a batch comes from one bucket, and the batch is padded to its bound.
        assert {padded_length_for(length, 128) for length in real} == {padded}
        for row, length, label in zip(ids, real, labels.numpy()):
            index = row[0] - 1000
            assert length == lengths[index] and label == index % 2
            assert (row[:length] == 1000 + index).all() and (row[length:] == 0).all()
            seen.append(index)
    assert sorted(seen) == list(range(len(lengths)))


def test_training_batches_are_full_shuffled_and_of_few_shapes(tmp_path):
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 40, size=400)
    path = write_examples(tmp_path / "train.tfrecord.gz", lengths)
    dataset = input_pipeline.make_dataset(path, FEATURE_SPEC, 16, 128, training=True, seed=3)
    shapes, first_rows = set(), []
    for features, labels in dataset.take(60):  # repeats past the 400 examples
        assert features[INPUT_IDS].shape[0] == 16 and labels.shape == (16,)
        shapes.add(features[INPUT_IDS].shape[1])
        first_rows.append(int(features[INPUT_IDS][0, 0]) - 1000)
    assert shapes <= {8, 16, 24, 32, 40}
    assert len(shapes) >= 4
    assert first_rows != sorted(first_rows)  # shuffled, not in file order
