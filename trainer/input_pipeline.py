"""tf.data input from Transform's output: shuffle, length buckets, per-bucket padding, prefetch.

Transform writes token ids unpadded. Batches are formed within length buckets and padded to the
bucket's upper bound, so a batch of short sentences costs a short sequence, and the model sees
a bounded set of shapes (one per bucket): bounded retracing, and one XLA compilation per bucket.

The buckets are 8 tokens wide up to 64, then 16 wide up to 128, 32 up to 256, 64 beyond
(12 shapes for max_seq_length 128). On 4,096 SST-2 rows (13.3 real tokens per example on
average) 16-wide buckets padded to 21.3 tokens per example and 8-wide ones to 16.3, which
trained 1.6x as many examples/s in an interleaved run; 4-wide buckets below 32 (14.8 tokens)
were not faster than 8-wide ones (0.9x): at these lengths a step's fixed cost (the optimizer
update over all weights) dominates. Current figures: docs/BENCHMARKS.md, Training throughput.

Validation during training uses a held-out part of the training split: the examples whose
token ids hash into the first `validation_fraction` of 1,000 buckets. The split depends on
nothing but each example's text, so every run (and every Tuner trial, and a Transform run again
on the same data) holds out the same examples, and duplicates of a text land on the same side.
(Not the serialized bytes: a tf.Example's feature map has no fixed serialized order, and two
Transform runs held out different examples.)
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from preprocessing.features import INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS, LABEL

_SEQUENCE_FEATURES = (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS)
_SHUFFLE_BUFFER = 10_000
_VALIDATION_BUCKETS = 1000
# Which examples a dataset reads: all of them, or one side of the held-out validation split.
ALL, TRAIN_PART, VALIDATION_PART = "all", "train", "validation"


def bucket_boundaries(max_seq_length: int) -> List[int]:
    """Upper bounds (exclusive) of the length buckets, each bucket padded to its bound minus 1:
    8, 16, ..., 64, 80, 96, 112, 128, 160, ..., 256, 320, ... and max_seq_length itself."""
    if max_seq_length < 1:
        raise ValueError(f"max_seq_length must be positive, got {max_seq_length}")
    bounds, size = [], 8
    while size < max_seq_length:
        bounds.append(size + 1)
        size += 8 if size < 64 else 16 if size < 128 else 32 if size < 256 else 64
    bounds.append(max_seq_length + 1)
    return bounds


def _parse(feature_spec: Dict[str, tf.io.VarLenFeature]):
    spec = {name: feature_spec[name] for name in (*_SEQUENCE_FEATURES, LABEL)}

    def parse(serialized: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
        parsed = tf.io.parse_single_example(serialized, spec)
        features = {name: tf.cast(tf.sparse.to_dense(parsed[name]), tf.int32)
                    for name in _SEQUENCE_FEATURES}
        return features, parsed[LABEL]

    return parse


def _records(file_patterns: Sequence[str], part: str, validation_fraction: float,
             parallel: bool) -> tf.data.Dataset:
    patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
    files = [path for pattern in patterns for path in tf.io.gfile.glob(pattern)]
    if not files:
        raise ValueError(f"no transformed examples match {file_patterns}")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                      num_parallel_reads=tf.data.AUTOTUNE if parallel else None)
    if part == ALL:
        return dataset
    held_out = int(round(validation_fraction * _VALIDATION_BUCKETS))

    def in_part(serialized: tf.Tensor) -> tf.Tensor:
        ids = tf.io.parse_single_example(
            serialized, {INPUT_IDS: tf.io.VarLenFeature(tf.int64)})[INPUT_IDS].values
        key = tf.strings.reduce_join(tf.strings.as_string(ids), separator=" ")
        validation = tf.strings.to_hash_bucket_fast(key, _VALIDATION_BUCKETS) < held_out
        return validation if part == VALIDATION_PART else tf.logical_not(validation)

    return dataset.filter(in_part)


def make_dataset(file_patterns: Sequence[str], feature_spec, batch_size: int,
                 max_seq_length: int, training: bool, seed: int = 0, part: str = ALL,
                 validation_fraction: float = 0.0) -> tf.data.Dataset:
    """(features, label) batches of the examples of `part`; training data is shuffled and
    repeated indefinitely."""
    dataset = _records(file_patterns, part, validation_fraction, parallel=True)
    options = tf.data.Options()
    # Few, unevenly sized files: shard by record across workers, not by file.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = not training
    # No autotuning thread: it does not wake up when its iterator is destroyed, so the end of
    # model.fit (and of each validation pass) waited out its optimization period, 4 to 10 s
    # with both cores idle in the demo's Trainer. The AUTOTUNE values below then take the core
    # count, and the demo trained faster (80-94 examples/s against 67-73).
    options.autotune.enabled = False
    dataset = dataset.with_options(options)
    if training:
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat()
    dataset = dataset.map(_parse(feature_spec), num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = bucket_boundaries(max_seq_length)
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda features, label: tf.shape(features[INPUT_IDS])[0],
        bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=True, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)


def count_records(file_patterns: Sequence[str], part: str = ALL,
                  validation_fraction: float = 0.0) -> int:
    return int(_records(file_patterns, part, validation_fraction, parallel=False).reduce(
        tf.constant(0, tf.int64), lambda count, _: count + 1).numpy())
