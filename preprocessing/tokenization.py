"""BERT WordPiece tokenization as TensorFlow ops, for the Transform graph.

Runs inside the TF Transform graph, so the exported model tokenizes raw text itself (no Python
tokenizer at serving). It reproduces transformers' BertTokenizerFast on the same checkpoint:

* text cleanup as Hugging Face's BertNormalizer does it: \\t \\n \\r and space separators become
  spaces; control and format characters, and U+FFFD, are removed (tensorflow_text keeps them);
* lower-casing with Unicode lower-case mapping (tensorflow_text's lower_case=True applies NFKC
  case folding instead, which turns e.g. 'ß' into 'ss' where BERT's vocabulary expects 'ß');
* accent stripping (NFD, then drop combining marks) when the checkpoint asks for it;
* tensorflow_text's BasicTokenizer (punctuation/CJK split) and WordpieceTokenizer, with
  transformers' 100-character limit per word.

Only long-standing ops that stock TensorFlow Serving links in are used: core string ops,
NormalizeUTF8, RegexSplitWithOffsets and WordpieceTokenizeWithOffsets. (The Fast* variants are
linked by TF Serving 2.16 but were missing from earlier releases; the ServingCheck component
verifies every op against the targeted release before a push.)
The vocabulary is a constant table inside the graph, so the SavedModel needs no asset file.
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf
import tensorflow_text as tf_text
# BertTokenizer's first stage; tensorflow_text does not re-export it at the top level.
from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

from preprocessing.checkpoint import TokenizerSettings

# Hugging Face BertNormalizer(clean_text=True): whitespace -> ' ', then remove the characters of
# Unicode category C (control, format, private use, surrogate) and the replacement character.
_HF_WHITESPACE = r"[\t\n\r\p{Zs}]"
_HF_REMOVED = r"[\p{C}\x{FFFD}]"
_COMBINING_MARKS = r"\p{Mn}"
# Transformers turns a word of more than 100 characters into [UNK]; tensorflow_text's limit
# counts bytes, so the character limit is applied here and the byte limit set out of its way.
_MAX_CHARS_PER_WORD = 100
_MAX_BYTES_PER_WORD = 4 * _MAX_CHARS_PER_WORD


class BertTokenizerGraph(tf.Module):
    """Raw strings -> BERT input ids, mask and type ids (ragged: one row per text, no padding)."""

    def __init__(self, settings: TokenizerSettings, max_seq_length: int):
        super().__init__(name="bert_tokenizer")
        self._settings = settings
        self.max_seq_length = max_seq_length
        self._cls_id = settings.token_id(settings.cls_token)
        self._sep_id = settings.token_id(settings.sep_token)
        self._vocab_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                keys=tf.constant(settings.vocab, dtype=tf.string),
                values=tf.range(len(settings.vocab), dtype=tf.int64)),
            default_value=-1)
        # BertTokenizer = BasicTokenizer + WordpieceTokenizer; used apart to apply the limit.
        self._basic_tokenizer = BasicTokenizer(lower_case=False)
        self._wordpiece_tokenizer = tf_text.WordpieceTokenizer(
            self._vocab_table, token_out_type=tf.int64,
            unknown_token=settings.unknown_token, max_bytes_per_word=_MAX_BYTES_PER_WORD)

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        texts = tf.strings.regex_replace(texts, _HF_WHITESPACE, " ")
        texts = tf.strings.regex_replace(texts, _HF_REMOVED, "")
        if self._settings.lower_case:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if self._settings.strip_accents:
            texts = tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, _COMBINING_MARKS, "")
        return texts

    @property
    def unknown_token_id(self) -> int:
        return self._settings.token_id(self._settings.unknown_token)

    def wordpieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """texts: string tensor [batch] -> the WordPiece ids of each text, not truncated."""
        words = self._basic_tokenizer.tokenize(self.normalize(texts))
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > _MAX_CHARS_PER_WORD
        words = words.with_flat_values(
            tf.where(too_long, self._settings.unknown_token, words.flat_values))
        return self._wordpiece_tokenizer.tokenize(words).merge_dims(-2, -1)

    def __call__(self, texts: tf.Tensor) -> Dict[str, tf.RaggedTensor]:
        """texts: string tensor [batch] -> {'input_ids', 'input_mask', 'input_type_ids'}."""
        return self.model_inputs(self.wordpieces(texts))

    def model_inputs(self, wordpieces: tf.RaggedTensor) -> Dict[str, tf.RaggedTensor]:
        """WordPiece ids (from `wordpieces`) -> the model's inputs, cut to max_seq_length."""
        wordpieces = wordpieces[:, : self.max_seq_length - 2]
        input_ids, type_ids = tf_text.combine_segments(
            [wordpieces], start_of_sequence_id=self._cls_id, end_of_segment_id=self._sep_id)
        return {
            "input_ids": input_ids,
            "input_mask": tf.ones_like(input_ids),
            "input_type_ids": type_ids,
        }
