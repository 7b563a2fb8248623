"""ServingPusher: puts a blessed model where TensorFlow Serving loads it, atomically.

Its one job: copy the SavedModel to `<serving_root>/<model_name>/<version>/` and list the model
in `<serving_root>/models.config` (a ModelServerConfig for `tensorflow_model_server
--model_config_file`).

It is TFX's Pusher with a different write. It keeps TFX's checks: it pushes only when the
ModelBlessing is blessed and, when an `infra_blessing` input is wired, the InfraBlessing too. It
also records the same `pushed`, `pushed_destination` and `pushed_version` properties on the
PushedModel artifact. What it changes:

- Versions are integers that always increase: the largest version directory present plus one,
  starting at 1. TFX names versions by the Unix time, so two pushes in the same second collide
  and a clock that steps back makes a new model look older.
- The version appears in one step. TFX copies file by file into the version directory, so a
  server polling it can see half a model. Here the model is copied into a temporary directory
  next to the versions (`.tmp-<version>-<random>`: TF Serving only loads all-digit names) and
  renamed to `<version>`. A version directory is therefore complete or absent. A crash leaves
  only the temporary directory, and the next push deletes it.
- A model that is already the newest version (the same SavedModel fingerprint, e.g. the cached
  model of a rerun that changed only a blessing threshold) is not copied again: the push
  records that version, so a rerun does not multiply identical versions.
- models.config gets an entry for each model directory under the serving root. Entries already
  in the file stay as they are: an operator may have changed base_path for a container mount,
  or the version policy. The file is replaced atomically as well.

On an object store (a serving root such as gs://bucket/serving), which has no directory
rename, a version is written in place with saved_model.pb last, as TFX's Pusher does: TF Serving
keeps looking for that file before it loads a version. A push that crashed leaves a version
directory without saved_model.pb; the next push writes that version again. models.config is
written beside itself and renamed over the old one, a server-side copy that replaces the object
whole.

Pushes of one model name run one at a time: on a local or mounted filesystem they take an
advisory lock (`<model_dir>/.push.lock`, flock, released by the operating system if the pusher
dies), so a second push waits and then writes the next version rather than deleting the first
one's temporary directory as stale. The executor holds it from the re-check of what is served to
the write. An object store has no locks: there two racing pushes are caught by that re-check.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import tensorflow as tf
from absl import logging
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2
from tfx import types
from tfx.components import Pusher
from tfx.components.distribution_validator.executor import (ARTIFACT_PROPERTY_BLESSED_KEY,
                                                             NOT_BLESSED_VALUE)
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, proto_utils

from components.validation_gate import describe_anomalies
from serving import contract
from serving.contract import SERVING_CONFIG_FILE_NAME

_STAGING_PREFIX = ".tmp-"
LOCK_FILE_NAME = ".push.lock"  # TF Serving loads only all-digit names: ignored
# Model names end up in REST paths (/v1/models/<name>) and directory names.
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Serve the two newest versions. Clients that pin the previous version keep working while a new
# version rolls out, and rolling back is instant.
_VERSIONS_SERVED = 2
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
FINGERPRINT_FILE_NAME = "fingerprint.pb"  # written by tf.saved_model.save since TF 2.12
# On the PushedModel: 1 when the model was already the newest version, so none was added.
ALREADY_SERVED_PROPERTY = "already_served"
# On the PushedModel of a push refused because what is served changed after the evaluation.
NOT_PUSHED_REASON_PROPERTY = "not_pushed_reason"
# The input a ServedBaseline feeds (components/served_baseline.py), and the properties of its
# artifact the push re-checks: the version the Evaluator compared with (0: nothing served)
# and its version_fingerprint.
SERVED_BASELINE_KEY = "served_baseline"
SERVED_VERSION_PROPERTY, SERVED_FINGERPRINT_PROPERTY = "served_version", "served_fingerprint"
NOTHING_SERVED = 0
# The DistributionValidator's anomalies (--drift-action stop-push), whose `blessed` property
# holds a verdict per pair of splits (NOT_BLESSED_VALUE: they drifted).
DRIFT_ANOMALIES_KEY = "drift_anomalies"
_FINGERPRINTED_FILES = (FINGERPRINT_FILE_NAME, "saved_model.pb", "variables/variables.index")


def is_object_store(path: str) -> bool:
    """gs://, s3://, ... : a store without directory rename (file:// is the local disk)."""
    return "://" in path and not path.startswith("file://")


