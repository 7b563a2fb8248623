"""Where the Trainer and the Evaluator run in the cloud (pipeline/cloud_resources.py): the
resources section's checks, the compiled spec read back, and a two-replica Vertex AI Training
job reproduced on this machine.

There is no Vertex AI and no GPU here. The compiled PipelineJob is what would be sent; the
two-replica job is TFX's own Vertex launcher run up to the API call (the two stand-ins: no
Vertex API client is created, and the CustomJob it would send is captured instead), whose
replica command then runs in two local processes with the CLUSTER_SPEC and TF_CONFIG that
Vertex AI sets for a chief (worker pool 0) and a worker (worker pool 1).
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import trainer_harness
from no_network import bertpipe
from pipeline.config import GPU_MACHINE_SERIES, PipelineConfig

IMAGE = "europe-docker.pkg.dev/example-project/bertpipe/bertpipe:test"
PROJECT, REGION = "example-project", "europe-west4"
SERVICE_ACCOUNT = f"pipelines@{PROJECT}.iam.gserviceaccount.com"
CLOUD_PATHS = {"train_data": "gs://bucket/incoming/span-{SPAN}/train.tsv",
               "eval_data": "gs://bucket/incoming/span-{SPAN}/dev.tsv",
               "checkpoint": "gs://bucket/checkpoints/minilm", "output_dir": "gs://bucket/runs",
               "serving_root": "gs://bucket/serving"}
VERTEX = {"trainer_backend": "vertex-training", "gcp_project": PROJECT, "gcp_region": REGION}


def settings_error(**settings):
    with pytest.raises(ValueError) as raised:
        PipelineConfig.from_settings(train_data="x.csv", **settings)
    return str(raised.value)


# --- the checks --------------------------------------------------------------------------------

def test_every_gpu_type_is_a_vertex_ai_accelerator_type():
    from google.cloud.aiplatform_v1.types import AcceleratorType
    assert set(GPU_MACHINE_SERIES) <= {member.name for member in AcceleratorType}


@pytest.mark.parametrize("settings, message", [
    ({"trainer_accelerator_type": "NVIDIA_TESLA_K9000", "trainer_accelerator_count": 1},
     "--trainer-accelerator-type 'NVIDIA_TESLA_K9000' is not an accelerator type this pipeline "
     "knows; use one of NVIDIA_TESLA_T4"),
    ({**VERTEX, "trainer_accelerator_type": "NVIDIA_TESLA_A100", "trainer_accelerator_count": 1,
      "trainer_machine_type": "n1-standard-8"},
     "--trainer-accelerator-type NVIDIA_TESLA_A100 needs a a2-highgpu-* or a2-megagpu-* machine "
     "(--trainer-machine-type), got n1-standard-8"),
    ({**VERTEX, "trainer_accelerator_type": "NVIDIA_TESLA_A100", "trainer_accelerator_count": 2,
      "trainer_machine_type": "a2-highgpu-4g"},
     "--trainer-machine-type a2-highgpu-4g comes with 4 NVIDIA_TESLA_A100; "
     "--trainer-accelerator-count is 2"),
    ({**VERTEX, "trainer_accelerator_type": "NVIDIA_TESLA_T4", "trainer_accelerator_count": 3},
     "--trainer-accelerator-count 3: an N1 machine takes (1, 2, 4) x NVIDIA_TESLA_T4"),
    ({"trainer_replicas": 2},
     "--trainer-replicas 2: a Kubeflow pipeline node is one container, so it cannot hold several "
     "replicas; use --trainer-backend vertex-training"),
    ({"trainer_backend": "vertex-training", "gcp_region": REGION},
     "--trainer-backend vertex-training runs a Vertex AI custom job in a project and region: "
     "give --gcp-project"),
    ({"trainer_accelerator_type": "NVIDIA_TESLA_T4"},
     "--trainer-accelerator-type and --trainer-accelerator-count go together"),
    ({"trainer_accelerator_type": "TPU_V3", "trainer_accelerator_count": 8},
     "TPUs are not supported yet"),
    ({"trainer_backend": "sagemaker"}, "trainer_backend must be one of"),
])
def test_settings_that_cannot_work_are_refused_naming_the_flag(settings, message):
    assert message in settings_error(**settings)


def test_the_command_refuses_them_before_compiling(tmp_path, capsys):
    from pipeline.cli import main
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--target", "kubeflow-v2", "--output", str(output), "--image", IMAGE,
                 "--train-data", "gs://b/t.csv", "--trainer-replicas", "1"]) == 2
    assert "use --trainer-backend vertex-training" in capsys.readouterr().err
    assert not output.exists()


# --- the compiled spec -------------------------------------------------------------------------

def compile_flags(**settings):
    flags = []
    for name, value in {**CLOUD_PATHS, **settings}.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


def test_vertex_training_compiles_to_the_worker_pools_the_flags_name(tmp_path):
    """The acceptance command, with no credentials and no network."""
    output = tmp_path / "pipeline.json"
    result = bertpipe(
        tmp_path, "compile", "--target", "kubeflow-v2", "--output", str(output),
        "--image", IMAGE, *compile_flags(**VERTEX, service_account=SERVICE_ACCOUNT,
                                         trainer_machine_type="n1-standard-8",
                                         trainer_accelerator_type="NVIDIA_TESLA_T4",
                                         trainer_accelerator_count=2, trainer_replicas=1))
    assert result.returncode == 0, result.stderr[-3000:]
    from pipeline.cloud_jobs import describe_resources
    job = json.loads(output.read_text())
    training = describe_resources(job)["Trainer"]["vertex_training"]
    assert training["project"] == PROJECT
    assert training["job_spec"]["service_account"] == SERVICE_ACCOUNT
    machine = {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4",
               "accelerator_count": 2}
    assert training["job_spec"]["worker_pool_specs"] == [
        {"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": IMAGE}},
        {"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": IMAGE}}]
    # TFX's Vertex launcher runs the Trainer, in the pipeline's region.
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    custom_config = json.loads(tasks["Trainer"]["inputs"]["parameters"]["custom_config"][
        "runtimeValue"]["constantValue"]["stringValue"])
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == REGION
    executor = job["pipelineSpec"]["deploymentSpec"]["executors"]["Trainer_executor"]
    assert "components.vertex_training.VertexTrainingExecutor" in executor["container"]["args"]
    # The command prints what it asked for.
    assert '"accelerator_type": "NVIDIA_TESLA_T4"' in result.stdout


def test_a_kubeflow_node_gets_the_gpus_and_limits_in_its_container_resources(tmp_path):
    from pipeline import kubeflow_v2_runner
    config = PipelineConfig.from_settings(
        **CLOUD_PATHS, image=IMAGE, trainer_accelerator_type="NVIDIA_TESLA_T4",
        trainer_accelerator_count=1, trainer_cpu=8, trainer_memory_gb=30, evaluator_cpu=4,
        evaluator_memory_gb=16)
    job = kubeflow_v2_runner.compile_pipeline(config, str(tmp_path / "pipeline.json"))
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors["Trainer_executor"]["container"]["resources"] == {
        "cpuLimit": 8.0, "memoryLimit": 30.0,
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": "1"}}
    assert executors["Evaluator_executor"]["container"]["resources"] == {
        "cpuLimit": 4.0, "memoryLimit": 16.0}
    assert "resources" not in executors["Transform_executor"]["container"]
    assert "components.checkpoint_inputs.TrainerExecutor" in (
        executors["Trainer_executor"]["container"]["args"])


def test_submit_dry_run_prints_the_resources(capsys):
    """(In-process: tests/test_cloud_jobs.py runs dry runs with every socket refused.)"""
    from pipeline.cli import main
    assert main(["submit", "--target", "vertex", "--dry-run", "--image", IMAGE,
                 *compile_flags(**VERTEX, trainer_accelerator_type="NVIDIA_L4",
                                trainer_accelerator_count=1,
                                trainer_machine_type="g2-standard-8")]) == 0
    stderr = capsys.readouterr().err
    assert "dry run: the request above was checked and not sent" in stderr
    [trainer_line] = [line for line in stderr.splitlines() if line.startswith("  Trainer: ")]
    pools = json.loads(trainer_line.split(": ", 1)[1])["vertex_training"]["job_spec"][
        "worker_pool_specs"]
    assert [pool["machine_spec"] for pool in pools] == [
        {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4",
         "accelerator_count": 1}]


# --- a two-replica Vertex AI Training job, on this machine ------------------------------------

def serialized(exec_properties):
    """Execution properties as TFX's launcher hands them to an executor."""
    from google.protobuf.message import Message
    from tfx.utils import json_utils, proto_utils
    return {name: (json_utils.dumps(value) if isinstance(value, dict) else
                   proto_utils.proto_to_json(value) if isinstance(value, Message) else value)
            for name, value in exec_properties.items() if value is not None}


