"""TFX Trainer entry point (`run_fn`): fine-tune the classifier and export the serving model.

The Trainer component references `trainer.task.run_fn` by module path. Settings come from the
pipeline's PipelineConfig (passed whole in custom_config) and the checkpoint artifact's URI.
With `warm_start` and a base model (the latest blessed model, resolved by the pipeline), the
classifier starts from that model's weights instead of the pretrained checkpoint's.
Training state is backed up every `checkpoint_every_steps` steps (Keras BackupAndRestore) in a
directory keyed by the training inputs, so a Trainer killed mid-epoch and run again resumes
from its last backup instead of step 0. TensorBoard logs go to the run's model_run_dir.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx.components.trainer.fn_args_utils import FnArgs  # noqa: E402

from pipeline.config import PipelineConfig  # noqa: E402
from preprocessing.preprocessing import CHECKPOINT_KEY, LABEL_VOCABULARY  # noqa: E402
from trainer import distribution, export, input_pipeline, model  # noqa: E402

PIPELINE_CONFIG_KEY = "pipeline_config"


# The settings that shape the training state; others (thresholds, serving) do not invalidate
# a backup, so a rerun with a changed threshold still resumes.
_TRAINING_FIELDS = ("epochs", "train_batch_size", "learning_rate", "warmup_fraction",
                    "weight_decay", "dropout", "seed", "max_seq_length", "distribution",
                    "mixed_precision", "xla", "checkpoint_every_steps")


def _backup_dir(config: PipelineConfig, fn_args: FnArgs) -> str:
    """Same training inputs and settings -> same backup directory across Trainer executions."""
    settings = {name: getattr(config, name) for name in _TRAINING_FIELDS}
    key = json.dumps([sorted(fn_args.train_files), fn_args.transform_output,
                      fn_args.custom_config[CHECKPOINT_KEY], fn_args.base_model, settings],
                     sort_keys=True)
    return os.path.join(config.backup_root, hashlib.sha256(key.encode()).hexdigest()[:16])


def _warm_started(classifier: keras.Model, base_model: str) -> bool:
    try:
        model.warm_start(classifier, base_model)
    except model.WarmStartError as error:
        # E.g. the label set changed since the base model: its head cannot be reused.
        logging.warning("%s; training from the pretrained checkpoint instead", error)
        return False
    logging.info("Warm start from the weights of %s", base_model)
    return True


def run_fn(fn_args: FnArgs) -> None:
    config = PipelineConfig(**fn_args.custom_config[PIPELINE_CONFIG_KEY])
    checkpoint = fn_args.custom_config[CHECKPOINT_KEY]
    keras.utils.set_random_seed(config.seed)
    strategy = distribution.make_strategy(config.distribution)
    policy = distribution.set_precision(config.mixed_precision)

    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    feature_spec = tft_output.transformed_feature_spec()
    num_labels = tft_output.vocabulary_size_by_name(LABEL_VOCABULARY)
    train_examples = sum(input_pipeline.count_records(pattern)
                         for pattern in fn_args.train_files)
    steps_per_epoch = max(1, train_examples // config.train_batch_size)
    train_steps = steps_per_epoch * config.epochs
    logging.info("Training on %d examples, %d labels: %d epochs x %d steps, strategy %s (%d "
                 "replicas), precision %s, xla %s", train_examples, num_labels, config.epochs,
                 steps_per_epoch, type(strategy).__name__, strategy.num_replicas_in_sync,
                 policy, config.xla)

    train_data = input_pipeline.make_dataset(
        fn_args.train_files, feature_spec, config.train_batch_size, config.max_seq_length,
        training=True, seed=config.seed)
    eval_data = input_pipeline.make_dataset(
        fn_args.eval_files, feature_spec, config.eval_batch_size, config.max_seq_length,
        training=False)

    with strategy.scope():
        classifier = model.build_classifier(checkpoint, num_labels, config.dropout)
        if (config.warm_start and fn_args.base_model
                and not _warm_started(classifier, fn_args.base_model)):
            # A failed restore may have loaded some of the weights: start over, cleanly.
            classifier = model.build_classifier(checkpoint, num_labels, config.dropout)
        model.compile_classifier(
            classifier, config.learning_rate, train_steps,
            warmup_steps=int(train_steps * config.warmup_fraction),
            weight_decay=config.weight_decay, jit_compile=config.xla)

    callbacks = [
        keras.callbacks.BackupAndRestore(_backup_dir(config, fn_args),
                                         save_freq=config.checkpoint_every_steps),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir,
                                    update_freq=max(1, min(50, steps_per_epoch // 10))),
    ]
    classifier.fit(train_data, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                   validation_data=eval_data, callbacks=callbacks, verbose=2)

    # Under MultiWorkerMirroredStrategy every worker must take part in saving; only the
    # chief's copy is the model, the others write to a scratch directory and drop it.
    if distribution.is_chief(strategy):
        export.export_serving_model(classifier, tft_output, config.text_column,
                                    config.label_column, fn_args.serving_model_dir)
    else:
        scratch = tempfile.mkdtemp()
        export.export_serving_model(classifier, tft_output, config.text_column,
                                    config.label_column, scratch)
        tf.io.gfile.rmtree(scratch)