def _absolute(path: str) -> str:
    """An object-store URI as it is; a local path (or file:// URI) as an absolute path."""
    if is_object_store(path):
        return path.rstrip("/")
    return os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)


def serving_push_destination(serving_root: str, model_name: str) -> pusher_pb2.PushDestination:
    """The standard PushDestination for `<serving_root>/<model_name>`, after checking both."""
    if not _MODEL_NAME.fullmatch(model_name):
        raise ValueError(f"model_name {model_name!r}: use letters, digits, '_', '.' and '-', "
                         "not starting with '.' or '-'")
    # Absolute, so that models.config points at the same place whatever TF Serving's working
    # directory is.
    base_directory = os.path.join(_absolute(serving_root), model_name)
    return pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base_directory))


def serving_location(push_destination: Union[str, pusher_pb2.PushDestination]
                     ) -> Tuple[str, str]:
    """(serving_root, model_name) of a push destination: its base_directory is root/name."""
    if isinstance(push_destination, str):  # the launcher passes protos as JSON
        push_destination = proto_utils.json_to_proto(push_destination,
                                                     pusher_pb2.PushDestination())
    if push_destination.WhichOneof("destination") != "filesystem":
        raise ValueError("ServingPusher needs a filesystem push destination")
    filesystem = push_destination.filesystem
    if filesystem.versioning != pusher_pb2.Versioning.AUTO:
        raise ValueError("ServingPusher numbers versions 1, 2, 3, ...; leave "
                         "push_destination.filesystem.versioning unset")
    base_directory = _absolute(filesystem.base_directory.rstrip("/"))
    return os.path.dirname(base_directory), os.path.basename(base_directory)


def version_numbers(model_dir: str) -> List[int]:
    """The version numbers present in a model directory (local or object store), ascending."""
    return contract.version_numbers(model_dir, tf.io.gfile.listdir, tf.io.gfile.isdir)


def next_version(model_dir: str) -> int:
    return max(version_numbers(model_dir), default=0) + 1


def remove_stale_staging_dirs(model_dir: str) -> None:
    """Deletes the temporary directories of pushes that crashed before their rename."""
    for name in os.listdir(model_dir):
        path = os.path.join(model_dir, name)
        if name.startswith(_STAGING_PREFIX) and os.path.isdir(path):
            logging.warning("Removing %s, left by a push that did not finish", path)
            shutil.rmtree(path)


def copy_tree(source: str, destination: str) -> None:
    """Copies the directory tree `source` (any tf.io.gfile path) into directory `destination`."""
    source = source.rstrip("/")
    for directory, _, files in tf.io.gfile.walk(source):
        target = os.path.join(destination, directory[len(source):].lstrip("/"))
        tf.io.gfile.makedirs(target)  # also the empty ones: a SavedModel may need assets/
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target, name))


def _fsync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _flush_tree_to_disk(root: str) -> None:
    # Without this, after a power loss the rename can be on disk while the file contents
    # are not, leaving a complete-looking version directory with empty files.
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(directory, name))
        _fsync(directory)


def _check_saved_model(model_path: str) -> None:
    if not any(tf.io.gfile.exists(os.path.join(model_path, name))
               for name in _SAVED_MODEL_FILES):
        raise ValueError(f"{model_path} is not a SavedModel (no saved_model.pb); "
                         "TF Serving could not load it")


