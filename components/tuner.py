"""Tuner: TFX's Tuner component, which also writes each trial's settings, validation accuracy
and wall time beside TFX's results (tuner_results/trials.json), for the run report.

TFX's own executor writes the best hyperparameters (the Trainer's input) and the completed
trials' scores and settings; the trial time (trainer/tuning.py reports it as a metric beside
the score) is what it leaves out. On Vertex AI the extension's Tuner runs instead, and the
report shows TFX's results without times.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

from tfx import types
from tfx.components import Tuner as _Tuner
from tfx.components.tuner import executor as tuner_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from trainer.config import TRIAL_SECONDS, VALIDATION_METRIC

TRIALS_FILE_NAME = "trials.json"


def trial_records(tuner) -> List[Dict[str, Any]]:
    """Every trial, in the order it ran: id, status, settings, score and seconds."""
    records = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda trial: trial.trial_id):
        metrics = trial.metrics
        records.append({
            "trial_id": trial.trial_id, "status": str(trial.status),
            "hyperparameters": dict(trial.hyperparameters.values),
            VALIDATION_METRIC: trial.score,
            "seconds": (metrics.get_last_value(TRIAL_SECONDS) if metrics.exists(TRIAL_SECONDS)
                        else None)})
    return records


class Executor(tuner_executor.Executor):
    """TFX's local Tuner executor, plus trials.json."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if tuner_executor.get_tune_args(exec_properties):
            raise ValueError("TuneArgs (parallel trials) need the Vertex AI Tuner: "
                             "--trainer-backend vertex-training")
        tuner = tuner_executor.search(input_dict, exec_properties, self._get_tmp_dir())
        tuner_executor.write_best_hyperparameters(tuner, output_dict)
        results_dir = artifact_utils.get_single_uri(
            output_dict[standard_component_specs.TUNER_RESULTS_KEY])
        io_utils.write_string_file(os.path.join(results_dir, TRIALS_FILE_NAME),
                                   json.dumps(trial_records(tuner), indent=1))


class Tuner(_Tuner):
    """TFX's Tuner with the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
