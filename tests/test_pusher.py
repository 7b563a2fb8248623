"""ServingPusher (components/pusher.py): pushes only blessed models, writes TF Serving's layout
with increasing integer versions, never leaves a half-written version, keeps models.config.

The models are real SavedModels in the Model artifact layout (<uri>/Format-Serving/). Most tests
call the executor directly; one test runs the component in a TFX pipeline on LocalDagRunner."""
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import tensorflow as tf
from google.protobuf import text_format
from ml_metadata.metadata_store import metadata_store
from tensorflow_serving.config import model_server_config_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.types import standard_artifacts, standard_component_specs

from components import pusher
from components.pusher import ServingPusher
from conftest import REPO_ROOT

MODEL_NAME = "classifier"


def write_saved_model(model_uri, scale=2.0):
    """A SavedModel with a serving signature y = scale * x, in Model artifact layout."""
    module = tf.Module()
    module.scale = tf.Variable(scale)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serve(x):
        return {"y": x * module.scale}

    tf.saved_model.save(module, os.path.join(model_uri, "Format-Serving"),
                        signatures={"serving_default": serve})
    return model_uri


@pytest.fixture(scope="session")
def model_uri(tmp_path_factory):
    return str(write_saved_model(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="session")
def other_model_uri(tmp_path_factory):
    """Another model (other weights), as a retrained one would be."""
    return str(write_saved_model(tmp_path_factory.mktemp("other_model"), scale=3.0))


def with_blessed(artifact, blessed):
    artifact.set_int_custom_property("blessed", int(blessed))
    return artifact


def push(tmp_path, serving_root, model_uri, blessed=True, infra_blessed=None,
         model_name=MODEL_NAME, served_baseline=None):
    """Runs the executor as the launcher would; returns the PushedModel artifact."""
    model = standard_artifacts.Model()
    model.uri = model_uri
    input_dict = {standard_component_specs.MODEL_KEY: [model],
                  standard_component_specs.MODEL_BLESSING_KEY: [
                      with_blessed(standard_artifacts.ModelBlessing(), blessed)]}
    if infra_blessed is not None:
        input_dict[standard_component_specs.INFRA_BLESSING_KEY] = [
            with_blessed(standard_artifacts.InfraBlessing(), infra_blessed)]
    if served_baseline is not None:
        input_dict[pusher.SERVED_BASELINE_KEY] = [served_baseline]
    pushed_model = standard_artifacts.PushedModel()
    pushed_model.uri = str(tmp_path / f"pushed_model-{uuid.uuid4().hex}")
    # The exec properties come from the constructor (the push destination as JSON, as the
    # launcher passes it).
    component = ServingPusher(serving_root=str(serving_root), model_name=model_name,
                              model=types.Channel(type=standard_artifacts.Model))
    pusher.Executor().Do(input_dict,
                         {standard_component_specs.PUSHED_MODEL_KEY: [pushed_model]},
                         dict(component.exec_properties))
    return pushed_model


def children(directory):
    """The entries of a directory, but for the pusher's lock file."""
    return sorted(name for name in os.listdir(directory) if name != pusher.LOCK_FILE_NAME) \
        if os.path.isdir(directory) else []


def read_config(serving_root):
    with open(os.path.join(serving_root, "models.config"), encoding="utf-8") as handle:
        return text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())


def test_blessed_model_is_pushed_as_versions_1_then_2(tmp_path, model_uri, other_model_uri):
    serving_root = tmp_path / "serving"
    first = push(tmp_path, serving_root, model_uri)
    second = push(tmp_path, serving_root, other_model_uri)

    model_dir = serving_root / MODEL_NAME
    assert children(model_dir) == ["1", "2"]  # no temporary directory left behind
    assert sorted(children(model_dir / "1")) == sorted(
        children(os.path.join(model_uri, "Format-Serving")))
    assert (model_dir / "1" / "saved_model.pb").exists()
    for artifact, version in ((first, "1"), (second, "2")):
        assert artifact.get_int_custom_property("pushed") == 1
        assert artifact.get_string_custom_property("pushed_version") == version
        assert artifact.get_string_custom_property("pushed_destination") == str(
            model_dir / version)
        assert os.path.exists(os.path.join(artifact.uri, "saved_model.pb"))  # as upstream
        assert not artifact.has_custom_property(pusher.ALREADY_SERVED_PROPERTY)

    served = tf.saved_model.load(str(model_dir / "2"))  # the other model: y = 3 x
    result = served.signatures["serving_default"](x=tf.constant([1.5]))
    assert result["y"].numpy().tolist() == [4.5]

    # A server running as another user must be able to read what was pushed: same modes as
    # a directory and a file created plainly (not tempfile's 0700 / 0600).
    os.mkdir(tmp_path / "plain_dir")
    (tmp_path / "plain_file").write_text("")
    assert (model_dir / "2").stat().st_mode == (tmp_path / "plain_dir").stat().st_mode
    assert ((serving_root / "models.config").stat().st_mode
            == (tmp_path / "plain_file").stat().st_mode)