def newest_complete_version(model_dir: str) -> Optional[Tuple[int, str]]:
    """(version, its directory) of the newest version with a saved_model.pb, the one TF
    Serving serves; None when there is none."""
    complete = [version for version in version_numbers(model_dir)
                if tf.io.gfile.exists(os.path.join(model_dir, str(version), "saved_model.pb"))]
    if not complete:
        return None
    return complete[-1], os.path.join(model_dir, str(complete[-1]))


def version_fingerprint(version_dir: str) -> str:
    """A hash naming a version's contents: of TensorFlow's fingerprint.pb (graph, signatures,
    variables), or for a SavedModel written without one, of saved_model.pb and the variables'
    index."""
    digest = hashlib.sha256()
    for name in _FINGERPRINTED_FILES:
        path = os.path.join(version_dir, name)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as handle:
                digest.update(name.encode() + b"\0" + handle.read())
            if name == FINGERPRINT_FILE_NAME:
                break
    return digest.hexdigest()


def served_version(model_dir: str) -> Tuple[int, str, str]:
    """(version, its directory, version_fingerprint) of what TF Serving serves from
    `model_dir`; (NOTHING_SERVED, "", "") when nothing is."""
    newest = newest_complete_version(model_dir)
    if newest is None:
        return NOTHING_SERVED, "", ""
    return newest[0], newest[1], version_fingerprint(newest[1])


def newest_version_serving(model_path: str, model_dir: str) -> Optional[Tuple[int, str]]:
    """(version, its directory) when the newest complete version is the SavedModel at
    `model_path`: the same fingerprint.pb, TensorFlow's hash of the graph, the signatures and the
    variables. None when it is another model, or there is no version yet."""
    fingerprint = os.path.join(model_path, FINGERPRINT_FILE_NAME)
    newest = newest_complete_version(model_dir)
    if newest is None or not tf.io.gfile.exists(fingerprint):
        return None
    served = os.path.join(newest[1], FINGERPRINT_FILE_NAME)
    if not tf.io.gfile.exists(served):
        return None
    with tf.io.gfile.GFile(fingerprint, "rb") as new, tf.io.gfile.GFile(served, "rb") as old:
        return newest if new.read() == old.read() else None


def served_changed_since_evaluation(baseline: types.Artifact, model_dir: str) -> Optional[str]:
    """Why a push must not happen because what is served is no longer what the Evaluator
    compared the model with (a ServedBaseline artifact); None if it still is."""
    compared = baseline.get_int_custom_property(SERVED_VERSION_PROPERTY)
    compared_fingerprint = baseline.get_string_custom_property(SERVED_FINGERPRINT_PROPERTY)
    version, version_dir, fingerprint = served_version(model_dir)
    if (version, fingerprint) == (compared, compared_fingerprint):
        return None
    was = f"version {compared}" if compared else "nothing (no version was served)"
    now = (f"version {version} ({version_dir})" if version != compared
           else f"version {version} with other contents ({version_dir})")
    return (f"not pushed: the Evaluator compared the model with {was}, but {model_dir} now "
            f"serves {now}: another pipeline or a person pushed meanwhile (two pipelines "
            "racing for one model name?). Run again to evaluate the model against what is "
            "served now.")


@contextlib.contextmanager
def push_lock(model_dir: str) -> Iterator[None]:
    """Holds the model directory's push lock: one push per model name at a time, across
    processes. An advisory flock on `<model_dir>/.push.lock`, which the operating system
    releases when its holder dies, so a crashed push never blocks the next one. On an object
    store (no locks) it holds nothing: there the pusher's re-check of what is served is the
    only guard."""
    if is_object_store(model_dir):
        yield
        return
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, LOCK_FILE_NAME), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits for a push under way
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class PushError(RuntimeError):
    """The serving root could not take the new version (read-only, full, ...); nothing that
    was served before has changed."""


