"""What a run on this machine needs to know before its pipeline is built, read from this machine.

`create_pipeline` reads nothing (so it compiles anywhere, credentials or not); the local runner
calls `prepare_local_run` first, which settles, with the messages users see:

- the checkpoint: the packaged MiniLM for '', a local directory made absolute, a hub id
  downloaded into the Hugging Face cache; each checked to hold config.json and vocab.txt, to be
  the BERT architecture and to have position embeddings for --max-seq-length
  (preprocessing/checkpoint.py), so a setting it cannot take stops the run before any
  component. On Kubeflow/Vertex the Transform executor makes the same check where the
  checkpoint is read (components/checkpoint_inputs.py);
- the curated schema: it must exist, and its label domain gives the label values (class order)
  for the Evaluator's per-class metrics unless --label-values names them;
- data directories: a local directory becomes `<dir>/*`, the pattern ExampleGen reads.
"""
from __future__ import annotations

import dataclasses
import os

from pipeline.config import ConfigError, PipelineConfig, flag_of, is_remote


def _directory_as_pattern(path: str) -> str:
    if path and not is_remote(path) and os.path.isdir(path):
        return os.path.join(path, "*")
    return path


def prepare_local_run(config: PipelineConfig) -> PipelineConfig:
    """`config.resolved()` with the checkpoint, label values and data patterns settled."""
    from preprocessing.checkpoint import check_checkpoint_settings, resolve_checkpoint
    config = config.resolved()
    checkpoint = resolve_checkpoint(config.model.checkpoint)
    check_checkpoint_settings(checkpoint, config.model.max_seq_length)
    data = config.data
    label_values = data.label_values
    if data.schema_path:
        if not is_remote(data.schema_path) and not os.path.isfile(data.schema_path):
            raise ConfigError(f"schema_path ({flag_of('schema_path')}) {data.schema_path}: "
                              "no such file")
        if not label_values and not is_remote(data.schema_path):
            from preprocessing.preprocessing import label_values_from_schema
            label_values = tuple(label_values_from_schema(data.schema_path,
                                                          data.label_column) or ())
    return dataclasses.replace(
        config,
        data=dataclasses.replace(data, train_data=_directory_as_pattern(data.train_data),
                                 eval_data=_directory_as_pattern(data.eval_data),
                                 label_values=label_values),
        model=dataclasses.replace(config.model, checkpoint=checkpoint))