def vertex_custom_job(trainer_inputs, config, output_dir, monkeypatch):
    """The CustomJob TFX's Vertex launcher (our VertexTrainingExecutor) would create for the
    Trainer of `config`, with the data half's real artifacts as inputs."""
    from tfx.extensions.google_cloud_ai_platform import runner, training_clients
    from tfx.types import standard_artifacts

    from components.vertex_training import VertexTrainingExecutor
    from pipeline.pipeline import create_pipeline
    from pipeline.runs import read_run
    data_half = read_run(trainer_inputs.config.run_dir)
    [trainer] = [node for node in create_pipeline(config).components if node.id == "Trainer"]
    input_dict = {"examples": [data_half.artifact("Transform", "transformed_examples")],
                  "transform_graph": [data_half.artifact("Transform", "transform_graph")],
                  "schema": [data_half.artifact("ImportSchemaGen", "schema")],
                  "pretrained_checkpoint": [
                      data_half.artifact("PretrainedCheckpointImporter", "result")]}
    assert set(input_dict) == set(trainer.inputs)  # base_model: no warm start here
    output_dict = {"model": [standard_artifacts.Model()],
                   "model_run": [standard_artifacts.ModelRun()]}
    output_dict["model"][0].uri = str(output_dir / "model")
    output_dict["model_run"][0].uri = str(output_dir / "model_run")

    # Stand-ins for the Vertex AI API, the only parts not run: no API client is created, and
    # the CustomJob is captured where TFX would send it.
    sent = {}
    monkeypatch.setattr(training_clients.VertexJobClient, "create_client", lambda self: None)
    monkeypatch.setattr(runner, "_launch_cloud_training",
                        lambda **kwargs: sent.update(kwargs))
    VertexTrainingExecutor().Do(input_dict, output_dict, serialized(trainer.exec_properties))
    assert (sent["project"], sent["vertex_region"], sent["enable_vertex"]) == (
        PROJECT, REGION, True)
    return sent["training_job"]


