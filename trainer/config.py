"""The training section of the configuration: every setting that shapes the trained model.

The Trainer component receives exactly this section (as a dict in its `custom_config`, see
`trainer/task.py`), so a change elsewhere in the configuration (a blessing threshold, the
serving root) leaves the Trainer's inputs unchanged and TFX's cache reuses its model. It has
no heavy imports: the command line builds it before TensorFlow is loaded.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

STRATEGIES = ("auto", "default", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
SERVING_PRECISIONS = ("float32", "bfloat16")


class ConfigError(ValueError):
    """A setting that cannot work; the message names it (and its flag: --field-name)."""


def flag_of(field_name: str) -> str:
    """The command-line flag of a configuration field: `min_accuracy` -> `--min-accuracy`."""
    return "--" + field_name.replace("_", "-")


def check_at_least(section: Any, names, minimum: float) -> None:
    for name in names:
        value = getattr(section, name)
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}, got {value}")


def check_choice(value: str, name: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the classifier is trained. Batch sizes are global: tf.distribute splits them across
    replicas."""

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
    # pretrained checkpoint. None (auto): on when the training data has {SPAN}, i.e. when a run
    # retrains on new data; off otherwise, so that rerunning on the same data reuses the cached
    # model instead of training it further (PipelineConfig.resolved() decides).
    warm_start: Optional[bool] = None
    # The exported model's encoder (trainer/export.py): compiled by XLA (TF Serving then needs
    # --xla_cpu_compilation_enabled=true), and its arithmetic: bfloat16 runs about twice as fast
    # on CPUs with AVX512-BF16/AMX; its labels agreed with float32's on 99.5%+ of SST-2 dev.
    serving_xla: bool = True
    serving_precision: str = "float32"  # one of SERVING_PRECISIONS

    def __post_init__(self):
        check_at_least(self, ("epochs", "train_batch_size", "eval_batch_size",
                              "checkpoint_every_steps"), 1)
        check_at_least(self, ("learning_rate", "weight_decay", "dropout", "warmup_fraction"), 0)
        if self.warmup_fraction > 1 or self.dropout >= 1:
            raise ConfigError(f"warmup_fraction must be in [0, 1] and dropout in [0, 1), got "
                              f"{self.warmup_fraction} and {self.dropout}")
        check_choice(self.distribution, "distribution", STRATEGIES)
        check_choice(self.mixed_precision, "mixed_precision", PRECISIONS)
        check_choice(self.serving_precision, "serving_precision", SERVING_PRECISIONS)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainingConfig":
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """What the Trainer component is given in `custom_config`: the training section and the few
    facts of other sections it needs. The pipeline's Trainer executor adds the checkpoint's URI
    (components/checkpoint_inputs.py)."""

    training: TrainingConfig
    text_feature: str  # raw feature names: the export takes raw text, TFMA's examples the label
    label_feature: str
    max_seq_length: int  # bounds the length buckets
    backup_root: str  # resumable training-state backups live under it

    def to_custom_config(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        values["training"] = self.training.to_dict()
        return values

    @classmethod
    def from_custom_config(cls, custom_config: Dict[str, Any]) -> "TrainerSettings":
        names = {field.name for field in dataclasses.fields(cls)}
        values = {name: value for name, value in custom_config.items() if name in names}
        values["training"] = TrainingConfig.from_dict(values["training"])
        return cls(**values)