def test_the_model_already_served_as_the_newest_version_is_not_copied_again(
        tmp_path, model_uri, other_model_uri):
    """E.g. a rerun with a changed blessing threshold, whose Trainer was cached."""
    serving_root = tmp_path / "serving"
    push(tmp_path, serving_root, model_uri)
    again = push(tmp_path, serving_root, model_uri)
    assert children(serving_root / MODEL_NAME) == ["1"]
    assert again.get_int_custom_property("pushed") == 1
    assert again.get_int_custom_property(pusher.ALREADY_SERVED_PROPERTY) == 1
    assert again.get_string_custom_property("pushed_version") == "1"
    # Only the newest version counts: a model served before a newer one is pushed anew.
    push(tmp_path, serving_root, other_model_uri)
    assert push(tmp_path, serving_root, model_uri).get_string_custom_property(
        "pushed_version") == "3"
    assert children(serving_root / MODEL_NAME) == ["1", "2", "3"]


def test_next_version_is_numeric_max_plus_one_ignoring_other_names(tmp_path):
    assert pusher.next_version(str(tmp_path / "missing")) == 1
    for name in ("3", "10", "9", "latest", ".tmp-11-abcd", "12.bak"):
        (tmp_path / name).mkdir()
    (tmp_path / "99").write_text("a file, not a version")
    assert pusher.next_version(str(tmp_path)) == 11


def test_model_not_blessed_is_not_pushed(tmp_path, model_uri):
    serving_root = tmp_path / "serving"
    pushed_model = push(tmp_path, serving_root, model_uri, blessed=False)
    assert pushed_model.get_int_custom_property("pushed") == 0
    assert not pushed_model.has_custom_property("pushed_version")
    assert children(serving_root) == []


def test_infra_blessing_not_blessed_stops_the_push(tmp_path, model_uri):
    serving_root = tmp_path / "serving"
    pushed_model = push(tmp_path, serving_root, model_uri, blessed=True, infra_blessed=False)
    assert pushed_model.get_int_custom_property("pushed") == 0
    assert children(serving_root) == []

    pushed_model = push(tmp_path, serving_root, model_uri, blessed=True, infra_blessed=True)
    assert pushed_model.get_string_custom_property("pushed_version") == "1"


def test_failed_copy_leaves_no_version(tmp_path, model_uri):
    """A real I/O error part way through the copy: a dangling link among the variables."""
    broken_uri = tmp_path / "broken_model"
    shutil.copytree(model_uri, broken_uri)
    os.symlink(tmp_path / "nowhere", broken_uri / "Format-Serving" / "variables" / "dangling")
    serving_root = tmp_path / "serving"

    # The executor archives the model in the PushedModel artifact first: that copy fails, and
    # nothing reaches the serving root.
    with pytest.raises(Exception) as failure:
        push(tmp_path, serving_root, str(broken_uri))
    assert "dangling" in str(failure.value.__cause__ or failure.value)
    assert children(serving_root) == []

    # The copy into the serving root itself, failing after saved_model.pb has been copied.
    with pytest.raises(pusher.PushError, match="dangling") as failure:
        pusher.push_model(str(broken_uri / "Format-Serving"), str(serving_root), MODEL_NAME)
    assert isinstance(failure.value.__cause__, tf.errors.NotFoundError)
    assert children(serving_root / MODEL_NAME) == []  # no version, no temporary directory

    assert push(tmp_path, serving_root, model_uri).get_string_custom_property(
        "pushed_version") == "1"


