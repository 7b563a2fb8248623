"""Real Trainer runs for tests: a tiny BERT checkpoint with weights, the data half run once,
and `trainer.task.run_fn` called with a real TFX FnArgs in subprocesses.

Training runs in a fresh process (`python tests/trainer_harness.py train SPEC.json`) because
device setup (logical CPUs), TF_CONFIG clusters and SIGKILL all need one. The subprocess logs
at INFO level, so run_fn's own report ("strategy X (N replicas)") lands in its stderr, and it
writes a small JSON result file when run_fn returns.

Nothing here replaces production code: the checkpoint is a real transformers TFBertModel, the
transformed data comes from the real pipeline (LocalDagRunner, Beam DirectRunner), and run_fn
trains and exports for real. The subprocess only observes: `distribution.make_strategy` and
`export.export_serving_model` are wrapped to record the strategy run_fn got (replicas, task,
is_chief) and where it exported, then return the real results unchanged.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

TESTS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
HARNESS = pathlib.Path(__file__).resolve()
RESULT_FILE = "result.json"
# run_fn's report: "... strategy MirroredStrategy (2 replicas), precision float32, ..."
_STRATEGY_LINE = re.compile(r"Training on (\d+) examples, (\d+) labels: (\d+) epochs x (\d+) "
                            r"steps, strategy (\w+) \((\d+) replicas\), precision (\w+)")


# --------------------------------------------------------------------------- test-process side


def subprocess_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a training subprocess: offline, CPU only, no inherited cluster."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR")}
    env.update(TF_USE_LEGACY_KERAS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        env.get("PYTHONPATH", "")])))
    env.update(extra or {})
    return env


def _start_weights_process(directory: pathlib.Path) -> subprocess.Popen:
    """Adds random TFBertModel weights to a tiny checkpoint, in a fresh process (TF with
    TF_USE_LEGACY_KERAS=1 from the start, as trainer/model.py needs; this process may already
    have imported TensorFlow without it)."""
    return subprocess.Popen([sys.executable, str(HARNESS), "checkpoint", str(directory)],
                            env=subprocess_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_weights_process(process: subprocess.Popen, directory: pathlib.Path) -> None:
    try:
        output, _ = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, f"writing tiny checkpoint weights failed:\n{output[-4000:]}"
    assert (directory / "tf_model.h5").exists(), sorted(os.listdir(directory))


def make_tiny_checkpoint_with_weights(directory: pathlib.Path) -> pathlib.Path:
    """conftest's 28-token tiny checkpoint (hidden 16, 1 layer, 2 heads) plus random
    TFBertModel weights saved with save_pretrained (tf_model.h5)."""
    from conftest import write_tiny_checkpoint
    write_tiny_checkpoint(directory)
    _wait_weights_process(_start_weights_process(directory), directory)
    return directory


def prepare_trainer_inputs(work_dir: pathlib.Path) -> "TrainerInputs":
    """The tiny checkpoint with weights and the data half's outputs for it.

    Transform needs only the checkpoint's vocabulary and config, so the weights are written by
    a subprocess while the data half runs here.
    """
    from conftest import write_tiny_checkpoint
    checkpoint = write_tiny_checkpoint(work_dir / "tiny_bert")
    weights = _start_weights_process(checkpoint)
    try:
        inputs = run_data_half(checkpoint, work_dir / "data_half")
    finally:
        _wait_weights_process(weights, checkpoint)
    return inputs


@dataclasses.dataclass(frozen=True)
class TrainerInputs:
    """What the Trainer component gets from the data half, as TFX would hand it over."""

    checkpoint: str
    config: "object"  # PipelineConfig (resolved) of the data-half run
    train_files: List[str]
    eval_files: List[str]
    transform_output: str

    def train_config(self, output_dir: pathlib.Path, **overrides):
        """A training PipelineConfig: the data half's settings, 1 epoch of batches of 32
        (10 steps on the demo data: no held-out validation part) unless overridden, and its
        own output_dir (backups)."""
        settings = dict(train=True, epochs=1, train_batch_size=32, eval_batch_size=64,
                        validation_fraction=0.0, output_dir=str(output_dir))
        settings.update(overrides)
        return self.config.replace(**settings).resolved()

    def fn_args_spec(self, config, run_dir: pathlib.Path,
                     serving_model_dir: Optional[pathlib.Path] = None) -> Dict:
        """The JSON-able fields of the FnArgs that TFX's Trainer executor would build."""
        return {
            "train_files": list(self.train_files),
            "eval_files": list(self.eval_files),
            "transform_output": self.transform_output,
            "transform_graph_path": self.transform_output,
            "serving_model_dir": str(serving_model_dir or run_dir / "model" / "Format-Serving"),
            "model_run_dir": str(run_dir / "model_run"),
            "working_dir": str(run_dir / "working"),
            "custom_config": dict(config.trainer_settings().to_custom_config(),
                                  pretrained_checkpoint=self.checkpoint),
        }


