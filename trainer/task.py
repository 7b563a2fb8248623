"""TFX Trainer entry point (`run_fn`): fine-tune the classifier and export the serving model.

The Trainer component references `trainer.task.run_fn` by module path. Its settings arrive in
custom_config as a TrainerSettings (trainer/config.py: the training section and the raw feature
names, sequence length and backup root) plus the checkpoint artifact's URI; with the Tuner on,
its best hyperparameters replace the tuned training settings. With a base model (the latest
blessed model, which the pipeline wires in when warm start is on), the classifier starts from
that model's weights instead of the pretrained checkpoint's. It validates each epoch on the
held-out part of the training split, stops early when validation accuracy stalls, and exports
the weights of the best epoch (trainer/fitting.py).
Training state is backed up every `checkpoint_every_steps` steps (Keras BackupAndRestore) in a
directory keyed by the training inputs, so a Trainer killed mid-epoch and run again resumes
from its last backup instead of step 0. TensorBoard logs go to the run's model_run_dir, with
`training_summary.json` (strategy, replicas, precision, examples/s of the fit).

Under MultiWorkerMirroredStrategy (several replicas of a Vertex AI Training job, or workers a
TF_CONFIG names) every replica runs this function; only the chief's export is the model, and
the others return once it is in place (TFX's Trainer executor checks that it exists).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx.components.trainer.fn_args_utils import FnArgs  # noqa: E402

from preprocessing.checkpoint import read_tokenizer_settings  # noqa: E402
from preprocessing.features import CHECKPOINT_KEY, LABEL_VOCABULARY  # noqa: E402
from preprocessing.tokenization import BertTokenizerGraph  # noqa: E402
from trainer import distribution, export, fitting, model  # noqa: E402
from trainer.config import TrainerSettings, TrainingConfig  # noqa: E402


def _backup_dir(settings: TrainerSettings, training: TrainingConfig, fn_args: FnArgs) -> str:
    """Same training inputs and settings -> same backup directory across Trainer executions."""
    key = json.dumps([sorted(fn_args.train_files), fn_args.transform_output,
                      fn_args.custom_config[CHECKPOINT_KEY], fn_args.base_model,
                      training.to_dict(), settings.max_seq_length], sort_keys=True)
    return os.path.join(settings.backup_root, hashlib.sha256(key.encode()).hexdigest()[:16])


def _same_classes(base_model: str, tft_output: tft.TFTransformOutput) -> bool:
    """Whether the base model answers with this run's label vocabulary, in the same order
    (checked outside the distribution strategy's scope: it loads the exported model)."""
    label_names = [name.decode("utf-8") if isinstance(name, bytes) else name
                   for name in tft_output.vocabulary_by_name(LABEL_VOCABULARY)]
    try:
        model.check_base_model_classes(base_model, label_names)
    except model.WarmStartError as error:
        logging.warning("%s; training from the pretrained checkpoint instead", error)
        return False
    return True


def _warm_started(classifier: keras.Model, base_model: str) -> bool:
    try:
        model.warm_start(classifier, base_model)
    except model.WarmStartError as error:
        # E.g. the label set changed since the base model: its head cannot be reused.
        logging.warning("%s; training from the pretrained checkpoint instead", error)
        return False
    logging.info("Warm start from the weights of %s", base_model)
    return True


def tuned_hyperparameters(fn_args: FnArgs) -> dict:
    """The Tuner's best values (its best_hyperparameters input), {} without a Tuner."""
    config = fn_args.hyperparameters or {}
    return dict(config.get("values", {}))


def run_fn(fn_args: FnArgs) -> None:
    settings = TrainerSettings.from_custom_config(fn_args.custom_config)
    hyperparameters = tuned_hyperparameters(fn_args)
    training = settings.training.tuned(hyperparameters)
    checkpoint = fn_args.custom_config[CHECKPOINT_KEY]
    keras.utils.set_random_seed(training.seed)
    strategy = distribution.make_strategy(training.distribution)
    policy = distribution.set_precision(training.mixed_precision)

    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    data = fitting.TransformedData.of(fn_args.train_files, tft_output, settings.max_seq_length)
    batches = fitting.datasets(data, training)
    train_steps = batches.steps_per_epoch * training.epochs
    logging.info("Training on %d examples, %d labels: %d epochs x %d steps, strategy %s (%d "
                 "replicas), precision %s, xla %s; validation on %d held-out examples%s",
                 batches.train_examples, data.num_labels, training.epochs,
                 batches.steps_per_epoch, type(strategy).__name__,
                 strategy.num_replicas_in_sync, policy, training.xla,
                 batches.validation_examples,
                 f"; tuned {hyperparameters}" if hyperparameters else "")

    base_model = fn_args.base_model
    if base_model and not _same_classes(base_model, tft_output):
        base_model = None
    with strategy.scope():
        classifier = fitting.new_classifier(checkpoint, data.num_labels, training)
        if base_model and not _warm_started(classifier, base_model):
            # A failed restore may have loaded some of the weights: start over, cleanly.
            classifier = fitting.new_classifier(checkpoint, data.num_labels, training)
        fitting.compile_for(classifier, training, train_steps)

    callbacks = [
        keras.callbacks.BackupAndRestore(_backup_dir(settings, training, fn_args),
                                         save_freq=training.checkpoint_every_steps),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir,
                                    update_freq=max(1, min(50, batches.steps_per_epoch // 10)),
                                    profile_batch=training.profile_steps or 0),
    ]
    if batches.validation is not None:
        callbacks.append(fitting.best_epoch_callback(training))
    started = time.monotonic()
    history, best_epoch = fitting.fit(classifier, batches, training.epochs, callbacks)
    fit_seconds = time.monotonic() - started
    # Steps the fit ran (a resumed run skips the steps of its backup).
    steps_run = len(history.epoch) * batches.steps_per_epoch

    # Under MultiWorkerMirroredStrategy every worker must take part in saving; only the
    # chief's copy is the model, the others write to a scratch directory and drop it.
    if distribution.is_chief(strategy):
        _export(classifier, tft_output, settings, checkpoint, fn_args.serving_model_dir)
        examples = steps_run * training.train_batch_size
        _write_training_summary(fn_args.model_run_dir, {
            "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
            "devices": _devices(strategy), "precision": policy, "xla": training.xla,
            "training": training.to_dict(), "tuned_hyperparameters": hyperparameters,
            "train_examples": batches.train_examples,
            "validation_examples": batches.validation_examples,
            "epochs_run": len(history.epoch), "best_epoch": best_epoch,
            "history": {name: [float(value) for value in values]
                        for name, values in history.history.items()},
            "examples": examples, "steps": steps_run, "fit_seconds": fit_seconds,
            "examples_per_second": examples / fit_seconds})
    else:
        scratch = tempfile.mkdtemp()
        _export(classifier, tft_output, settings, checkpoint, scratch)
        tf.io.gfile.rmtree(scratch)
        _wait_for(os.path.join(fn_args.serving_model_dir, "saved_model.pb"))


def _export(classifier: keras.Model, tft_output: tft.TFTransformOutput,
            settings: TrainerSettings, checkpoint: str, export_dir: str) -> None:
    """The serving SavedModel, with the Transform graph's tokenizer (same checkpoint settings
    and max_seq_length; the export checks it against the transform graph) and the encoder in
    the configured serving precision (trainer/export.py)."""
    training = settings.training
    tokenizer = BertTokenizerGraph(read_tokenizer_settings(checkpoint), settings.max_seq_length)
    options = export.ServingOptions(precision=training.serving_precision, xla=training.serving_xla)
    export.export_serving_model(
        classifier, tft_output, settings.text_feature, settings.label_feature, export_dir,
        tokenizer=tokenizer, options=options,
        encoder_model=(model.serving_copy(classifier, checkpoint, training.serving_precision)
                       if training.serving_precision != "float32" else None))


TRAINING_SUMMARY_FILE = "training_summary.json"
_CHIEF_EXPORT_TIMEOUT_SECONDS = 1800


def _devices(strategy: tf.distribute.Strategy):
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has none: it runs on this process's device
        return []


def _write_training_summary(model_run_dir: str, summary) -> None:
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_SUMMARY_FILE), "w") as handle:
        handle.write(json.dumps(summary, indent=2, sort_keys=True))


def _wait_for(path: str) -> None:
    """Returns once `path` exists (the chief's export); raises after the time-out."""
    deadline = time.monotonic() + _CHIEF_EXPORT_TIMEOUT_SECONDS
    while not tf.io.gfile.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the chief's export {path} did not appear within "
                               f"{_CHIEF_EXPORT_TIMEOUT_SECONDS} s")
        time.sleep(2)
