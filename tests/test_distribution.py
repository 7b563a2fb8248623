"""trainer/distribution.py: which tf.distribute strategy and precision policy a Trainer uses.

Fast, in-process checks of the selection logic. Real training under each strategy is in
test_trainer.py (MirroredStrategy), test_trainer_multiworker.py and test_trainer_resume.py.
"""
import json
import types

import pytest
import tensorflow as tf
import tf_keras as keras

from trainer.config import PRECISIONS, STRATEGIES
from trainer import distribution

TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]},
               "task": {"type": "worker", "index": 0}}
CHIEF_AND_TWO_WORKERS = {"cluster": {"chief": ["127.0.0.1:20000"],
                                     "worker": ["127.0.0.1:20001", "127.0.0.1:20002"],
                                     "evaluator": ["127.0.0.1:20003"]},
                         "task": {"type": "chief", "index": 0}}


@pytest.fixture(autouse=True)
def no_cluster_or_tpu(monkeypatch):
    """Each test starts from a plain machine: no TF_CONFIG, no TPU address."""
    for name in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def simulated_gpu(monkeypatch):
    """This machine has no GPU; simulate one by answering TF's device query with one GPU.

    Only `tf.config.list_logical_devices` is substituted, so the selection logic itself runs
    unchanged; nothing here creates a strategy on the simulated device.
    """
    real = tf.config.list_logical_devices
    gpu = tf.config.LogicalDevice(name="/device:GPU:0", device_type="GPU")

    def list_logical_devices(device_type=None):
        if device_type == "GPU":
            return [gpu]
        return real(device_type) + ([gpu] if device_type is None else [])

    monkeypatch.setattr(tf.config, "list_logical_devices", list_logical_devices)


def test_tf_config_listing_two_workers_selects_multi_worker_mirrored(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert distribution.choose_strategy_name("auto") == "multi_worker_mirrored"
    monkeypatch.setenv("TF_CONFIG", json.dumps(CHIEF_AND_TWO_WORKERS))
    assert distribution.choose_strategy_name("auto") == "multi_worker_mirrored"


def test_single_task_tf_config_is_not_a_cluster(monkeypatch):
    """Vertex AI / KFP set TF_CONFIG with one chief for single-replica jobs."""
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["10.0.0.1:2222"]},
                                                "task": {"type": "chief", "index": 0}}))
    assert distribution.choose_strategy_name("auto") == "default"


def test_without_tf_config_or_gpu_auto_is_the_default_strategy():
    assert not tf.config.list_logical_devices("GPU")  # this machine: CPU only
    assert distribution.choose_strategy_name("auto") == "default"
    assert distribution.choose_strategy_name() == "default"
    assert distribution.make_strategy("auto") is tf.distribute.get_strategy()


def test_auto_with_a_gpu_selects_mirrored(simulated_gpu):
    assert distribution.choose_strategy_name("auto") == "mirrored"


