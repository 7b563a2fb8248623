"""The training recipe's validation and the Tuner, for real with a tiny BERT.

- Early stopping: run_fn validates on the held-out part of the training split, stops when
  validation accuracy stalls, and exports the best epoch's weights, not the last epoch's.
- The Tuner path end to end: TFX's Tuner (KerasTuner) runs two trials, its best
  hyperparameters reach the Trainer (ML Metadata records the artifact as the Trainer's input,
  and the Trainer trains with those values), and the report lists the trials.
"""
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from ml_metadata.proto import metadata_store_pb2

import trainer_harness
from pipeline import local_runner, report, runs
from trainer import input_pipeline, model
from trainer.model import INPUT_NAMES


def validation_loss(saved_model_dir, trainer_inputs, fraction):
    """Mean cross-entropy of the exported classifier on the held-out validation part: its
    weights read the way a warm start reads them, into a classifier of the same shape."""
    classifier = model.build_classifier(trainer_inputs.checkpoint, num_labels=2)
    model.warm_start(classifier, saved_model_dir)
    feature_spec = tft.TFTransformOutput(
        trainer_inputs.transform_output).transformed_feature_spec()
    losses = []
    for features, labels in input_pipeline.make_dataset(
            trainer_inputs.train_files, feature_spec, 64, 32, training=False,
            part=input_pipeline.VALIDATION_PART, validation_fraction=fraction):
        logits = classifier({name: features[name] for name in INPUT_NAMES}, training=False)
        losses.append(tf.keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True).numpy())
    return float(np.mean(np.concatenate(losses)))


def test_training_stops_early_and_exports_the_best_epochs_weights(trainer_inputs, tmp_path):
    # No epoch after the first can gain more than 1.0 accuracy: the first is the best, and
    # with patience 1 training stops after the second of four epochs.
    # Also profiled (--profile-steps): steps 2 and 3 of the fit, into the run's logs.
    config = trainer_inputs.train_config(
        tmp_path / "out", epochs=4, learning_rate=1e-2, validation_fraction=0.25,
        early_stopping_patience=1, early_stopping_min_delta=1.0, profile_steps=(2, 3))
    fn_args = trainer_inputs.fn_args_spec(config, tmp_path / "run")
    process = trainer_harness.run_trainer(tmp_path / "trainer", fn_args)
    summary = json.loads((tmp_path / "run" / "model_run" / "training_summary.json").read_text())
    assert summary["epochs_run"] == 2 and summary["best_epoch"] == 0, summary
    assert "Restoring model weights from the end of the best epoch: 1." in process.stdout
    history = summary["history"]
    assert summary["train_examples"] + summary["validation_examples"] == 330
    assert 50 < summary["validation_examples"] < 120  # about a quarter held out
    # The exported model is epoch 1's: its validation loss is the one Keras logged for epoch 1,
    # not epoch 2's. The tiny BERT stays near chance on this data, but a large learning rate
    # moves its weights enough that the two epochs' losses differ well beyond the tolerance
    # (the same weights on the same rows give the same loss to float precision).
    profiles = list((tmp_path / "run" / "model_run" / "plugins" / "profile").glob(
        "*/*.xplane.pb"))
    assert profiles and all(path.stat().st_size > 0 for path in profiles), profiles
    assert report._profile_dir(str(tmp_path / "run" / "model_run")) == str(profiles[0].parent)
    # Progress lines (trainer/progress.py), not Keras' own per-epoch lines.
    assert "training: 4 epochs x" in process.stdout and "epoch 2/4 done" in process.stdout
    assert "training: epoch 3/4" not in process.stdout  # stopped after the second epoch

    exported = validation_loss(fn_args["serving_model_dir"], trainer_inputs, 0.25)
    assert abs(history["val_loss"][1] - history["val_loss"][0]) > 2e-4, history
    assert abs(exported - history["val_loss"][0]) < 2e-5, (exported, history)


@pytest.mark.slow  # several tuning trials: run with `make test-all`
def test_tuner_trials_pick_the_hyperparameters_the_trainer_trains_with(demo_first_run,
                                                                         tmp_path):
    # In a copy of the shared run directory: the data half is reused from the cache.
    config = demo_first_run.replace(
        output_dir=str(tmp_path / "runs"), tune=True, tuner_trials=2, tuner_max_steps=4,
        tune_learning_rate=[1e-4, 1e-6], tune_epochs=[1], tune_train_batch_size=[16],
        tune_warmup_fraction=[0.1], tune_dropout=[0.1], validation_fraction=0.2)
    shutil.copytree(demo_first_run.runtime.output_dir, config.runtime.output_dir)
    local_runner.run(config)
    run = runs.read_run(config.run_dir)
    assert run.get("Transform").state == "CACHED"
    assert run.get("Tuner").state == "COMPLETE" and run.get("Trainer").state == "COMPLETE"

    best = run.artifact("Tuner", "best_hyperparameters")
    [best_file] = [name for name in os.listdir(best.uri)]
    best_values = json.loads(pathlib.Path(best.uri, best_file).read_text())["values"]
    trials = json.loads(pathlib.Path(run.artifact("Tuner", "tuner_results").uri,
                                     "trials.json").read_text())
    assert len(trials) == 2
    assert {trial["hyperparameters"]["learning_rate"] for trial in trials} == {1e-4, 1e-6}
    winner = max(trials, key=lambda trial: trial["val_accuracy"])
    assert best_values["learning_rate"] == winner["hyperparameters"]["learning_rate"]
    assert all(trial["seconds"] > 0 for trial in trials)

    # ML Metadata: the Trainer's execution took the Tuner's artifact as its hyperparameters.
    store = runs.open_store(config.run_dir)
    trainer_node = store.get_context_by_type_and_name(
        "node", f"{config.runtime.pipeline_name}.Trainer")
    trainer_execution = max(store.get_executions_by_context(trainer_node.id),
                            key=lambda execution: execution.id)  # this run's
    inputs = {event.path.steps[0].key: event.artifact_id
              for event in store.get_events_by_execution_ids([trainer_execution.id])
              if event.type == metadata_store_pb2.Event.INPUT}
    assert inputs["hyperparameters"] == best.id
    # ... and trained with them.
    summary = json.loads(pathlib.Path(run.artifact("Trainer", "model_run").uri,
                                      "training_summary.json").read_text())
    assert summary["tuned_hyperparameters"] == best_values
    assert summary["training"]["learning_rate"] == best_values["learning_rate"]
    assert summary["training"]["train_batch_size"] == 16

    # The report lists the trials and names the winner.
    page = report.render_report(config.run_dir)
    assert "Tuning" in page and f"{winner['trial_id']}" in page
