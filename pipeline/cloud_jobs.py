"""Submits and schedules a compiled pipeline: Vertex AI Pipelines and Kubeflow Pipelines.

The pipeline spec comes from `kubeflow_v2_runner.compile_pipeline`. Each function builds the
exact API request with the service's own client library (google-cloud-aiplatform's PipelineJob
and PipelineJobSchedule; kfp's API models), then either sends it or, for a dry run, returns it
without opening a connection: the clients are built with anonymous credentials and connect only
when a request is sent.

- Vertex run: CreatePipelineJob (PipelineJob.submit).
- Vertex schedule: CreateSchedule with a cron expression (PipelineJob.create_schedule).
- Kubeflow recurring run: CreateRecurringRun of the KFP v2beta1 API (kfp.Client), whose cron
  has a seconds field: "0 3 * * 1" becomes "0 0 3 * * 1".
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional

# Five unix cron fields (minute hour day-of-month month day-of-week), optionally behind a
# "TZ=Area/City " or "CRON_TZ=Area/City " prefix, as Vertex AI schedules take them.
_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")
_TIME_ZONE_PREFIX = re.compile(r"^(?:CRON_)?TZ=[A-Za-z_+\-/0-9]+\s+")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


class CloudJobError(ValueError):
    """Job settings that the service would refuse; the message names the setting."""


def check_cron(cron: str) -> str:
    """`cron` if it is a 5-field cron expression (maybe with a time zone prefix)."""
    fields = _TIME_ZONE_PREFIX.sub("", cron.strip()).split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise CloudJobError(f"--cron {cron!r} is not a cron expression of five fields "
                            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * 1' "
                            "for Mondays at 03:00, optionally 'TZ=Europe/Berlin 0 3 * * 1'")
    return cron.strip()


def _check_vertex_location(project: str, region: str) -> None:
    if not _PROJECT.match(project or ""):
        raise CloudJobError(f"--gcp-project {project!r} is not a Google Cloud project id "
                            "(6-30 lowercase letters, digits and hyphens)")
    if not _REGION.match(region or ""):
        raise CloudJobError(f"--gcp-region {region!r} is not a Vertex AI region, e.g. "
                            "europe-west4 or us-central1")


def load_pipeline_job(spec_path: str) -> Dict[str, Any]:
    """The PipelineJob JSON that `bertpipe compile` wrote, checked to hold a PipelineSpec."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    try:
        with open(spec_path, encoding="utf-8") as handle:
            job = json.load(handle)
        json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(),
                              ignore_unknown_fields=False)
    except (OSError, ValueError, KeyError, json_format.ParseError) as error:
        raise CloudJobError(f"{spec_path} is not a PipelineJob JSON written by "
                            f"`bertpipe compile --target kubeflow-v2` ({error})") from error
    return job


# The nodes whose resources a compiled pipeline can set (pipeline/cloud_resources.py), and the
# custom_config keys of their Vertex AI jobs (TFX's TRAINING_ARGS_KEY and TUNING_ARGS_KEY,
# spelled out: importing TFX's extensions here would slow every `bertpipe` command).
_RESOURCE_NODES = ("Tuner", "Trainer", "Evaluator")
_VERTEX_JOB_KEYS = {"ai_platform_training_args": "vertex_training",
                    "ai_platform_tuning_args": "vertex_tuning"}


def describe_resources(job: Dict[str, Any]) -> Dict[str, Any]:
    """What a compiled PipelineJob asks the cloud for: each node's container resources, and
    the Trainer's (and Tuner's) Vertex AI worker pools when they run there."""
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    described: Dict[str, Any] = {}
    for node in _RESOURCE_NODES:
        task = tasks.get(node)
        if task is None:
            continue
        component = spec["components"][task["componentRef"]["name"]]
        container = executors[component["executorLabel"]]["container"]
        entry: Dict[str, Any] = {"container_resources": container.get("resources", {})}
        custom_config = task["inputs"]["parameters"].get("custom_config")
        if custom_config:
            values = json.loads(custom_config["runtimeValue"]["constantValue"]["stringValue"])
            entry.update({name: values[key] for key, name in _VERTEX_JOB_KEYS.items()
                          if values.get(key)})
        described[node] = entry
    return described


def _vertex_pipeline_job(job_spec: str, project: str, region: str, enable_caching: bool,
                         job_id: Optional[str], labels: Dict[str, str], dry_run: bool):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    _check_vertex_location(project, region)
    if job_id and not _JOB_ID.match(job_id):
        raise CloudJobError(f"--job-id {job_id!r}: use lowercase letters, digits and hyphens")
    job = load_pipeline_job(job_spec)
    return aiplatform.PipelineJob(
        display_name=job["displayName"] if "displayName" in job
        else job["pipelineSpec"]["pipelineInfo"]["name"],
        template_path=job_spec, job_id=job_id or None,
        pipeline_root=job["runtimeConfig"]["gcsOutputDirectory"],
        enable_caching=enable_caching, labels=labels or None, project=project,
        location=region,
        # A dry run must not look for Application Default Credentials (a metadata server).
        credentials=AnonymousCredentials() if dry_run else None)


