"""`bertpipe submit` and `bertpipe schedule` dry runs: the exact Vertex AI / Kubeflow requests,
built by the services' client libraries from the compiled pipeline, with no network access.

The commands run as a user runs them, in a subprocess whose audit hook fails any socket
connection or name lookup, so a dry run that tried to reach Google (credentials, metadata
server, the API) would fail.
"""
import json
import os
import subprocess
import sys

import pytest
from google.protobuf import json_format

from pipeline import cloud_jobs
from no_network import NO_NETWORK, bertpipe
from test_kubeflow_v2 import compiled, root_tasks  # noqa: F401 (fixtures)


def test_the_audit_hook_refuses_a_connection(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_NETWORK)
    result = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")))
    assert "network access in a dry run: socket.getaddrinfo" in result.stderr


def test_submit_vertex_dry_run_prints_the_create_pipeline_job_request(compiled, tmp_path):
    result = bertpipe(tmp_path, "submit", "--target", "vertex", "--pipeline-spec",
                      str(compiled.path), "--gcp-project", "example-project",
                      "--gcp-region", "europe-west4", "--job-id", "sst2-retrain-1",
                      "--service-account", "pipelines@example-project.iam.gserviceaccount.com",
                      "--dry-run", "--train-data", "unused")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dry run: the request above was checked and not sent" in result.stderr
    request = json.loads(result.stdout)
    from google.cloud.aiplatform.compat.types import pipeline_service
    message = pipeline_service.CreatePipelineJobRequest.from_json(result.stdout)
    assert message.parent == "projects/example-project/locations/europe-west4"
    assert request["pipelineJobId"] == "sst2-retrain-1"
    job = request["pipelineJob"]
    assert job["serviceAccount"] == "pipelines@example-project.iam.gserviceaccount.com"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == \
        compiled.file["runtimeConfig"]["gcsOutputDirectory"]
    assert set(job["pipelineSpec"]["root"]["dag"]["tasks"]) == set(root_tasks(compiled.file))
    assert all(task["cachingOptions"]["enableCache"]
               for task in job["pipelineSpec"]["root"]["dag"]["tasks"].values())


def test_schedule_vertex_dry_run_prints_the_create_schedule_request(compiled, tmp_path):
    result = bertpipe(tmp_path, "schedule", "--target", "vertex", "--cron",
                      "TZ=Europe/Berlin 0 3 * * 1", "--pipeline-spec", str(compiled.path),
                      "--gcp-project", "example-project", "--gcp-region", "us-central1",
                      "--no-enable-cache", "--dry-run", "--train-data", "unused")
    assert result.returncode == 0, result.stderr[-3000:]
    from google.cloud.aiplatform.compat.types import schedule_service
    message = schedule_service.CreateScheduleRequest.from_json(result.stdout)
    assert message.parent == "projects/example-project/locations/us-central1"
    schedule = json.loads(result.stdout)["schedule"]
    assert schedule["cron"] == "TZ=Europe/Berlin 0 3 * * 1"
    assert schedule["maxConcurrentRunCount"] == "1"
    assert schedule["displayName"] == f"{compiled.pipeline.pipeline_info.pipeline_name}-schedule"
    job = schedule["createPipelineJobRequest"]["pipelineJob"]
    assert set(job["pipelineSpec"]["root"]["dag"]["tasks"]) == set(root_tasks(compiled.file))
    assert not any(task.get("cachingOptions", {}).get("enableCache")
                   for task in job["pipelineSpec"]["root"]["dag"]["tasks"].values())


def test_schedule_kubeflow_dry_run_prints_the_recurring_run(compiled, tmp_path):
    result = bertpipe(tmp_path, "schedule", "--target", "kubeflow", "--cron", "0 3 * * 1",
                      "--pipeline-spec", str(compiled.path), "--kfp-host",
                      "https://kfp.example.com/pipeline", "--kfp-experiment-id", "exp-1",
                      "--dry-run", "--train-data", "unused")
    assert result.returncode == 0, result.stderr[-3000:]
    body = json.loads(result.stdout)
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 1"}}  # seconds first
    assert body["experiment_id"] == "exp-1" and body["mode"] == "ENABLE"
    assert body["max_concurrency"] == 1 and body["no_catchup"] is True
    from kfp.pipeline_spec import pipeline_spec_pb2
    spec = json_format.ParseDict(body["pipeline_spec"], pipeline_spec_pb2.PipelineSpec())
    assert set(spec.root.dag.tasks) == set(root_tasks(compiled.file))


@pytest.mark.parametrize("argv, message", [
    (["submit", "--target", "vertex", "--gcp-project", "example-project",
      "--gcp-region", "Europe"], "--gcp-region 'Europe' is not a Vertex AI region"),
    (["submit", "--target", "vertex", "--gcp-project", "", "--gcp-region", "europe-west4"],
     "--gcp-project '' is not a Google Cloud project id"),
    (["schedule", "--target", "vertex", "--cron", "every monday", "--gcp-project",
      "example-project", "--gcp-region", "europe-west4"], "is not a cron expression of five"),
    (["schedule", "--target", "kubeflow", "--cron", "0 3 * * 1", "--kfp-host", "kfp:8888",
      "--kfp-experiment-id", "e"], "give the KFP API endpoint as an http"),
])
def test_bad_job_settings_are_named(compiled, capsys, argv, message):
    from pipeline.cli import main
    assert main([*argv, "--pipeline-spec", str(compiled.path), "--dry-run",
                 "--train-data", "unused"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error


def test_a_file_that_is_not_a_compiled_pipeline_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"pipelineSpec": {"root": {"nonsense": 1}}}))
    with pytest.raises(cloud_jobs.CloudJobError, match="is not a PipelineJob JSON"):
        cloud_jobs.load_pipeline_job(str(path))