def test_auto_prefers_a_tpu_then_a_cluster(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    monkeypatch.setenv("TPU_NAME", "local-tpu")
    assert distribution.choose_strategy_name("auto") == "tpu"


@pytest.mark.parametrize("name", [name for name in STRATEGIES if name != "auto"])
def test_explicit_strategy_names_are_honoured(name, monkeypatch):
    assert distribution.choose_strategy_name(name) == name
    # ... even when the environment would make `auto` pick something else.
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert distribution.choose_strategy_name(name) == name


@pytest.mark.parametrize("name", ["", "Mirrored", "multi_worker", "gpu", "parameter_server"])
def test_unknown_strategy_name_is_refused(name):
    with pytest.raises(ValueError, match="distribution strategy must be one of"):
        distribution.choose_strategy_name(name)
    with pytest.raises(ValueError, match="distribution strategy must be one of"):
        distribution.make_strategy(name)


def test_mirrored_without_gpus_mirrors_over_the_logical_cpu_devices():
    strategy = distribution.make_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    cpus = tf.config.list_logical_devices("CPU")
    assert strategy.num_replicas_in_sync == len(cpus)
    assert {device.split("/")[-1] for device in strategy.extended.worker_devices} == \
        {cpu.name.split("/")[-1] for cpu in cpus}
    assert distribution.is_chief(strategy)  # one process: it writes the model


def test_precision_auto_is_float32_on_cpu():
    assert not tf.config.list_logical_devices("GPU")
    assert distribution.choose_precision("auto") == "float32"
    assert distribution.choose_precision() == "float32"


def test_precision_auto_is_mixed_float16_with_a_gpu(simulated_gpu):
    assert distribution.choose_precision("auto") == "mixed_float16"


@pytest.mark.parametrize("name", [name for name in PRECISIONS if name != "auto"])
def test_explicit_precision_is_honoured(name, simulated_gpu):
    assert distribution.choose_precision(name) == name


def test_unknown_precision_is_refused():
    for name in ("fp16", "bfloat16", ""):
        with pytest.raises(ValueError, match="mixed precision must be one of"):
            distribution.choose_precision(name)


def test_set_precision_sets_the_global_keras_policy():
    before = keras.mixed_precision.global_policy().name
    try:
        assert distribution.set_precision("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert distribution.set_precision("auto") == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy(before)


@pytest.mark.parametrize("tf_config, expected", [
    ("", 1),
    (json.dumps(TWO_WORKERS), 2),
    (json.dumps(CHIEF_AND_TWO_WORKERS), 3),  # chief + workers; the evaluator does not train
    (json.dumps({"cluster": {"chief": ["h:1"]}, "task": {"type": "chief", "index": 0}}), 1),
    (json.dumps({"cluster": {"worker": ["h:1", "h:2", "h:3"], "ps": ["h:4"]}}), 3),
])
def test_cluster_worker_count(tf_config, expected, monkeypatch):
    assert distribution.cluster_worker_count(tf_config) == expected
    if tf_config:  # the default argument reads TF_CONFIG from the environment
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert distribution.cluster_worker_count() == expected


@pytest.mark.parametrize("tf_config", ["{}", json.dumps({"task": {"type": "worker", "index": 0}}),
                                       json.dumps({"cluster": {}})])
def test_tf_config_without_a_cluster_counts_one_task(tf_config):
    assert distribution.cluster_worker_count(tf_config) == 1


def _strategy_in_role(monkeypatch, tf_config):
    """A stand-in strategy carrying the real TFConfigClusterResolver for this TF_CONFIG role.

    `is_chief` reads only `strategy.cluster_resolver`; a real MultiWorkerMirroredStrategy
    cannot be built in-process for several roles (it connects to its cluster), and the real
    2-worker run is in test_trainer_multiworker.py.
    """
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    return types.SimpleNamespace(
        cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver())


@pytest.mark.parametrize("role, index, chief", [
    ("chief", 0, True), ("worker", 0, False), ("worker", 1, False), ("evaluator", 0, False)])
def test_is_chief_with_a_chief_task(role, index, chief, monkeypatch):
    tf_config = dict(CHIEF_AND_TWO_WORKERS, task={"type": role, "index": index})
    assert distribution.is_chief(_strategy_in_role(monkeypatch, tf_config)) is chief


@pytest.mark.parametrize("index, chief", [(0, True), (1, False)])
def test_is_chief_without_a_chief_task_is_worker_0(index, chief, monkeypatch):
    tf_config = dict(TWO_WORKERS, task={"type": "worker", "index": index})
    assert distribution.is_chief(_strategy_in_role(monkeypatch, tf_config)) is chief


def test_is_chief_without_a_cluster():
    assert distribution.is_chief(tf.distribute.get_strategy())
    assert distribution.is_chief(types.SimpleNamespace(
        cluster_resolver=tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({}))))