def _as_json(message) -> Dict[str, Any]:
    return json.loads(type(message).to_json(message))


def submit_vertex(job_spec: str, project: str, region: str, *, enable_caching: bool = True,
                  service_account: str = "", job_id: str = "",
                  labels: Optional[Dict[str, str]] = None, dry_run: bool = False
                  ) -> Dict[str, Any]:
    """Starts one Vertex AI pipeline run; returns the CreatePipelineJobRequest as JSON."""
    from google.cloud.aiplatform.compat.types import pipeline_service
    job = _vertex_pipeline_job(job_spec, project, region, enable_caching, job_id, labels or {},
                               dry_run)
    if service_account:
        job._gca_resource.service_account = service_account  # what PipelineJob.submit sets
    request = pipeline_service.CreatePipelineJobRequest(
        parent=job._parent, pipeline_job=job._gca_resource, pipeline_job_id=job.job_id)
    if not dry_run:
        job.submit(service_account=service_account or None)
    return _as_json(request)


def schedule_vertex(job_spec: str, project: str, region: str, cron: str, *,
                    display_name: str = "", enable_caching: bool = True,
                    service_account: str = "", max_concurrent_runs: int = 1,
                    dry_run: bool = False) -> Dict[str, Any]:
    """Creates a Vertex AI schedule that runs the pipeline at `cron`; returns the
    CreateScheduleRequest as JSON."""
    from google.cloud import aiplatform
    from google.cloud.aiplatform.compat.types import schedule_service
    cron = check_cron(cron)
    job = _vertex_pipeline_job(job_spec, project, region, enable_caching, None, {}, dry_run)
    schedule = aiplatform.PipelineJobSchedule(
        pipeline_job=job,
        display_name=display_name or f"{job._gca_resource.display_name}-schedule",
        credentials=job.credentials if dry_run else None)
    # The fields PipelineJobSchedule.create sets before it sends the request.
    resource = schedule._gca_resource
    resource.cron = cron
    resource.max_concurrent_run_count = max_concurrent_runs
    if service_account:
        resource.create_pipeline_job_request.pipeline_job.service_account = service_account
    request = schedule_service.CreateScheduleRequest(parent=schedule._parent, schedule=resource)
    if not dry_run:
        schedule.create(cron=cron, max_concurrent_run_count=max_concurrent_runs,
                        service_account=service_account or None)
    return _as_json(request)


def kfp_cron(cron: str) -> str:
    """A 5-field cron as KFP's 6-field one (seconds first); a time zone prefix is refused."""
    cron = check_cron(cron)
    if _TIME_ZONE_PREFIX.match(cron):
        raise CloudJobError("Kubeflow Pipelines schedules in the cluster's time zone: drop the "
                            "TZ= prefix from --cron")
    return "0 " + cron


def schedule_kubeflow(job_spec: str, host: str, experiment_id: str, cron: str, *,
                      display_name: str = "", enable_caching: bool = True,
                      service_account: str = "", max_concurrent_runs: int = 1,
                      dry_run: bool = False) -> Dict[str, Any]:
    """Creates a KFP recurring run of the pipeline at `cron`; returns the request body."""
    import kfp
    import kfp_server_api
    if not host.startswith(("http://", "https://")):
        raise CloudJobError(f"--kfp-host {host!r}: give the KFP API endpoint as an http(s) URL")
    if not experiment_id:
        raise CloudJobError("--kfp-experiment-id is required: the id of the KFP experiment "
                            "the recurring run belongs to")
    job = load_pipeline_job(job_spec)
    pipeline_spec = job["pipelineSpec"]
    for task in pipeline_spec["root"]["dag"]["tasks"].values():  # as kfp.Client does
        task.setdefault("cachingOptions", {})["enableCache"] = enable_caching
    body = kfp_server_api.V2beta1RecurringRun(
        experiment_id=experiment_id,
        display_name=display_name or f"{pipeline_spec['pipelineInfo']['name']}-schedule",
        mode=kfp_server_api.RecurringRunMode.ENABLE,
        pipeline_spec=pipeline_spec,
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(
            pipeline_root=job["runtimeConfig"]["gcsOutputDirectory"], parameters={}),
        trigger=kfp_server_api.V2beta1Trigger(
            cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=kfp_cron(cron))),
        max_concurrency=max_concurrent_runs, no_catchup=True,
        service_account=service_account or None)
    if not dry_run:
        kfp.Client(host=host)._recurring_run_api.create_recurring_run(body=body)
    return kfp_server_api.ApiClient().sanitize_for_serialization(body)