def push_model(model_path: str, serving_root: str, model_name: str) -> Tuple[int, str]:
    """Copies the SavedModel at `model_path` into a new version; returns (version, its dir).
    Waits for another push of the same model name to finish first (push_lock). An I/O error
    (a read-only or full serving root) is a PushError saying so; the served versions are
    untouched, because the copy goes to a staging directory that is removed on failure."""
    model_dir = os.path.join(serving_root, model_name)
    try:
        with push_lock(model_dir):
            return _push_model_locked(model_path, serving_root, model_name)
    except (OSError, tf.errors.OpError) as error:
        versions = contract.version_numbers(model_dir)
        raise PushError(
            f"cannot push {model_path} into {model_dir}: {error}. Nothing served changed: "
            f"{'versions ' + str(versions) + ' are' if versions else 'no version was'} there "
            "before and are untouched. Make the serving root writable or free space, then run "
            "again (completed steps are cached).") from error


def _push_model_locked(model_path: str, serving_root: str, model_name: str
                       ) -> Tuple[int, str]:
    _check_saved_model(model_path)
    model_dir = os.path.join(serving_root, model_name)
    os.makedirs(model_dir, exist_ok=True)
    # Safe under the push lock: no other push can be writing into one of these.
    remove_stale_staging_dirs(model_dir)
    version = next_version(model_dir)
    version_dir = os.path.join(model_dir, str(version))
    # os.mkdir rather than tempfile.mkdtemp: mkdtemp's mode is 0700, and the rename would keep
    # that mode, so a server running as another user could not read the version.
    staging_dir = os.path.join(model_dir, f"{_STAGING_PREFIX}{version}-{secrets.token_hex(4)}")
    os.mkdir(staging_dir)
    try:
        copy_tree(model_path, staging_dir)
        _flush_tree_to_disk(staging_dir)
        # Same directory, so the same filesystem: the rename is atomic. It also fails, rather
        # than replacing anything, if another push has created this version meanwhile.
        os.rename(staging_dir, version_dir)
    except BaseException:
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise
    _fsync(model_dir)  # make the rename itself durable
    logging.info("Model %s pushed as version %d: %s", model_path, version, version_dir)
    return version, version_dir


def push_model_to_object_store(model_path: str, serving_root: str, model_name: str
                               ) -> Tuple[int, str]:
    """push_model for an object store: saved_model.pb is written last, no rename."""
    _check_saved_model(model_path)
    model_dir = os.path.join(serving_root, model_name)
    newest = newest_complete_version(model_dir)
    version = (newest[0] if newest else 0) + 1
    version_dir = os.path.join(model_dir, str(version))
    if tf.io.gfile.exists(version_dir):  # left by a push that crashed: never loaded
        logging.warning("Rewriting %s, left incomplete by a push that did not finish",
                        version_dir)
        tf.io.gfile.rmtree(version_dir)
    io_utils.copy_dir(model_path, version_dir, deny_regex_patterns=[r"saved_model\.pb$"])
    tf.io.gfile.copy(os.path.join(model_path, "saved_model.pb"),
                     os.path.join(version_dir, "saved_model.pb"))
    logging.info("Model %s pushed as version %d: %s", model_path, version, version_dir)
    return version, version_dir