def latest_artifact(pattern: str) -> str:
    paths = glob.glob(pattern)
    assert paths, f"nothing matches {pattern}"
    return max(paths, key=lambda path: int(path.rstrip("/").split("/")[-1]))


def run_data_half(checkpoint: pathlib.Path, output_dir: pathlib.Path) -> TrainerInputs:
    """The real data half on the demo data with the tiny checkpoint (in this process)."""
    from conftest import TINY_VOCAB_SETTINGS
    from pipeline import local_runner
    from pipeline.config import PipelineConfig
    config = PipelineConfig.from_settings(
        train_data=str(REPO_ROOT / "data" / "demo" / "train.csv"),
        eval_data=str(REPO_ROOT / "data" / "demo" / "eval.csv"),
        schema_path=str(REPO_ROOT / "schemas" / "demo.pbtxt"), checkpoint=str(checkpoint),
        max_seq_length=32, train=False, output_dir=str(output_dir), **TINY_VOCAB_SETTINGS)
    local_runner.run(config)
    config = config.resolved()
    examples = latest_artifact(f"{config.pipeline_root}/Transform/transformed_examples/*")
    return TrainerInputs(
        checkpoint=str(checkpoint), config=config,
        train_files=[os.path.join(examples, "Split-train", "*")],
        eval_files=[os.path.join(examples, "Split-eval", "*")],
        transform_output=latest_artifact(f"{config.pipeline_root}/Transform/transform_graph/*"))


@dataclasses.dataclass
class TrainerProcess:
    """A `train` subprocess: its Popen, its directory (spec, logs, result) and helpers."""

    popen: subprocess.Popen
    directory: pathlib.Path
    started: float

    @property
    def stdout(self) -> str:
        return (self.directory / "stdout.txt").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.directory / "stderr.txt").read_text(errors="replace")

    def result(self) -> Optional[Dict]:
        path = self.directory / RESULT_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signals the process group this harness started (the trainer and any children)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"trainer in {self.directory} did not finish in {timeout}s; "
                                 f"stderr tail:\n{self.stderr[-4000:]}")

    def describe(self) -> str:
        return (f"trainer in {self.directory} exited {self.popen.returncode}\n"
                f"--- stderr tail ---\n{self.stderr[-6000:]}\n"
                f"--- stdout tail ---\n{self.stdout[-2000:]}")

    def strategy_report(self) -> Dict:
        """run_fn's own log line: examples, labels, epochs, steps, strategy, replicas."""
        match = _STRATEGY_LINE.search(self.stderr)
        assert match, f"run_fn's 'Training on ...' line not found\n{self.describe()}"
        examples, labels, epochs, steps, strategy, replicas, precision = match.groups()
        return dict(examples=int(examples), labels=int(labels), epochs=int(epochs),
                    steps_per_epoch=int(steps), strategy=strategy, replicas=int(replicas),
                    precision=precision)


