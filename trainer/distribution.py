"""The tf.distribute strategy, mixed-precision policy and XLA setting for this hardware.

`auto` picks, in order: TPUStrategy when a TPU is reachable, MultiWorkerMirroredStrategy when
TF_CONFIG lists more than one task, MirroredStrategy for one or more GPUs, and the default
strategy on CPU. Each can be forced by name. Mixed precision `auto` is mixed_float16 on GPU and
off elsewhere (on CPU, mixed_bfloat16 can be asked for explicitly; see docs/BENCHMARKS.md).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Optional

import tensorflow as tf
import tf_keras as keras

from trainer.config import PRECISIONS, STRATEGIES


def cluster_worker_count(tf_config: Optional[str] = None) -> int:
    """Tasks (chief + workers) that TF_CONFIG lists; 1 without a cluster."""
    tf_config = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not tf_config:
        return 1
    cluster = json.loads(tf_config).get("cluster", {})
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def _tpu_resolver():
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, tf.errors.NotFoundError, RuntimeError):
        return None


def choose_strategy_name(requested: str = "auto") -> str:
    """The strategy `auto` resolves to on this machine (or `requested` when it is explicit)."""
    if requested not in STRATEGIES:
        raise ValueError(f"distribution strategy must be one of {STRATEGIES}, got {requested!r}")
    if requested != "auto":
        return requested
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return "tpu"
    if cluster_worker_count() > 1:
        return "multi_worker_mirrored"
    if tf.config.list_logical_devices("GPU"):
        return "mirrored"
    return "default"


def make_strategy(requested: str = "auto") -> tf.distribute.Strategy:
    name = choose_strategy_name(requested)
    logging.info("Distribution strategy: %s (requested %s)", name, requested)
    if name == "tpu":
        resolver = _tpu_resolver()
        if resolver is None:
            raise RuntimeError("TPU strategy requested but no TPU is reachable")
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":  # all local GPUs, or the logical CPU devices when there is none
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def choose_precision(requested: str = "auto") -> str:
    if requested not in PRECISIONS:
        raise ValueError(f"mixed precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"


def set_precision(requested: str = "auto") -> str:
    """Sets the global Keras policy; returns the policy name in force."""
    policy = choose_precision(requested)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the exported model (the chief, or the only worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())
