"""Tokenization parity: the Transform graph's BERT tokenization versus transformers'.

Builds the transform graph exactly as the pipeline's Transform does (TF Transform on Beam, the
same preprocessing_fn and checkpoint), or loads one a pipeline run exported, runs it on texts
and compares the input ids with transformers' BertTokenizerFast on the same checkpoint.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from typing import Iterable, List, Optional, Sequence

import apache_beam as beam
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from preprocessing import preprocessing

_TEXT, _LABEL = "text", "label"
_BATCH_SIZE = 1024


@dataclasses.dataclass
class Mismatch:
    text: str
    ours: List[str]
    theirs: List[str]


def build_transform_graph(checkpoint_uri: str, max_seq_length: int, output_dir: str) -> str:
    """Runs preprocessing_fn through TF Transform (Beam DirectRunner) into output_dir."""
    custom_config = {preprocessing.CHECKPOINT_KEY: checkpoint_uri,
                     preprocessing.TEXT_FEATURE_KEY: _TEXT,
                     preprocessing.LABEL_FEATURE_KEY: _LABEL,
                     preprocessing.MAX_SEQ_LENGTH_KEY: max_seq_length}
    metadata = schema_utils.schema_from_feature_spec({
        _TEXT: tf.io.FixedLenFeature([], tf.string), _LABEL: tf.io.FixedLenFeature([], tf.string)})
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        # The analyzers only look at labels; tokenization needs no data to build.
        data = pipeline | beam.Create([{_TEXT: b"", _LABEL: b"unused"}])
        transform_fn = ((data, dataset_metadata.DatasetMetadata(metadata))
                        | tft_beam.AnalyzeDataset(functools.partial(
                            preprocessing.preprocessing_fn, custom_config=custom_config)))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return output_dir


def tokenize_with_transform_graph(transform_graph_dir: str, texts: Sequence[str],
                                  text_feature: str = _TEXT) -> List[List[int]]:
    output = tft.TFTransformOutput(transform_graph_dir)
    ids: List[List[int]] = []
    for start in range(0, len(texts), _BATCH_SIZE):
        batch = tf.constant(list(texts[start:start + _BATCH_SIZE]))
        features = output.transform_raw_features({text_feature: batch},
                                                 drop_unused_features=True)
        input_ids = features[preprocessing.INPUT_IDS]
        if isinstance(input_ids, tf.SparseTensor):
            input_ids = tf.RaggedTensor.from_sparse(input_ids)
        ids.extend(input_ids.to_list())
    return ids


def compare_with_transformers(checkpoint_uri: str, texts: Sequence[str], max_seq_length: int,
                              transform_graph_dir: Optional[str] = None,
                              text_feature: str = _TEXT) -> List[Mismatch]:
    from transformers import BertTokenizerFast
    if transform_graph_dir is None:
        transform_graph_dir = build_transform_graph(checkpoint_uri, max_seq_length,
                                                    os.path.join(tempfile.mkdtemp(), "graph"))
        text_feature = _TEXT
    ours = tokenize_with_transform_graph(transform_graph_dir, texts, text_feature)
    reference = BertTokenizerFast.from_pretrained(checkpoint_uri)
    theirs = reference(list(texts), truncation=True, max_length=max_seq_length)["input_ids"]
    return [Mismatch(text, reference.convert_ids_to_tokens(a),
                     reference.convert_ids_to_tokens(b))
            for text, a, b in zip(texts, ours, theirs) if list(a) != list(b)]


def format_mismatches(mismatches: Iterable[Mismatch], limit: int = 5) -> str:
    lines = []
    for mismatch in list(mismatches)[:limit]:
        lines += [f"  text:         {mismatch.text!r}",
                  f"  transform:    {' '.join(mismatch.ours)}",
                  f"  transformers: {' '.join(mismatch.theirs)}"]
    return "\n".join(lines)
