"""The Trainer run as a Vertex AI Training custom job (--trainer-backend vertex-training).

Kept apart from components/checkpoint_inputs.py because TFX's Vertex executor imports the
Vertex AI client (google.cloud.aiplatform: ~1,400 modules, ~3 s per process): a local run or a
Kubeflow node that trains in place never imports this module.
"""
from __future__ import annotations

from tfx.components import Trainer as _Trainer
from tfx.extensions.google_cloud_ai_platform.trainer import \
    executor as ai_platform_trainer_executor

from components.checkpoint_inputs import TrainerExecutor, with_checkpoint_input


class VertexTrainingExecutor(ai_platform_trainer_executor.GenericExecutor):
    """TFX's launcher of a Vertex AI Training custom job (worker pools from custom_config's
    TRAINING_ARGS_KEY); every replica runs TrainerExecutor, so each reads the checkpoint
    artifact just as the Trainer does in a pipeline node."""

    def _GetExecutorClass(self):
        return TrainerExecutor


VertexTrainer = with_checkpoint_input(_Trainer, VertexTrainingExecutor)
