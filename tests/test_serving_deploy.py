"""The TF Serving deployment (serving/deploy/): the compose definition, its config files parsed
as TF Serving's protos, and its agreement with what ServingPusher writes.

No docker engine here, so the container itself is not started; what can be checked without it
is: the image is the release of the pinned tensorflow-serving-api, every config file the
command passes parses as the message tensorflow_model_server parses it into, and a serving
root written by the real pusher is visible in the container at the paths its models.config
names.
"""
import importlib.metadata
import os
import re

import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components import pusher
from serving import server_options
from serving.batcher import BatchingOptions
from serving.tf_serving_protos import BatchingParameters, MonitoringConfig, parse_text_file
from test_pusher import write_saved_model

DEPLOY_DIR = server_options.DEPLOY_DIR
SERVICE = "tensorflow-serving"


@pytest.fixture(scope="module")
def service():
    with open(os.path.join(DEPLOY_DIR, "docker-compose.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["services"][SERVICE]


def flags(service):
    return dict(argument.lstrip("-").split("=", 1) for argument in service["command"])


def container_files(service):
    """{path inside the container: path in this repository} for the deploy directory mount."""
    [mount] = [volume for volume in service["volumes"] if volume.startswith("./:")]
    target = mount.split(":")[1]
    return {os.path.join(target, name): os.path.join(DEPLOY_DIR, name)
            for name in os.listdir(DEPLOY_DIR)}


def test_image_is_the_tf_serving_release_of_the_pinned_serving_api(service):
    image, tag = service["image"].split(":")
    assert image == "tensorflow/serving"
    assert tag == importlib.metadata.version("tensorflow-serving-api") == "2.16.1"
    # TF Serving releases track TensorFlow's: 2.16.x serves models saved by TensorFlow 2.16.
    assert tag.split(".")[:2] == tf.__version__.split(".")[:2]


def test_config_files_parse_as_tf_servings_protos(service):
    files = container_files(service)
    arguments = flags(service)
    assert arguments["enable_batching"] == "true"

    batching = parse_text_file(files[arguments["batching_parameters_file"]], BatchingParameters)
    assert batching.max_batch_size.value >= 1 and batching.num_batch_threads.value >= 1
    options = BatchingOptions.from_proto(batching)  # the local server's reading of it
    assert options.max_batch_size == batching.max_batch_size.value

    monitoring = parse_text_file(files[arguments["monitoring_config_file"]], MonitoringConfig)
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_local_server_batches_with_the_same_file_as_the_container(service):
    container_path = flags(service)["batching_parameters_file"]
    assert container_files(service)[container_path] == \
        server_options.DEFAULT_BATCHING_PARAMETERS_FILE


def test_pushed_serving_root_is_what_the_container_loads(service, tmp_path):
    """A real push, then the compose file with SERVING_ROOT set as `make serve-docker` sets it:
    the models.config the container reads is the pusher's, and its base paths lie in the mount."""
    serving_root = str(tmp_path / "serving")
    model_uri = write_saved_model(str(tmp_path / "model"))
    pusher.push_model(os.path.join(model_uri, "Format-Serving"), serving_root, "classifier")
    config_path = os.path.join(serving_root, pusher.SERVING_CONFIG_FILE_NAME)
    pusher.write_serving_config(
        pusher.add_model_entries(pusher.read_serving_config(config_path), serving_root),
        config_path)

    def substituted(text):  # compose's ${VAR}, ${VAR:-default} and ${VAR:?message}
        return re.sub(r"\$\{SERVING_ROOT(?::[?-][^}]*)?\}", serving_root, text)

    [root_mount] = [substituted(volume) for volume in service["volumes"]
                    if "SERVING_ROOT" in volume]
    source, target, mode = root_mount.split(":")
    assert source == target == serving_root and mode == "ro"

    config_in_container = substituted(flags(service)["model_config_file"])
    assert config_in_container == config_path
    with open(config_in_container, encoding="utf-8") as handle:
        config = text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    [entry] = config.model_config_list.config
    assert entry.base_path.startswith(target + os.sep)
    assert pusher.version_numbers(entry.base_path) == [1]
    assert os.path.exists(os.path.join(entry.base_path, "1", "saved_model.pb"))
