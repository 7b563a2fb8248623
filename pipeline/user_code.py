"""The user code the pipeline's components run, named by module path.

TFX loads these in the component's own process (on Kubeflow/Vertex: in the pipeline image), so
the pipeline definition names them as strings and imports neither (as the TFX template's
configs.py does). tests/test_architecture.py checks that each path resolves to a function.
"""

# Transform: raw text and label -> token ids, mask, type ids, class index, length bucket.
PREPROCESSING_FN = "preprocessing.preprocessing.preprocessing_fn"
# Trainer: fine-tune the classifier and export the serving SavedModel.
RUN_FN = "trainer.task.run_fn"
# Tuner (with --tune): the KerasTuner search whose best hyperparameters the Trainer takes.
TUNER_FN = "trainer.tuning.tuner_fn"