def vertex_environment(pools, task):
    """CLUSTER_SPEC and TF_CONFIG as Vertex AI sets them in a replica of worker pool `task`
    (cloud.google.com/vertex-ai/docs/training/distributed-training: worker pool 0 is the chief,
    pool 1 the workers)."""
    types = {"workerpool0": "chief", "workerpool1": "worker"}
    return {"CLUSTER_SPEC": json.dumps({"cluster": pools, "environment": "cloud",
                                        "task": {"type": task, "index": 0}}),
            "TF_CONFIG": json.dumps({"cluster": {types[pool]: hosts
                                                 for pool, hosts in pools.items()},
                                     "environment": "cloud",
                                     "task": {"type": types[task], "index": 0}})}


def test_two_replica_vertex_job_trains_in_step_and_only_the_chief_exports(
        trainer_inputs, tmp_path, monkeypatch):
    config = trainer_inputs.train_config(
        tmp_path / "out", **VERTEX, trainer_replicas=1, distribution="auto", image=IMAGE)
    job = vertex_custom_job(trainer_inputs, config, tmp_path / "artifacts", monkeypatch)
    pools = job["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 1]
    assert {pool["container_spec"]["image_uri"] for pool in pools} == {IMAGE}
    [command] = {tuple(pool["container_spec"]["command"]) for pool in pools}
    assert command[:3] == ("python", "-m", "tfx.scripts.run_executor")
    assert command[command.index("--executor_class_path") + 1] == (
        "components.checkpoint_inputs.TrainerExecutor")

    hosts = {f"workerpool{index}": [f"127.0.0.1:{port}"]
             for index, port in enumerate(trainer_harness.free_ports(2))}
    replicas = []
    for task in ("workerpool0", "workerpool1"):
        directory = tmp_path / task
        (directory / "tmp").mkdir(parents=True)
        env = trainer_harness.subprocess_env(
            {**vertex_environment(hosts, task), "TMPDIR": str(directory / "tmp")})
        with open(directory / "log.txt", "w") as log:
            replicas.append((directory, subprocess.Popen(
                [sys.executable, *command[1:]], stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=directory)))
    try:
        for directory, process in replicas:
            process.wait(timeout=900)
    finally:
        for _, process in replicas:
            process.kill()
    logs = [(directory / "log.txt").read_text(errors="replace") for directory, _ in replicas]
    for (directory, process), log in zip(replicas, logs):
        assert process.returncode == 0, f"{directory.name}:\n{log[-6000:]}"
        # Both replicas chose MultiWorkerMirroredStrategy from Vertex's TF_CONFIG ...
        assert "Distribution strategy: multi_worker_mirrored (requested auto)" in log
        assert re.search(r"strategy (MultiWorkerMirrored|CollectiveAllReduce)Strategy "
                         r"\(2 replicas\)", log)
        # ... and ran every step of the epoch (trainer/progress.py's lines), in lock-step.
        assert "training: step 10/10" in log
    # In step: the same loss and accuracy on both replicas.
    assert [re.search(r"training: epoch 1/1 done  (.*)", log).group(1) for log in logs] \
        == [re.search(r"training: epoch 1/1 done  (.*)", logs[0]).group(1)] * 2
    # Only the chief's export is the model; the worker's went to a scratch directory it removed.
    model = tmp_path / "artifacts" / "model" / "Format-Serving"
    assert trainer_harness.saved_models_under(tmp_path) == [model]
    summary = json.loads((tmp_path / "artifacts" / "model_run" / "training_summary.json")
                         .read_text())
    assert summary["strategy"] in ("MultiWorkerMirroredStrategy", "CollectiveAllReduceStrategy")
    assert summary["replicas"] == 2

    # The export serves raw text in a fresh process.
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "bertpipe"), "predict", "--model",
         str(model), "a lovely stay", "cold food"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = json.loads(result.stdout)
    assert [prediction["text"] for prediction in predictions] == ["a lovely stay", "cold food"]
    assert all(prediction["label"] in ("negative", "positive") for prediction in predictions)


