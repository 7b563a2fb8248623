"""What the Trainer and the Evaluator run on in the cloud, from the resources section.

Two TFX mechanisms, no job launcher of our own:

- Kubeflow Pipelines v2 / Vertex AI Pipelines nodes: `node_resources` makes the ResourceSpec
  (vCPU and memory limits, accelerator type and count) that KubeflowV2DagRunner writes into the
  node's container spec (`node.with_platform_config(...)`); on Vertex AI Pipelines an
  accelerator there gets the task a GPU machine, on a KFP cluster a GPU node-pool pod.
- Vertex AI Training: `vertex_training_config` is the Trainer's custom_config part that TFX's
  google_cloud_ai_platform Trainer executor reads (ENABLE_VERTEX_KEY, VERTEX_REGION_KEY,
  TRAINING_ARGS_KEY: the CustomJob's worker pools). Worker pool 0 is the chief (one replica),
  worker pool 1 the other workers, each running the pipeline image. Vertex AI sets CLUSTER_SPEC
  and TF_CONFIG in every replica, from which trainer/distribution.py picks
  MultiWorkerMirroredStrategy (several replicas) or MirroredStrategy (one replica, its GPUs).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.extensions.google_cloud_ai_platform.constants import (ENABLE_VERTEX_KEY,
                                                               VERTEX_REGION_KEY)

from pipeline.config import PipelineConfig

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def node_resources(cpu: float, memory_gb: float, accelerator_type: str,
                   accelerator_count: int) -> Optional[ResourceSpec]:
    """A pipeline node's container resources; None when nothing is asked for (the default)."""
    if not (cpu or memory_gb or accelerator_count):
        return None
    spec = ResourceSpec(cpu_limit=cpu, memory_limit=memory_gb)
    if accelerator_count:
        spec.accelerator.type = accelerator_type
        spec.accelerator.count = accelerator_count
    return spec


def trainer_node_resources(config: PipelineConfig) -> Optional[ResourceSpec]:
    resources = config.resources
    if resources.vertex_training:  # the task only launches the job and waits
        return None
    return node_resources(resources.trainer_cpu, resources.trainer_memory_gb,
                          resources.trainer_accelerator_type,
                          resources.trainer_accelerator_count)


def evaluator_node_resources(config: PipelineConfig) -> Optional[ResourceSpec]:
    resources = config.resources
    return node_resources(resources.evaluator_cpu, resources.evaluator_memory_gb,
                          resources.evaluator_accelerator_type,
                          resources.evaluator_accelerator_count)


def worker_pool_specs(config: PipelineConfig, workers: Optional[int] = None
                      ) -> List[Dict[str, Any]]:
    """The CustomJob's worker pools: the chief, then `workers` (default: trainer_replicas)
    replicas alike."""
    resources = config.resources
    workers = resources.trainer_replicas if workers is None else workers
    machine_spec: Dict[str, Any] = {"machine_type": resources.machine_type}
    if resources.trainer_accelerator_count:
        machine_spec.update(accelerator_type=resources.trainer_accelerator_type,
                            accelerator_count=resources.trainer_accelerator_count)
    pools = [{"machine_spec": machine_spec, "replica_count": 1,
              "container_spec": {"image_uri": config.runtime.image}}]
    if workers:
        pools.append({"machine_spec": dict(machine_spec), "replica_count": workers,
                      "container_spec": {"image_uri": config.runtime.image}})
    return pools


def _vertex_job(config: PipelineConfig, workers: Optional[int] = None) -> Dict[str, Any]:
    job_spec: Dict[str, Any] = {"worker_pool_specs": worker_pool_specs(config, workers)}
    if config.runtime.service_account:
        job_spec["service_account"] = config.runtime.service_account
    return {"project": config.runtime.gcp_project, "job_spec": job_spec}


def vertex_training_config(config: PipelineConfig) -> Dict[str, Any]:
    """The Trainer's custom_config entries that make TFX run it as a Vertex AI custom job;
    empty for the pipeline-node backend."""
    if not config.resources.vertex_training:
        return {}
    # Here, not at the top: TFX's Vertex executors import the Vertex AI client (~3 s).
    from tfx.extensions.google_cloud_ai_platform.trainer.executor import TRAINING_ARGS_KEY
    return {ENABLE_VERTEX_KEY: True, VERTEX_REGION_KEY: config.runtime.gcp_region,
            TRAINING_ARGS_KEY: _vertex_job(config)}


def vertex_tuning_config(config: PipelineConfig) -> Dict[str, Any]:
    """The Tuner's custom_config entries for TFX's Vertex AI Tuner: a custom job whose chief and
    `tuner_parallel_trials - 1` workers each run trials (a trial on one replica's GPUs), their
    KerasTuner oracle on the chief; trial files under the pipeline root."""
    from tfx.extensions.google_cloud_ai_platform.tuner.executor import (
        REMOTE_TRIALS_WORKING_DIR_KEY, TUNING_ARGS_KEY)
    return {ENABLE_VERTEX_KEY: True, VERTEX_REGION_KEY: config.runtime.gcp_region,
            TUNING_ARGS_KEY: _vertex_job(config, config.tuning.tuner_parallel_trials - 1),
            REMOTE_TRIALS_WORKING_DIR_KEY: f"{config.pipeline_root}/tuner_trials"}
