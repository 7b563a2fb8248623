"""The Keras classifier: a pretrained BERT encoder with a classification head.

The encoder is transformers' TFBertModel (tf-keras), loaded from the pipeline's checkpoint
artifact; the head is dropout + a dense layer on the [CLS] token's final hidden state, or on
the mean of the text's token states (`pooling="mean"`, padding excluded). Not on BERT's pooler,
which sentence-embedding checkpoints such as all-MiniLM-L6-v2 do not train. The optimizer
(AdamW, warm-up and decay, optionally layer-wise) comes from trainer/optimizer.py. A classifier
can start from the weights of an exported model instead (`warm_start`): retraining on new data
continues from the last blessed model.

Importing this module also keeps AutoGraph from converting tf-keras's and transformers' code
(`keep_library_code_unconverted`): measured on the demo's Trainer (MiniLM, 3 epochs, run_fn
alone, 2 cores), the first epoch went from 45 s to 14 s and building the classifier from 13.3 s
to 2.9 s (docs/BENCHMARKS.md, "Where the demo's time goes", has the whole demo).
"""
from __future__ import annotations

import os
from typing import Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tensorflow.python.autograph.core import config as autograph_config  # noqa: E402

from preprocessing.features import INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS  # noqa: E402
from serving.contract import CLASSES, SERVING_SIGNATURE, TEXT_INPUT  # noqa: E402

INPUT_NAMES = (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS)

# Libraries written to run in graph mode as they are: AutoGraph need not rewrite them.
UNCONVERTED_LIBRARIES = ("tf_keras", "transformers")


def keep_library_code_unconverted() -> None:
    """Adds tf-keras and transformers to AutoGraph's do-not-convert rules.

    TensorFlow's rules name `keras`, which was Keras 2 until TF 2.16; Keras 2 is now the
    `tf_keras` package, which the rules miss, so every tf.function that calls a Keras model
    (model.fit's train and test steps, the export's signatures) had AutoGraph parse and rewrite
    the whole Keras call path and transformers' BERT layers, once per process. Both are written
    for graph mode (Keras 2 ran unconverted under its old name; the encoder builds with plain
    Python control flow on its config), so they are traced as they are. Idempotent.
    """
    missing = [name for name in UNCONVERTED_LIBRARIES if not any(
        rule.matches(name) for rule in autograph_config.CONVERSION_RULES)]
    autograph_config.CONVERSION_RULES += tuple(
        autograph_config.DoNotConvert(name) for name in missing)


keep_library_code_unconverted()


def load_encoder(checkpoint_dir: str):
    """TFBertModel with the checkpoint's weights (TF .h5 or safetensors, no torch needed)."""
    from transformers import TFBertModel
    # No pooler: the head reads [CLS] directly, and an unused pooler only adds weights.
    return TFBertModel.from_pretrained(checkpoint_dir, name="bert", add_pooling_layer=False)


class MeanPooling(keras.layers.Layer):
    """[batch, length, hidden] states and their [batch, length] mask -> the mean over the
    unmasked positions, so padding never changes a text's representation."""

    def call(self, hidden, mask):
        weights = tf.cast(mask, hidden.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(hidden * weights, axis=1)
        return total / tf.maximum(tf.reduce_sum(weights, axis=1), tf.cast(1.0, hidden.dtype))


def build_classifier(checkpoint_dir: str, num_labels: int, dropout: float = 0.1,
                     encoder=None, pooling: str = "cls") -> keras.Model:
    """Inputs: int32 [batch, length] ids, mask and type ids. Output: float32 logits."""
    encoder = encoder or load_encoder(checkpoint_dir)
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name)
              for name in INPUT_NAMES}
    hidden = encoder(input_ids=inputs[INPUT_IDS], attention_mask=inputs[INPUT_MASK],
                     token_type_ids=inputs[INPUT_TYPE_IDS]).last_hidden_state
    if pooling == "mean":
        pooled = MeanPooling(name="mean_pooling")(hidden, inputs[INPUT_MASK])
    elif pooling == "cls":
        pooled = hidden[:, 0, :]
    else:
        raise ValueError(f"pooling must be 'cls' or 'mean', not {pooling!r}")
    cls = keras.layers.Dropout(dropout, name="cls_dropout")(pooled)
    # Logits in float32 even under a mixed-precision policy: softmax/loss need the range.
    logits = keras.layers.Dense(num_labels, name="classifier", dtype="float32",
                                kernel_initializer=keras.initializers.TruncatedNormal(
                                    stddev=encoder.config.initializer_range))(cls)
    return keras.Model(inputs=inputs, outputs=logits, name="bert_classifier")


