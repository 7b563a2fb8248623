"""The training section of the configuration: every setting that shapes the trained model.

The Trainer component receives exactly this section (as a dict in its `custom_config`, see
`trainer/task.py`), so a change elsewhere in the configuration (a blessing threshold, the
serving root) leaves the Trainer's inputs unchanged and TFX's cache reuses its model. It has
no heavy imports: the command line builds it before TensorFlow is loaded.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

STRATEGIES = ("auto", "default", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
SERVING_PRECISIONS = ("float32", "bfloat16")
POOLINGS = ("cls", "mean")  # what the classification head reads (trainer/model.py)


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

    epochs: int = 3  # at most: early stopping ends sooner when validation accuracy stalls
    train_batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1  # of all training steps; then linear decay to 0
    weight_decay: float = 0.01
    # Layer-wise learning-rate decay (trainer/optimizer.py): each encoder layer down from the
    # head trains at this factor of the rate above it; 1: one rate for all.
    layer_lr_decay: float = 1.0
    dropout: float = 0.1
    # The head reads the [CLS] token's hidden state, or the mean over the text's tokens (what
    # sentence-embedding checkpoints such as all-MiniLM-L6-v2 were trained to represent).
    pooling: str = "cls"  # one of POOLINGS
    seed: int = 42
    distribution: str = "auto"  # one of STRATEGIES; auto: from the hardware
    mixed_precision: str = "auto"  # one of PRECISIONS; auto: mixed_float16 on GPU, else off
    xla: bool = False
    checkpoint_every_steps: int = 100  # training-state backups, for resuming a killed Trainer
    # Validation during training on a held-out part of the training split (by a hash of each
    # example, so the same examples every run), not on the eval split: the Evaluator blesses
    # on the eval split, and choosing the epoch on it too would flatter the blessing. The
    # weights of the epoch with the best validation accuracy are the ones exported.
    validation_fraction: float = 0.1
    # Stop when validation accuracy has not improved by more than early_stopping_min_delta for
    # this many epochs; 0: train every epoch (the best epoch's weights are still exported).
    early_stopping_patience: int = 1
    early_stopping_min_delta: float = 0.0
    # Start from the weights of the latest blessed model (same labels) instead of the
    # pretrained checkpoint. None (auto): on when the training data has {SPAN}, i.e. when a run
    # retrains on new data; off otherwise, so that rerunning on the same data reuses the cached
    # model instead of training it further (PipelineConfig.resolved() decides).
    warm_start: Optional[bool] = None
    # The exported model's encoder (trainer/export.py): compiled by XLA, and its arithmetic:
    # bfloat16 batches run 1.3-1.5x as fast on CPUs with AVX512-BF16/AMX (with --serving-xla),
    # and the ServingCheck pushes them only if they answer like float32. XLA is off by default:
    # a stock TF Serving refuses an XLA-compiled model unless started with
    # --xla_cpu_compilation_enabled=true (serving/deploy/docker-compose.yml sets it).
    serving_xla: bool = False
    serving_precision: str = "float32"  # one of SERVING_PRECISIONS
    # FIRST LAST: record a TensorFlow profile of these training steps (1-based, counted over
    # the whole fit) into the Trainer's model_run directory, for TensorBoard's Profile tab
    # (the run report links it). Steps after the first: the first one builds the graph.
    profile_steps: Tuple[int, ...] = ()

    def __post_init__(self):
        check_at_least(self, ("epochs", "train_batch_size", "eval_batch_size",
                              "checkpoint_every_steps"), 1)
        check_at_least(self, ("learning_rate", "weight_decay", "dropout", "warmup_fraction",
                              "validation_fraction", "early_stopping_patience",
                              "early_stopping_min_delta"), 0)
        if not 0 < self.layer_lr_decay <= 1:
            raise ConfigError(f"layer_lr_decay must be in (0, 1] (1: no decay), got "
                              f"{self.layer_lr_decay}")
        if self.warmup_fraction > 1 or self.dropout >= 1 or self.validation_fraction >= 0.5:
            raise ConfigError(f"warmup_fraction must be in [0, 1], dropout in [0, 1) and "
                              f"validation_fraction in [0, 0.5), got {self.warmup_fraction}, "
                              f"{self.dropout} and {self.validation_fraction}")
        check_choice(self.distribution, "distribution", STRATEGIES)
        check_choice(self.mixed_precision, "mixed_precision", PRECISIONS)
        check_choice(self.serving_precision, "serving_precision", SERVING_PRECISIONS)
        check_choice(self.pooling, "pooling", POOLINGS)
        steps = tuple(self.profile_steps)
        if steps and (len(steps) != 2 or not 1 <= steps[0] <= steps[1]):
            raise ConfigError(f"profile_steps must be two steps FIRST LAST with "
                              f"1 <= FIRST <= LAST (e.g. --profile-steps 5 8), got {list(steps)}")
        object.__setattr__(self, "profile_steps", steps)  # a list after a JSON round trip

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainingConfig":
        return cls(**values)

    def tuned(self, hyperparameters: Dict[str, Any]) -> "TrainingConfig":
        """A copy with the Tuner's best values of the tuned settings."""
        return dataclasses.replace(self, **{name: value for name, value
                                            in hyperparameters.items() if name in TUNED})


TUNING_KEY = "tuning"  # the tuning section, in the Tuner's custom_config (trainer/tuning.py)
# What a trial is scored by (the best epoch's), and its wall time, reported beside the score.
VALIDATION_METRIC, TRIAL_SECONDS = "val_accuracy", "trial_seconds"
# The training settings the Tuner searches over (trainer/tuning.py), each a hyperparameter of
# that name whose choices come from the tuning section.
TUNED = ("learning_rate", "epochs", "train_batch_size", "warmup_fraction", "dropout")


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """The Tuner (TFX's Tuner component with KerasTuner): off unless --tune. It tries
    `tuner_trials` random combinations of the choices below, each trained for at most
    `tuner_max_steps` steps and scored by its best validation accuracy on the held-out part of
    the training split; the Trainer then trains with the winner. Locally the trials run one
    after another; with --trainer-backend vertex-training they run on Vertex AI,
    `tuner_parallel_trials` at a time."""

    tune: bool = False
    tuner_trials: int = 6
    tuner_max_steps: int = 400  # per trial: caps epochs x steps, so a trial fits a laptop
    tuner_parallel_trials: int = 1
    tune_learning_rate: Tuple[float, ...] = (2e-5, 5e-5, 1e-4)
    tune_epochs: Tuple[int, ...] = (2, 3, 4)
    tune_train_batch_size: Tuple[int, ...] = (16, 32)
    tune_warmup_fraction: Tuple[float, ...] = (0.06, 0.1, 0.2)
    tune_dropout: Tuple[float, ...] = (0.1, 0.2)

    def __post_init__(self):
        for name in ("tune_learning_rate", "tune_epochs", "tune_train_batch_size",
                     "tune_warmup_fraction", "tune_dropout"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if not getattr(self, name):
                raise ConfigError(f"{name} needs at least one value ({flag_of(name)} ...)")
        check_at_least(self, ("tuner_trials", "tuner_max_steps", "tuner_parallel_trials"), 1)
        for name in ("tune_epochs", "tune_train_batch_size"):
            if min(getattr(self, name)) < 1:
                raise ConfigError(f"{name} values must be at least 1, got {getattr(self, name)}")

    def choices(self) -> Dict[str, Tuple[Any, ...]]:
        """{training setting: the values the Tuner may pick}."""
        return {name: getattr(self, f"tune_{name}") for name in TUNED}


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