def test_crash_mid_copy_leaves_no_version_and_next_push_cleans_up(tmp_path, model_uri):
    """The process dies after copying two files; nothing catches that, as with a kill -9."""
    serving_root = tmp_path / "serving"
    crashing_push = textwrap.dedent("""
        import os, sys
        import tensorflow as tf
        from components import pusher

        copy_file, copied = tf.io.gfile.copy, []

        def copy_then_die(source, destination, overwrite=False):
            if len(copied) == 2:
                os._exit(17)
            copy_file(source, destination, overwrite)
            copied.append(destination)

        tf.io.gfile.copy = copy_then_die
        pusher.push_model(sys.argv[1], sys.argv[2], sys.argv[3])
        """)
    process = subprocess.run(
        [sys.executable, "-c", crashing_push, os.path.join(model_uri, "Format-Serving"),
         str(serving_root), MODEL_NAME],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert process.returncode == 17, process.stderr[-2000:]

    left_behind = children(serving_root / MODEL_NAME)
    assert len(left_behind) == 1 and left_behind[0].startswith(".tmp-1-")
    partial_files = [name for _, _, files in os.walk(serving_root / MODEL_NAME / left_behind[0])
                     for name in files]
    assert len(partial_files) == 2  # the crash really happened mid-copy

    pushed_model = push(tmp_path, serving_root, model_uri)
    assert pushed_model.get_string_custom_property("pushed_version") == "1"
    assert children(serving_root / MODEL_NAME) == ["1"]  # the stale directory is gone


PUSH_IN_A_SUBPROCESS = textwrap.dedent("""
    import resource, signal, sys
    from components import pusher
    if sys.argv[4] != "0":  # stand-in for a full disk: a write past N bytes fails (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[4]), int(sys.argv[4])))
    try:
        pusher.push_model(sys.argv[1], sys.argv[2], sys.argv[3])
    except pusher.PushError as error:
        print(error)
        sys.exit(3)
    """)


def version_files(model_dir):
    return {os.path.relpath(os.path.join(root, name), model_dir): os.path.getsize(
        os.path.join(root, name)) for root, _, names in os.walk(model_dir) for name in names
        if name != pusher.LOCK_FILE_NAME}


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_a_read_only_or_full_serving_root_is_a_clear_error_and_version_1_is_untouched(
        tmp_path, model_uri, other_model_uri, fault, fault_record):
    """The push of version 2 meets a serving root that cannot take it. Read-only: the push runs
    as root without the capability to override file modes (setpriv), in a model directory of
    mode 0555. Full: a file-size limit (RLIMIT_FSIZE) stands in for a full disk; the copy's
    write fails part way through a file, as with ENOSPC. Either way: exit with a PushError
    naming the directory and the cause, version 1 byte for byte as before, no staging
    directory left behind."""
    serving_root = tmp_path / "serving"
    pusher.push_model(os.path.join(model_uri, "Format-Serving"), str(serving_root), MODEL_NAME)
    model_dir = serving_root / MODEL_NAME
    before = version_files(model_dir)
    command = [sys.executable, "-c", PUSH_IN_A_SUBPROCESS,
               os.path.join(other_model_uri, "Format-Serving"), str(serving_root), MODEL_NAME,
               "1000" if fault == "full" else "0"]
    if fault == "read-only":
        os.chmod(model_dir, 0o555)
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=120)
    finally:
        os.chmod(model_dir, 0o755)
    fault_record(f"serving root {fault} during a push",
                 "setpriv without CAP_DAC_OVERRIDE, directory 0555" if fault == "read-only"
                 else "RLIMIT_FSIZE 1000 bytes (a write fails mid-file)",
                 time.monotonic() - started, survived=result.returncode == 3,
                 data_lost="none" if version_files(model_dir) == before else "version 1 changed")
    assert result.returncode == 3, result.stderr[-3000:]
    message = result.stdout
    assert f"cannot push {os.path.join(other_model_uri, 'Format-Serving')} into {model_dir}" \
        in message
    assert ("Permission denied" if fault == "read-only" else "File too large") in message, \
        message
    assert "Nothing served changed: versions [1] are there before and are untouched" in message
    assert version_files(model_dir) == before  # version 1 unchanged, nothing else left
    assert children(model_dir) == ["1"]
    # Once the serving root is fixed, the push goes through as version 2.
    assert pusher.push_model(os.path.join(other_model_uri, "Format-Serving"),
                             str(serving_root), MODEL_NAME)[0] == 2