def read_serving_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig in `path`; an empty one if there is no file yet."""
    config = model_server_config_pb2.ModelServerConfig()
    if not tf.io.gfile.exists(path):
        return config
    with tf.io.gfile.GFile(path) as handle:
        try:
            text_format.Parse(handle.read(), config)
        except text_format.ParseError as error:
            raise ValueError(f"{path} is not a ModelServerConfig in text format ({error}); "
                             "fix or remove it, then push again") from error
    if config.WhichOneof("config") == "custom_model_config":
        raise ValueError(f"{path} uses custom_model_config; ServingPusher only maintains "
                         "model_config_list")
    return config


def model_names(serving_root: str) -> List[str]:
    """The directories under `serving_root` that hold at least one model version."""
    return contract.model_names(serving_root, tf.io.gfile.listdir, tf.io.gfile.isdir)


def add_model_entries(config: model_server_config_pb2.ModelServerConfig, serving_root: str
                      ) -> model_server_config_pb2.ModelServerConfig:
    """A copy of `config` with an entry added for each model under `serving_root` without one."""
    config = model_server_config_pb2.ModelServerConfig.FromString(config.SerializeToString())
    listed = {entry.name for entry in config.model_config_list.config}
    for name in model_names(serving_root):
        if name in listed:
            continue
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = os.path.join(serving_root, name)
        entry.model_platform = "tensorflow"
        entry.model_version_policy.latest.num_versions = _VERSIONS_SERVED
    return config


def write_serving_config(config: model_server_config_pb2.ModelServerConfig, path: str) -> None:
    """Replaces `path` with `config` in one step, so a server never reads half a file."""
    if is_object_store(path):
        # Written beside it, then renamed over it: on an object store the rename is a
        # server-side copy, which replaces the object whole.
        temporary = f"{os.path.dirname(path)}/{_STAGING_PREFIX}{os.path.basename(path)}-" \
                    f"{secrets.token_hex(4)}"
        with tf.io.gfile.GFile(temporary, "w") as handle:
            handle.write(text_format.MessageToString(config))
        tf.io.gfile.rename(temporary, path, overwrite=True)
        return
    temporary = os.path.join(os.path.dirname(path),
                             f"{_STAGING_PREFIX}{os.path.basename(path)}-{secrets.token_hex(4)}")
    try:
        # open() rather than tempfile.mkstemp: mkstemp's mode 0600 would survive the rename,
        # and TF Serving may run as another user.
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text_format.MessageToString(config))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync(os.path.dirname(path))


class Executor(pusher_executor.Executor):
    """TFX's pusher executor: its blessing checks and PushedModel properties, our write."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(pushed_model)
            return
        drifted = drift_found(input_dict.get(DRIFT_ANOMALIES_KEY))
        if drifted:
            logging.error("%s", drifted)
            pushed_model.set_string_custom_property(NOT_PUSHED_REASON_PROPERTY, drifted)
            self._MarkNotPushed(pushed_model)
            return
        model_path = self.GetModelPath(input_dict)
        serving_root, model_name = serving_location(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY])
        config_path = os.path.join(serving_root, SERVING_CONFIG_FILE_NAME)
        # Read the config before pushing. If the file is broken, the run stops before TF
        # Serving sees a version that the config does not list.
        read_serving_config(config_path)
        # As upstream, the PushedModel artifact keeps a copy of what was pushed. Copying it
        # first means that a failed copy leaves nothing in the serving root.
        io_utils.copy_dir(model_path, pushed_model.uri)
        # One push per model name at a time: the re-check below and the write are one step.
        with push_lock(os.path.join(serving_root, model_name)):
            if self._push(input_dict, model_path, serving_root, model_name, pushed_model):
                # Read again under the lock: a push of another model may have changed it.
                write_serving_config(add_model_entries(read_serving_config(config_path),
                                                       serving_root), config_path)

    def _push(self, input_dict: Dict[str, List[types.Artifact]], model_path: str,
              serving_root: str, model_name: str, pushed_model: types.Artifact) -> bool:
        """The re-check of what is served, then the new version (or the one already serving
        this model), recorded on `pushed_model`; False when the re-check refused the push."""
        if input_dict.get(SERVED_BASELINE_KEY):
            # Just before writing: is what is served still what the Evaluator compared with?
            changed = served_changed_since_evaluation(
                artifact_utils.get_single_instance(input_dict[SERVED_BASELINE_KEY]),
                os.path.join(serving_root, model_name))
            if changed:
                logging.error("%s", changed)
                pushed_model.set_string_custom_property(NOT_PUSHED_REASON_PROPERTY, changed)
                self._MarkNotPushed(pushed_model)
                return False
        served = newest_version_serving(model_path, os.path.join(serving_root, model_name))
        if served is not None:
            # E.g. a rerun with a changed blessing threshold: the Trainer was cached, so the
            # model is the one already served. A copy as a new version would change nothing.
            version, version_dir = served
            pushed_model.set_int_custom_property(ALREADY_SERVED_PROPERTY, 1)
            logging.info("Model %s is already served as version %d", model_path, version)
        else:
            push = (push_model_to_object_store if is_object_store(serving_root)
                    else _push_model_locked)
            version, version_dir = push(model_path, serving_root, model_name)
        self._MarkPushed(pushed_model, pushed_destination=version_dir,
                         pushed_version=str(version))
        return True