def test_gpu_check_stops_with_no_gpu_visible(capsys):
    from pipeline.cli import main
    assert main(["gpu-check", "--data", str(pathlib.Path(__file__))]) == 2
    assert "error: no GPU visible to TensorFlow" in capsys.readouterr().err


def test_the_tuner_runs_parallel_trials_on_vertex_ai(tmp_path):
    from tfx.extensions.google_cloud_ai_platform.tuner.executor import (
        REMOTE_TRIALS_WORKING_DIR_KEY, TUNING_ARGS_KEY)

    from pipeline import kubeflow_v2_runner
    from pipeline.cloud_jobs import describe_resources
    config = PipelineConfig.from_settings(
        **CLOUD_PATHS, **VERTEX, image=IMAGE, tune=True, tuner_parallel_trials=3,
        trainer_accelerator_type="NVIDIA_TESLA_T4", trainer_accelerator_count=1)
    job = kubeflow_v2_runner.compile_pipeline(config, str(tmp_path / "pipeline.json"))
    tuning = describe_resources(job)["Tuner"]["vertex_tuning"]
    assert [pool["replica_count"] for pool in tuning["job_spec"]["worker_pool_specs"]] == [1, 2]
    task = job["pipelineSpec"]["root"]["dag"]["tasks"]["Tuner"]
    custom_config = json.loads(task["inputs"]["parameters"]["custom_config"]["runtimeValue"][
        "constantValue"]["stringValue"])
    assert custom_config[TUNING_ARGS_KEY] == tuning
    assert custom_config[REMOTE_TRIALS_WORKING_DIR_KEY] == \
        "gs://bucket/runs/bertpipe/root/tuner_trials"
    assert json.loads(task["inputs"]["parameters"]["tune_args"]["runtimeValue"][
        "constantValue"]["stringValue"]) == {"num_parallel_trials": 3}
    executor = job["pipelineSpec"]["deploymentSpec"]["executors"]["Tuner_executor"]
    assert ("tfx.extensions.google_cloud_ai_platform.tuner.executor.Executor"
            in executor["container"]["args"])
    # The Trainer takes the Tuner's best hyperparameters.
    trainer_inputs = job["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]["inputs"]
    assert trainer_inputs["artifacts"]["hyperparameters"]["taskOutputArtifact"][
        "producerTask"] == "Tuner"


def test_parallel_trials_need_vertex_ai():
    assert "parallel trials run on Vertex AI" in settings_error(tune=True,
                                                                tuner_parallel_trials=2)