def test_models_config_lists_every_model_and_keeps_existing_entries(tmp_path, model_uri):
    serving_root = tmp_path / "serving"
    serving_root.mkdir()
    # An entry an operator wrote, pointing at a container mount, with its own version policy.
    (serving_root / "models.config").write_text(textwrap.dedent("""
        model_config_list {
          config {
            name: "sentiment"
            base_path: "/models/sentiment"
            model_platform: "tensorflow"
            model_version_policy { specific { versions: 4 } }
          }
        }
        """))
    # A model pushed before models.config existed: it gets an entry too.
    shutil.copytree(os.path.join(model_uri, "Format-Serving"), serving_root / "legacy" / "5")

    push(tmp_path, serving_root, model_uri)
    push(tmp_path, serving_root, model_uri)  # a second push does not duplicate entries

    entries = {entry.name: entry for entry in read_config(serving_root).model_config_list.config}
    assert sorted(entries) == ["classifier", "legacy", "sentiment"]
    assert entries["sentiment"].base_path == "/models/sentiment"
    assert list(entries["sentiment"].model_version_policy.specific.versions) == [4]
    for name in ("classifier", "legacy"):
        assert entries[name].base_path == str(serving_root / name)
        assert entries[name].model_platform == "tensorflow"
        assert entries[name].model_version_policy.latest.num_versions == 2
    assert [name for name in children(serving_root) if name.startswith(".")] == []


def test_broken_models_config_stops_the_push_before_anything_is_served(tmp_path, model_uri):
    serving_root = tmp_path / "serving"
    serving_root.mkdir()
    (serving_root / "models.config").write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ValueError, match="models.config is not a ModelServerConfig"):
        push(tmp_path, serving_root, model_uri)
    assert not (serving_root / MODEL_NAME).exists()


@pytest.mark.parametrize("serving_root, model_name, message", [
    ("serving", "../escape", "model_name"),
    ("serving", "", "model_name"),
    ("serving", ".hidden", "model_name"),
])
def test_constructor_rejects_what_it_cannot_serve(serving_root, model_name, message):
    with pytest.raises(ValueError, match=message):
        ServingPusher(serving_root=serving_root, model_name=model_name,
                      model=types.Channel(type=standard_artifacts.Model))


def test_push_through_a_tfx_pipeline(tmp_path, model_uri):
    """Importers for a Model, a blessed ModelBlessing and InfraBlessing feed ServingPusher."""
    blessing_dir, infra_blessing_dir = tmp_path / "blessing", tmp_path / "infra_blessing"
    blessing_dir.mkdir()
    (blessing_dir / "BLESSED").write_text("")  # what the Evaluator writes, with `blessed`: 1
    infra_blessing_dir.mkdir()
    (infra_blessing_dir / "INFRA_BLESSED").write_text("")
    model = tfx.dsl.Importer(source_uri=model_uri, artifact_type=standard_artifacts.Model
                             ).with_id("ModelImporter")
    blessing = tfx.dsl.Importer(
        source_uri=str(blessing_dir), artifact_type=standard_artifacts.ModelBlessing,
        custom_properties={"blessed": 1}).with_id("ModelBlessingImporter")
    infra_blessing = tfx.dsl.Importer(
        source_uri=str(infra_blessing_dir), artifact_type=standard_artifacts.InfraBlessing,
        custom_properties={"blessed": 1}).with_id("InfraBlessingImporter")
    serving_root = tmp_path / "serving"
    serving_pusher = ServingPusher(
        serving_root=str(serving_root), model_name=MODEL_NAME, model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        infra_blessing=infra_blessing.outputs["result"])
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(tmp_path / "metadata.sqlite"))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="pusher_test", pipeline_root=str(tmp_path / "root"),
        components=[model, blessing, infra_blessing, serving_pusher],
        metadata_connection_config=connection, enable_cache=False))

    version_dir = serving_root / MODEL_NAME / "1"
    assert (version_dir / "saved_model.pb").exists()
    assert (version_dir / "variables" / "variables.index").exists()
    [pushed_model] = metadata_store.MetadataStore(connection).get_artifacts_by_type(
        standard_artifacts.PushedModel.TYPE_NAME)
    properties = pushed_model.custom_properties
    assert properties["pushed"].int_value == 1
    assert properties["pushed_version"].string_value == "1"
    assert properties["pushed_destination"].string_value == str(version_dir)
    [entry] = read_config(serving_root).model_config_list.config
    assert (entry.name, entry.base_path) == (MODEL_NAME, str(serving_root / MODEL_NAME))