def drift_found(drift_anomalies: Optional[List[types.Artifact]]) -> Optional[str]:
    """Why drift refuses the push (every anomaly, by split), or None: no DistributionValidator
    wired, no previous span to compare with, or no drift."""
    if not drift_anomalies:
        return None
    anomalies = artifact_utils.get_single_instance(drift_anomalies)
    verdicts = anomalies.get_json_value_custom_property(ARTIFACT_PROPERTY_BLESSED_KEY) or {}
    if all(verdict != NOT_BLESSED_VALUE for verdict in dict(verdicts).values()):
        return None
    found = describe_anomalies(anomalies)
    return (f"not pushed: span {anomalies.span} drifted from the previous span (--drift-action "
            "stop-push): " + "; ".join(f"split {split!r}: {line}"
                                       for split, lines in sorted(found.items())
                                       for line in lines))


class ServingPusherSpec(Pusher.SPEC_CLASS):
    """TFX's PusherSpec, the ServedBaseline the Evaluator compared the model with, and the
    DistributionValidator's anomalies of this span."""

    INPUTS = {**Pusher.SPEC_CLASS.INPUTS,
              SERVED_BASELINE_KEY: ChannelParameter(type=standard_artifacts.Model,
                                                    optional=True),
              DRIFT_ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies,
                                                    optional=True)}


class ServingPusher(Pusher):
    """Pushes a blessed model to `<serving_root>/<model_name>/<version>/` for TF Serving.

    Output `pushed_model` (PushedModel) has the custom properties `pushed` (1/0),
    `pushed_destination` (the version directory) and `pushed_version`, as with TFX's Pusher;
    `already_served` is 1 when the model was the newest version already (same fingerprint),
    so no new version was written. With `served_baseline` (a ServedBaseline's output) it pushes
    only if the newest served version is still the one the Evaluator compared the model with;
    with `drift_anomalies` (a DistributionValidator's output) only if the span did not drift;
    otherwise `not_pushed_reason` says why.
    """

    SPEC_CLASS = ServingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, serving_root: str, model_name: str,
                 model: Optional[types.BaseChannel] = None,
                 model_blessing: Optional[types.BaseChannel] = None,
                 infra_blessing: Optional[types.BaseChannel] = None,
                 served_baseline: Optional[types.BaseChannel] = None,
                 drift_anomalies: Optional[types.BaseChannel] = None):
        # The location goes into the standard push_destination exec property, so ML Metadata
        # records where each push went, just as it does for TFX's Pusher. TFX's Pusher checks
        # and serializes the arguments; its spec gets the extra input.
        standard = Pusher(model=model, model_blessing=model_blessing,
                          infra_blessing=infra_blessing,
                          push_destination=serving_push_destination(serving_root, model_name))
        base_component.BaseComponent.__init__(self, spec=ServingPusherSpec(
            **standard.spec.exec_properties, **standard.spec.inputs, **standard.spec.outputs,
            **({SERVED_BASELINE_KEY: served_baseline} if served_baseline is not None else {}),
            **({DRIFT_ANOMALIES_KEY: drift_anomalies} if drift_anomalies is not None else {})))