def pooling_of(classifier: keras.Model) -> str:
    """The pooling `classifier` was built with."""
    return "mean" if any(isinstance(layer, MeanPooling) for layer in classifier.layers) else "cls"


def serving_copy(classifier: keras.Model, checkpoint_dir: str, precision: str = "float32"
                 ) -> keras.Model:
    """The classifier rebuilt outside any distribution strategy, with its weights cast to
    `precision` ('float32' or 'bfloat16': weights and arithmetic in bfloat16), for the serving
    export."""
    policy = {"float32": "float32", "bfloat16": "bfloat16"}[precision]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        num_labels = classifier.get_layer("classifier").units
        copy = build_classifier(checkpoint_dir, num_labels, dropout=0.0,
                                pooling=pooling_of(classifier))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    for target, source in zip(copy.weights, classifier.weights):
        target.assign(tf.cast(source, target.dtype))
    return copy


def compile_classifier(model: keras.Model, learning_rate: float, train_steps: int,
                       warmup_steps: int, weight_decay: float, jit_compile: bool,
                       layer_lr_decay: float = 1.0) -> None:
    from trainer import optimizer
    encoder = model.get_layer("bert")
    model.compile(optimizer=optimizer.create(
                      learning_rate, train_steps, warmup_steps, weight_decay,
                      num_layers=encoder.config.num_hidden_layers,
                      layer_lr_decay=layer_lr_decay),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=jit_compile)


class WarmStartError(ValueError):
    """An exported model whose weights do not fit the classifier (e.g. another label count),
    or whose classes are not this run's in the same order."""


def check_base_model_classes(saved_model_dir: str, label_names: Sequence[str]) -> None:
    """Raises WarmStartError unless the exported model at `saved_model_dir` answers with
    exactly `label_names`, in that order. Weight shapes alone cannot tell: with the same label
    count but another order (an inferred schema orders labels by frequency), its head would
    start out predicting the wrong names."""
    import tensorflow_text  # noqa: F401  registers the exported tokenizer's ops
    try:
        loaded = tf.saved_model.load(saved_model_dir)
        outputs = loaded.signatures[SERVING_SIGNATURE](**{TEXT_INPUT: tf.constant(["a"])})
        served = [name.decode("utf-8") for name in outputs[CLASSES][0].numpy()]
    except Exception as error:  # pylint: disable=broad-except  (no usable classes: no start)
        raise WarmStartError(f"cannot warm-start from {saved_model_dir}: its classes cannot be "
                             f"read ({type(error).__name__}: {error})") from error
    if served != list(label_names):
        raise WarmStartError(f"cannot warm-start from {saved_model_dir}: its classes {served} "
                             f"are not this run's {list(label_names)} in the same order, so "
                             "its head would predict the wrong names")


def warm_start(model: keras.Model, saved_model_dir: str) -> None:
    """Loads into `model` the classifier weights of a SavedModel that trainer/export.py wrote.

    The export's root object holds the classifier as `classifier` (the same layers, uncompiled),
    so its variables checkpoint restores into a checkpoint of the same shape: no second copy of
    the weights is kept next to the served model. Raises WarmStartError unless every weight of
    `model` gets a value.
    """
    # The same wrapping as the export, so the object graphs match layer for layer.
    served_shape = keras.Model(model.inputs, model.outputs, name=model.name)
    # read(), not restore(): restore() would also expect a tf.train.Checkpoint's save counter.
    checkpoint = tf.train.Checkpoint(classifier=served_shape)
    try:
        status = checkpoint.read(os.path.join(saved_model_dir, "variables", "variables"))
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:  # a missing or differently shaped weight
        raise WarmStartError(f"cannot warm-start from {saved_model_dir}: {error}") from error
