"""`bertpipe gpu-check` (`make gpu-check`): does this machine train on all its GPUs?

For a machine with NVIDIA GPUs and this stack. It prints the devices TensorFlow sees, then runs
the pipeline's data half and Trainer on a sample of a labeled file (SST-2 by default) with
`--distribution auto --mixed-precision auto --xla`, and checks what the Trainer recorded
(trainer/task.py's training_summary.json): MirroredStrategy over every GPU and float16
compute (mixed_float16). It prints the examples/s of the fit. With no GPU visible it stops at
once with GpuCheckError ("no GPU visible"), exit status 2.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import List, Optional

from pipeline.config import PipelineConfig


class GpuCheckError(ValueError):
    """This machine does not train on its GPUs as it should; the message says what was seen."""


def visible_devices() -> List[str]:
    import tensorflow as tf
    return [f"{device.device_type} {device.name}" for device in tf.config.list_physical_devices()]


def sample_rows(source: str, rows: int, target: str) -> None:
    """The header and the first `rows` rows of a CSV/TSV file."""
    with open(source, encoding="utf-8") as reader, open(target, "w", encoding="utf-8") as writer:
        for index, line in enumerate(reader):
            if index > rows:
                break
            writer.write(line)


def run_check(data: str, text_column: str, label_column: str, rows: int,
              work_dir: Optional[str] = None) -> dict:
    """Runs the check; returns the Trainer's training summary, or raises GpuCheckError."""
    import tensorflow as tf
    from pipeline import local_runner, runs
    from trainer.task import TRAINING_SUMMARY_FILE
    devices = visible_devices()
    print(f"TensorFlow {tf.__version__} sees: {', '.join(devices)}", flush=True)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise GpuCheckError(
            "no GPU visible to TensorFlow (it sees only " + ", ".join(devices) + "). Check "
            "`nvidia-smi`, the NVIDIA driver and CUDA libraries TensorFlow 2.16 needs, and "
            "CUDA_VISIBLE_DEVICES; nothing was trained")
    work_dir = work_dir or tempfile.mkdtemp(prefix="bertpipe-gpu-check-")
    sample = os.path.join(work_dir, "sample" + os.path.splitext(data)[1])
    sample_rows(data, rows, sample)
    config = PipelineConfig.from_settings(
        train_data=sample, text_column=text_column, label_column=label_column, epochs=1,
        distribution="auto", mixed_precision="auto", xla=True, min_accuracy=0.0,
        output_dir=os.path.join(work_dir, "runs"), pipeline_name="gpu_check")
    local_runner.run(config)
    model_run = runs.read_run(config.run_dir).artifact("Trainer", "model_run")
    with tf.io.gfile.GFile(os.path.join(model_run.uri, TRAINING_SUMMARY_FILE)) as handle:
        summary = json.load(handle)
    problems = []
    if summary["strategy"] != "MirroredStrategy" or summary["replicas"] != len(gpus):
        problems.append(f"the Trainer used {summary['strategy']} with {summary['replicas']} "
                        f"replica(s), not MirroredStrategy over the {len(gpus)} GPU(s)")
    if summary["precision"] != "mixed_float16":
        problems.append(f"the Trainer computed in {summary['precision']}, not mixed_float16")
    if problems:
        raise GpuCheckError("; ".join(problems) + f" (training summary: {summary})")
    return summary


def main(data: str, text_column: str, label_column: str, rows: int) -> int:
    summary = run_check(data, text_column, label_column, rows)
    print(f"GPU check passed: {summary['strategy']} over {summary['replicas']} GPU(s) "
          f"{summary['devices']}, {summary['precision']}, XLA {summary['xla']}: "
          f"{summary['examples_per_second']:.1f} examples/s ({summary['examples']} examples "
          f"in {summary['fit_seconds']:.1f} s, compilation included)")
    return 0
