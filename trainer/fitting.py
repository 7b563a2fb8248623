"""Fitting the classifier on Transform's output: the steps the Trainer's run_fn and the Tuner's
trials share, so a trial trains exactly as the Trainer would with the same settings.

- `TransformedData`: the transformed train files, their feature spec and label count;
- `datasets`: training batches from the training split minus its held-out part, validation
  batches from the held-out part (trainer/input_pipeline.py), and the steps of an epoch;
- `new_classifier`: the pretrained encoder with a new head, compiled with AdamW, linear warm-up
  and decay over the run's steps;
- `best_epoch_callback`: early stopping on validation accuracy, restoring the weights of the
  best epoch when training ends (stopped early or not).
"""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402

from preprocessing.features import LABEL_VOCABULARY  # noqa: E402
from trainer import input_pipeline, model, progress  # noqa: E402
from trainer.config import VALIDATION_METRIC, TrainingConfig  # noqa: E402


@dataclasses.dataclass(frozen=True)
class TransformedData:
    train_files: Sequence[str]
    feature_spec: dict
    num_labels: int
    max_seq_length: int

    @classmethod
    def of(cls, train_files: Sequence[str], tft_output: tft.TFTransformOutput,
           max_seq_length: int) -> "TransformedData":
        return cls(list(train_files), tft_output.transformed_feature_spec(),
                   tft_output.vocabulary_size_by_name(LABEL_VOCABULARY), max_seq_length)


@dataclasses.dataclass
class Datasets:
    train: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    train_examples: int
    validation_examples: int
    steps_per_epoch: int
    batch_size: int


def datasets(data: TransformedData, training: TrainingConfig,
             max_steps_per_epoch: Optional[int] = None) -> Datasets:
    """Training and (with a validation fraction) held-out validation batches."""
    fraction = training.validation_fraction
    train_part = input_pipeline.TRAIN_PART if fraction else input_pipeline.ALL
    train_examples = input_pipeline.count_records(data.train_files, train_part, fraction)
    validation_examples = (input_pipeline.count_records(
        data.train_files, input_pipeline.VALIDATION_PART, fraction) if fraction else 0)
    steps_per_epoch = max(1, train_examples // training.train_batch_size)
    if max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, max_steps_per_epoch)
    train = input_pipeline.make_dataset(
        data.train_files, data.feature_spec, training.train_batch_size, data.max_seq_length,
        training=True, seed=training.seed, part=train_part, validation_fraction=fraction)
    validation = input_pipeline.make_dataset(
        data.train_files, data.feature_spec, training.eval_batch_size, data.max_seq_length,
        training=False, part=input_pipeline.VALIDATION_PART,
        validation_fraction=fraction) if validation_examples else None
    return Datasets(train, validation, train_examples, validation_examples, steps_per_epoch,
                    training.train_batch_size)


def new_classifier(checkpoint: str, num_labels: int, training: TrainingConfig) -> keras.Model:
    return model.build_classifier(checkpoint, num_labels, training.dropout,
                                  pooling=training.pooling)


def compile_for(classifier: keras.Model, training: TrainingConfig, train_steps: int) -> None:
    model.compile_classifier(
        classifier, training.learning_rate, train_steps,
        warmup_steps=int(train_steps * training.warmup_fraction),
        weight_decay=training.weight_decay, jit_compile=training.xla,
        layer_lr_decay=training.layer_lr_decay)


def best_epoch_callback(training: TrainingConfig) -> keras.callbacks.EarlyStopping:
    """Stops after `early_stopping_patience` epochs without a validation accuracy gain above
    `early_stopping_min_delta` (never, with patience 0), and restores the best epoch's
    weights when training ends."""
    return keras.callbacks.EarlyStopping(
        monitor=VALIDATION_METRIC, mode="max",
        patience=training.early_stopping_patience or training.epochs,
        min_delta=training.early_stopping_min_delta, restore_best_weights=True, verbose=1)


def fit(classifier: keras.Model, data: Datasets, epochs: int,
        callbacks: List[keras.callbacks.Callback]) -> Tuple[keras.callbacks.History,
                                                            Optional[int]]:
    """model.fit, its progress reported (trainer/progress.py); returns the history and the best
    epoch (0-based) when there was validation."""
    stopper = next((callback for callback in callbacks
                    if isinstance(callback, keras.callbacks.EarlyStopping)), None)
    history = classifier.fit(data.train, epochs=epochs, steps_per_epoch=data.steps_per_epoch,
                             validation_data=data.validation, verbose=0,
                             callbacks=[*callbacks, progress.TrainingProgress(data.batch_size)])
    return history, (stopper.best_epoch if stopper is not None and data.validation is not None
                     else None)
