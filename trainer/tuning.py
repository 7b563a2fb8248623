"""The Tuner's `tuner_fn` (TFX Tuner with KerasTuner): a random search over the tuned training
settings, each trial trained as the Trainer trains (trainer/fitting.py) and scored by its best
validation accuracy on the held-out part of the training split.

The pipeline gives the Tuner the Trainer's settings, the tuning section and the checkpoint's
URI in custom_config (TFX's Vertex AI Tuner runs its own worker executor, which cannot take an
extra input channel). The search space is the tuning section's choices for learning rate,
epochs, batch size, warm-up fraction and dropout (trainer/config.py: TUNED). A trial trains at
most `tuner_max_steps` steps (fewer steps per epoch when epochs x steps would exceed it), so a
search fits a laptop. The best trial's values reach the Trainer as TFX's best_hyperparameters.

The models are tf-keras (Keras 2), while KerasTuner 1.4 checks that build() returns a Keras 3
model and adds Keras 3 callbacks. So `ClassifierTuner` runs a trial itself (KerasTuner's
documented way for custom training: override Tuner.run_trial): the hypermodel builds and fits
the tf-keras classifier and returns its score as a dict, with the trial's wall time beside it;
the search space is declared without building a model.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2

import keras_tuner  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx.components.trainer.fn_args_utils import FnArgs  # noqa: E402
from tfx.components.tuner.component import TunerFnResult  # noqa: E402

from preprocessing.checkpoint import check_checkpoint_dir  # noqa: E402
from preprocessing.features import CHECKPOINT_KEY  # noqa: E402
from trainer import fitting  # noqa: E402
from trainer.config import (TRIAL_SECONDS, TUNING_KEY, VALIDATION_METRIC,  # noqa: E402
                            TrainerSettings, TrainingConfig, TuningConfig)


def search_space(hp: keras_tuner.HyperParameters, tuning: TuningConfig) -> Dict[str, Any]:
    """The trial's values: one hyperparameter per tuned setting, over the section's choices."""
    return {name: hp.Choice(name, list(values)) if len(values) > 1 else hp.Fixed(name, values[0])
            for name, values in tuning.choices().items()}


class ClassifierHyperModel(keras_tuner.HyperModel):
    """Builds and fits the Trainer's classifier with a trial's settings."""

    def __init__(self, settings: TrainerSettings, tuning: TuningConfig, checkpoint: str,
                 data: fitting.TransformedData):
        super().__init__(name="bert_classifier")
        self._settings, self._tuning = settings, tuning
        self._checkpoint, self._data = checkpoint, data

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        search_space(hp, self._tuning)

    def _training(self, hp: keras_tuner.HyperParameters) -> TrainingConfig:
        return self._settings.training.tuned(search_space(hp, self._tuning))

    def _batches(self, training: TrainingConfig) -> fitting.Datasets:
        per_epoch = max(1, self._tuning.tuner_max_steps // training.epochs)
        return fitting.datasets(self._data, training, max_steps_per_epoch=per_epoch)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        training = self._training(hp)
        keras.utils.set_random_seed(training.seed)
        classifier = fitting.new_classifier(self._checkpoint, self._data.num_labels, training)
        steps = self._batches(training).steps_per_epoch * training.epochs
        fitting.compile_for(classifier, training, steps)
        return classifier

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args,
            **kwargs) -> Dict[str, float]:
        training = self._training(hp)
        batches = self._batches(training)
        if batches.validation is None:
            raise ValueError("the Tuner scores trials on the held-out validation part of the "
                             "training split: --validation-fraction must be above 0")
        started = time.monotonic()
        history, _ = fitting.fit(model, batches, training.epochs,
                                 [fitting.best_epoch_callback(training)])
        scores = history.history[VALIDATION_METRIC]
        return {VALIDATION_METRIC: max(scores),
                TRIAL_SECONDS: time.monotonic() - started}


class ClassifierTuner(keras_tuner.Tuner):
    """A KerasTuner Tuner whose trials build and fit the hypermodel's tf-keras classifier."""

    def run_trial(self, trial, *args, **kwargs) -> Dict[str, float]:
        hp = trial.hyperparameters
        return self.hypermodel.fit(hp, self.hypermodel.build(hp))


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    settings = TrainerSettings.from_custom_config(fn_args.custom_config)
    tuning = TuningConfig(**fn_args.custom_config[TUNING_KEY])
    checkpoint = fn_args.custom_config[CHECKPOINT_KEY]
    check_checkpoint_dir(checkpoint)
    data = fitting.TransformedData.of(fn_args.train_files,
                                      tft.TFTransformOutput(fn_args.transform_graph_path),
                                      settings.max_seq_length)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective(VALIDATION_METRIC, direction="max"),
        max_trials=tuning.tuner_trials, seed=settings.training.seed)
    tuner = ClassifierTuner(oracle, ClassifierHyperModel(settings, tuning, checkpoint, data),
                            directory=fn_args.working_dir, project_name="bertpipe_tuning",
                            overwrite=True)
    return TunerFnResult(tuner=tuner, fit_kwargs={})