def start_trainer(directory: pathlib.Path, fn_args: Dict, logical_cpus: int = 0,
                  tf_config: Optional[Dict] = None,
                  kill_after_backup: Optional[Tuple[int, int]] = None) -> TrainerProcess:
    """Starts run_fn in a new process (own process group, so it can be killed whole).

    `kill_after_backup=(epoch, batch)`: the injected fault. The process SIGKILLs itself right
    after BackupAndRestore wrote its first backup at or past that epoch and batch, so the kill
    point does not depend on how fast the machine is."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RESULT_FILE).unlink(missing_ok=True)
    spec = {"fn_args": fn_args, "logical_cpus": logical_cpus,
            "result": str(directory / RESULT_FILE), "kill_after_backup": kill_after_backup}
    (directory / "spec.json").write_text(json.dumps(spec, indent=1))
    # Its own TMPDIR, so scratch files it leaves behind (tempfile.mkdtemp) can be checked.
    (directory / "tmp").mkdir(exist_ok=True)
    extra = {"TMPDIR": str(directory / "tmp")}
    if tf_config:
        extra["TF_CONFIG"] = json.dumps(tf_config)
    env = subprocess_env(extra)
    with open(directory / "stdout.txt", "w") as out, open(directory / "stderr.txt", "w") as err:
        popen = subprocess.Popen([sys.executable, str(HARNESS), "train",
                                  str(directory / "spec.json")],
                                 stdout=out, stderr=err, env=env, cwd=str(REPO_ROOT),
                                 start_new_session=True)
    return TrainerProcess(popen, directory, time.monotonic())


def run_trainer(directory: pathlib.Path, fn_args: Dict, timeout: float = 600,
                **kwargs) -> TrainerProcess:
    """run_fn in a subprocess, to completion; fails the test with its log if it fails."""
    process = start_trainer(directory, fn_args, **kwargs)
    returncode = process.wait(timeout)
    assert returncode == 0 and process.result(), process.describe()
    return process


def free_ports(count: int) -> List[int]:
    """Distinct free TCP ports on 127.0.0.1 (bound together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def saved_models_under(directory: pathlib.Path) -> List[pathlib.Path]:
    return sorted(path.parent for path in directory.rglob("saved_model.pb"))


def backup_checkpoint_state(backup_root: str) -> Optional[Dict[str, int]]:
    """The latest BackupAndRestore checkpoint under backup_root: epoch, batch, iterations.

    Returns None while there is none (or while one is being replaced and cannot be read).
    """
    import tensorflow as tf
    for chief_dir in glob.glob(os.path.join(backup_root, "*", "chief")):
        try:
            path = tf.train.latest_checkpoint(chief_dir)
            if not path:
                continue
            reader = tf.train.load_checkpoint(path)
            names = reader.get_variable_to_shape_map()
            iterations = [name for name in names
                          if name.startswith("model/optimizer/iter")
                          and name.endswith("VARIABLE_VALUE")]
            return {
                "path": path,
                "epoch": int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")),
                "batch": int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE")),
                "iterations": (int(reader.get_tensor(iterations[0])) if iterations else -1),
            }
        except (tf.errors.OpError, ValueError, KeyError):
            continue
    return None


def tensorboard_scalars(event_files: Sequence[str]) -> Dict[str, List[int]]:
    """tag -> steps of the scalar summaries in TensorBoard event files (train side)."""
    import tensorflow as tf
    steps: Dict[str, List[int]] = {}
    for path in event_files:
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(int(event.step))
    return steps


# ----------------------------------------------------------------------- subprocess side


def _make_checkpoint(directory: str) -> None:
    import tensorflow as tf  # noqa: F401  (after TF_USE_LEGACY_KERAS)
    from transformers import BertConfig, TFBertModel
    model = TFBertModel(BertConfig.from_pretrained(directory))
    model(model.dummy_inputs)  # build the weights
    model.save_pretrained(directory)


def _observe(module, name: str, record) -> None:
    """Wraps module.name so each call is recorded; the real function runs, unchanged."""
    real = getattr(module, name)

    def observed(*args, **kwargs):
        result = real(*args, **kwargs)
        record(result, *args, **kwargs)
        return result

    setattr(module, name, observed)


def _kill_after_backup(kill_epoch: int, kill_batch: int) -> None:
    """Makes Keras' BackupAndRestore SIGKILL this process once its backup at or past
    (kill_epoch, kill_batch) is written: a crash at a known point, right after a known backup."""
    import tf_keras
    backup = tf_keras.callbacks.BackupAndRestore._backup

    def backup_then_die(callback, epoch, batch=0):  # Keras calls it with these keywords
        backup(callback, epoch=epoch, batch=batch)
        if (epoch, batch) >= (kill_epoch, kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)

    tf_keras.callbacks.BackupAndRestore._backup = backup_then_die


def _train(spec_path: str) -> None:
    spec = json.loads(pathlib.Path(spec_path).read_text())
    import logging

    import tensorflow as tf
    # Device setup must come before anything initializes the TF runtime.
    if spec.get("logical_cpus"):
        [cpu] = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec["logical_cpus"])

    from tfx.components.trainer.fn_args_utils import FnArgs

    from trainer import distribution, export, task
    logging.basicConfig(level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if spec.get("kill_after_backup"):
        _kill_after_backup(*spec["kill_after_backup"])

    # Observations for the test, taken from the real objects run_fn creates and uses.
    strategies, exports = [], []

    def record_strategy(strategy, *args, **kwargs):
        resolver = getattr(strategy, "cluster_resolver", None)
        try:
            devices = list(strategy.extended.worker_devices)
        except RuntimeError:  # the default strategy has no device list
            devices = []
        strategies.append({
            "class": type(strategy).__name__,
            "num_replicas_in_sync": strategy.num_replicas_in_sync,
            "worker_devices": devices,
            "task_type": getattr(resolver, "task_type", None),
            "task_id": getattr(resolver, "task_id", None),
            "is_chief": distribution.is_chief(strategy)})

    def record_export(_, *args, **kwargs):
        export_dir = kwargs.get("export_dir", args[4] if len(args) > 4 else None)
        exports.append({"export_dir": str(export_dir),
                        "saved_model": tf.io.gfile.exists(f"{export_dir}/saved_model.pb")})

    _observe(distribution, "make_strategy", record_strategy)
    _observe(export, "export_serving_model", record_export)

    fn_args = FnArgs(**spec["fn_args"])
    started = time.monotonic()
    task.run_fn(fn_args)
    for record in exports:  # after run_fn: does each export still exist?
        record["exists_after_run_fn"] = tf.io.gfile.exists(record["export_dir"])
    pathlib.Path(spec["result"]).write_text(json.dumps({
        "seconds": time.monotonic() - started, "pid": os.getpid(),
        "tf_config": os.environ.get("TF_CONFIG", ""),
        "logical_devices": [device.name for device in tf.config.list_logical_devices()],
        "strategies": strategies, "exports": exports,
    }, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TF: trainer/model.py needs Keras 2
    sys.path[:0] = [str(REPO_ROOT), str(TESTS_DIR)]
    command, argument = sys.argv[1], sys.argv[2]
    {"checkpoint": _make_checkpoint, "train": _train}[command](argument)
