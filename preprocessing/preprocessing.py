"""TF Transform `preprocessing_fn`: raw text and label -> BERT inputs and a class index.

The Transform component references this function by module path. Its settings arrive in
`custom_config` (see components/checkpoint_inputs.py): the checkpoint URI (vocabulary and
casing), max_seq_length, the raw feature names, and the label values of the schema.

Outputs are variable-length (one row per text, no padding on disk); the trainer pads each batch
to its own longest row. Beside the model inputs go the text statistics (characters, tokens
before truncation, truncated or not, share of [UNK]) and the raw label, which TFDV's statistics
of the transformed examples turn into the data-quality checks of the tokenized text. The label vocabulary is stored with the transform graph under
LABEL_VOCABULARY, so serving can map class indices back to label names.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import tensorflow as tf
import tensorflow_transform as tft

from preprocessing.checkpoint import read_tokenizer_settings
from preprocessing.tokenization import BertTokenizerGraph
from preprocessing.features import (CHECKPOINT_KEY, INPUT_IDS, LABEL, LABEL_FEATURE_KEY,
                                    LABEL_NAME, LABEL_VALUES_KEY, LABEL_VOCABULARY,
                                    LENGTH_BUCKET, LENGTH_BUCKET_BOUNDS, LENGTH_BUCKET_NAMES,
                                    MAX_SEQ_LENGTH_KEY, TEXT_FEATURE_KEY, TEXT_LENGTH,
                                    TOKEN_COUNT, TRUNCATED, UNKNOWN_TOKEN_SHARE)


def label_values_from_schema(schema_path: str, label_feature: str) -> Optional[List[str]]:
    """The label feature's string domain in a schema.pbtxt (schema order), or None."""
    from tfx.utils import io_utils
    schema = io_utils.SchemaReader().read(schema_path)
    for feature in schema.feature:
        if feature.name == label_feature:
            if feature.HasField("string_domain"):
                return list(feature.string_domain.value)
            for domain in schema.string_domain:
                if domain.name == feature.domain:
                    return list(domain.value)
    return None


def dense_strings(feature: Any) -> tf.Tensor:
    """A [batch] string tensor from a dense [batch]/[batch, 1] or a sparse/ragged feature."""
    if isinstance(feature, tf.SparseTensor):
        feature = tf.sparse.to_dense(feature, default_value="")
    elif isinstance(feature, tf.RaggedTensor):
        feature = feature.to_tensor(default_value="")
    if feature.shape.rank == 2:
        # One value per example (the schema says so); empty rows read as empty text.
        feature = tf.pad(feature, [[0, 0], [0, 1]])[:, 0]
    return feature


def length_buckets(lengths: tf.Tensor) -> tf.Tensor:
    """Token counts (with [CLS]/[SEP]) -> their LENGTH_BUCKET_NAMES, for evaluation slices."""
    return tf.gather(
        tf.constant(LENGTH_BUCKET_NAMES),
        tf.searchsorted(tf.constant(LENGTH_BUCKET_BOUNDS, tf.int64), tf.cast(lengths, tf.int64),
                        side="left"))


def text_statistics(text: tf.Tensor, wordpieces: tf.RaggedTensor,
                    tokenizer: BertTokenizerGraph) -> Dict[str, tf.Tensor]:
    """One value per text for TFDV's statistics of the tokenized text (features.py names)."""
    token_count = wordpieces.row_lengths() + 2  # with [CLS] and [SEP]
    unknown = tf.reduce_sum(tf.cast(tf.equal(wordpieces, tokenizer.unknown_token_id), tf.int64),
                            axis=1)
    return {
        TEXT_LENGTH: tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.int64),
        TOKEN_COUNT: token_count,
        TRUNCATED: tf.cast(token_count > tokenizer.max_seq_length, tf.int64),
        # An empty text has no tokens, and none of them unknown.
        UNKNOWN_TOKEN_SHARE: tf.cast(unknown, tf.float32) / tf.cast(
            tf.maximum(token_count - 2, 1), tf.float32),
    }


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, Any]:
    tokenizer = BertTokenizerGraph(read_tokenizer_settings(custom_config[CHECKPOINT_KEY]),
                                   int(custom_config[MAX_SEQ_LENGTH_KEY]))
    text = dense_strings(inputs[custom_config[TEXT_FEATURE_KEY]])
    wordpieces = tokenizer.wordpieces(text)
    tokens = tokenizer.model_inputs(wordpieces)
    outputs = {name: values.to_sparse() for name, values in tokens.items()}
    outputs[LENGTH_BUCKET] = length_buckets(tokens[INPUT_IDS].row_lengths())
    outputs.update(text_statistics(text, wordpieces, tokenizer))

    label = dense_strings(inputs[custom_config[LABEL_FEATURE_KEY]])
    outputs[LABEL_NAME] = label
    # Schema order first, so class indices do not depend on label frequencies in this span.
    label_vocabulary = tft.vocabulary(label, vocab_filename=LABEL_VOCABULARY,
                                      reserved_tokens=custom_config.get(LABEL_VALUES_KEY))
    outputs[LABEL] = tft.apply_vocabulary(label, label_vocabulary, default_value=-1)
    return outputs