def test_object_store_push_writes_saved_model_pb_last_and_redoes_a_crashed_version(
        tmp_path, model_uri, other_model_uri, monkeypatch):
    """A serving root without directory rename (ram:// stands for gs:// here: TensorFlow's
    in-memory filesystem): versions are written in place, saved_model.pb last."""
    serving_root = f"ram://serving-{uuid.uuid4().hex}"
    version_dir = f"{serving_root}/{MODEL_NAME}/1"
    real_copy = tf.io.gfile.copy
    seen_when_saved_model_pb_arrived = []

    def copy(source, destination, overwrite=False):
        if destination == f"{version_dir}/saved_model.pb":
            seen_when_saved_model_pb_arrived.append(sorted(
                os.path.join(directory, name)[len(version_dir) + 1:]
                for directory, _, names in tf.io.gfile.walk(version_dir) for name in names))
        return real_copy(source, destination, overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", copy)
    first = push(tmp_path, serving_root, model_uri)
    assert first.get_string_custom_property("pushed_destination") == version_dir
    # The variables were complete before TF Serving could see a loadable version.
    assert "variables/variables.index" in seen_when_saved_model_pb_arrived[0]
    served = tf.saved_model.load(version_dir)
    assert served.signatures["serving_default"](x=tf.constant([1.0]))["y"].numpy().tolist() \
        == [2.0]

    # A push that died before saved_model.pb left version 2 without it: pushed again as 2.
    crashed = f"{serving_root}/{MODEL_NAME}/2"
    tf.io.gfile.makedirs(f"{crashed}/variables")
    with tf.io.gfile.GFile(f"{crashed}/variables/partial", "w") as handle:
        handle.write("half")
    second = push(tmp_path, serving_root, other_model_uri)
    assert second.get_string_custom_property("pushed_version") == "2"
    assert not tf.io.gfile.exists(f"{crashed}/variables/partial")
    assert tf.io.gfile.exists(f"{crashed}/saved_model.pb")

    with tf.io.gfile.GFile(f"{serving_root}/models.config") as handle:
        config = text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    [entry] = config.model_config_list.config
    assert entry.base_path == f"{serving_root}/{MODEL_NAME}"


def served_baseline_artifact(model_dir):
    """A ServedBaseline's output as it records what is served from `model_dir` now."""
    baseline = standard_artifacts.Model()
    version, _, fingerprint = pusher.served_version(str(model_dir))
    baseline.set_int_custom_property(pusher.SERVED_VERSION_PROPERTY, version)
    baseline.set_string_custom_property(pusher.SERVED_FINGERPRINT_PROPERTY, fingerprint)
    return baseline


def test_push_refused_when_another_version_appeared_after_the_evaluation(
        tmp_path, model_uri, other_model_uri):
    serving_root = tmp_path / "serving"
    model_dir = serving_root / MODEL_NAME
    compared = served_baseline_artifact(model_dir)  # nothing served when it was evaluated
    assert compared.get_int_custom_property(pusher.SERVED_VERSION_PROPERTY) == 0
    # Another pipeline pushes meanwhile (two pipelines racing for one model name).
    push(tmp_path, serving_root, other_model_uri)
    refused = push(tmp_path, serving_root, model_uri, served_baseline=compared)
    assert refused.get_int_custom_property("pushed") == 0
    reason = refused.get_string_custom_property(pusher.NOT_PUSHED_REASON_PROPERTY)
    assert reason.startswith("not pushed: the Evaluator compared the model with nothing (no "
                             f"version was served), but {model_dir} now serves version 1 (")
    assert pusher.version_numbers(str(model_dir)) == [1]

    # Compared with version 1, which is still what is served: pushed as version 2.
    compared = served_baseline_artifact(model_dir)
    pushed = push(tmp_path, serving_root, model_uri, served_baseline=compared)
    assert pushed.get_int_custom_property("pushed") == 1
    assert pusher.version_numbers(str(model_dir)) == [1, 2]

    # Version 2 replaced in place by other contents (an object-store push rewriting it):
    # the same number, another fingerprint, so not what the Evaluator compared with.
    compared = served_baseline_artifact(model_dir)
    shutil.rmtree(model_dir / "2")
    shutil.copytree(os.path.join(other_model_uri, "Format-Serving"), model_dir / "2")
    refused = push(tmp_path, serving_root, model_uri, served_baseline=compared)
    assert refused.get_int_custom_property("pushed") == 0
    assert "now serves version 2 with other contents" in refused.get_string_custom_property(
        pusher.NOT_PUSHED_REASON_PROPERTY)


def test_version_fingerprint_without_fingerprint_file_covers_graph_and_variables(
        tmp_path, model_uri, other_model_uri):
    first, second = tmp_path / "1", tmp_path / "2"
    for directory, source in ((first, model_uri), (second, other_model_uri)):
        shutil.copytree(os.path.join(source, "Format-Serving"), directory)
        os.remove(directory / pusher.FINGERPRINT_FILE_NAME)  # as older TF versions wrote them
    assert pusher.version_fingerprint(str(first)) != pusher.version_fingerprint(str(second))
    shutil.copytree(first, tmp_path / "copy")
    assert pusher.version_fingerprint(str(first)) == \
        pusher.version_fingerprint(str(tmp_path / "copy"))


def test_a_file_uri_serving_root_is_the_local_directory(tmp_path, model_uri):
    from pipeline.config import PipelineConfig
    root = tmp_path / "serving"
    destination = pusher.serving_push_destination(f"file://{root}", MODEL_NAME)
    assert destination.filesystem.base_directory == str(root / MODEL_NAME)
    config = PipelineConfig.from_settings(train_data="t.csv", serving_root=f"file://{root}")
    assert config.resolved().serving_model_root == str(root)
    pushed = push(tmp_path, f"file://{root}", model_uri)
    assert pushed.get_custom_property("pushed_destination") == str(root / MODEL_NAME / "1")
    assert pusher.version_numbers(str(root / MODEL_NAME)) == [1]


def test_two_pushes_of_one_model_at_once_both_complete_one_after_the_other(tmp_path, model_uri):
    """The second push waits for the first (push_lock) instead of deleting its temporary
    directory as a stale one. Made deterministic by starting the second push only once the
    first one's temporary directory exists, i.e. while it copies."""
    import threading
    big_model = tmp_path / "big_model"
    shutil.copytree(model_uri, big_model)
    assets = big_model / "Format-Serving" / "assets"
    assets.mkdir(exist_ok=True)
    (assets / "large.bin").write_bytes(os.urandom(64 * 1024 * 1024))  # a copy that takes a while
    serving_root = tmp_path / "serving"
    model_dir = serving_root / MODEL_NAME
    results, errors = {}, {}

    def push_in_thread(name, model, wait_for_staging):
        try:
            if wait_for_staging:
                deadline = time.monotonic() + 60
                while not any(entry.startswith(".tmp-") for entry in
                              (os.listdir(model_dir) if model_dir.is_dir() else [])):
                    assert time.monotonic() < deadline, "the first push never started copying"
                    time.sleep(0.001)
            results[name] = pusher.push_model(os.path.join(model, "Format-Serving"),
                                              str(serving_root), MODEL_NAME)
        except Exception as error:  # reported below
            errors[name] = error

    threads = [threading.Thread(target=push_in_thread, args=("first", str(big_model), False)),
               threading.Thread(target=push_in_thread, args=("second", model_uri, True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == {}
    assert results["first"][0] == 1 and results["second"][0] == 2
    assert pusher.version_numbers(str(model_dir)) == [1, 2]
    assert os.path.getsize(model_dir / "1" / "assets" / "large.bin") == 64 * 1024 * 1024
    assert not [entry for entry in os.listdir(model_dir) if entry.startswith(".tmp-")]
