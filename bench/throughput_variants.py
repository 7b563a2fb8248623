"""The ways of training that bench/training_throughput.py compares, each a `Variant`.

ours (the Trainer's classifier on make_dataset's length buckets) and the padded recipe (the
same classifier on from_tensor_slices batches padded to max_length), each also with
mixed_bfloat16 + XLA; transformers' TFBertForSequenceClassification on the padded input; and
the PyTorch loop, run in its own process (bench/torch_training.py in the torch virtualenv).
A Variant knows how to build and trace itself, train more steps, and train afresh for the
accuracy comparison; the timing and the statistics are elsewhere.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import os
import pathlib
import subprocess
import time
from typing import Callable, Dict, List, Optional

from bench_env import REPO  # first: sets up the environment TF needs

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from throughput_data import (BATCH_SIZE, FEATURE_SPEC, PreparedData,  # noqa: E402
                             TokenCounter, classifier_inputs, padded_dataset)
from throughput_timing import run_steps  # noqa: E402
from trainer import input_pipeline, model  # noqa: E402
from trainer.config import TrainingConfig  # noqa: E402

NUM_LABELS = 2
DEFAULTS = TrainingConfig()  # the Trainer's defaults
TORCH_WORKER = REPO / "bench" / "torch_training.py"
TORCH_PYTHON = REPO / "bench" / ".torch-venv" / "bin" / "python"
FAST = "mixed_bfloat16 + XLA"
OURS, OURS_FAST = "ours", f"ours, {FAST}"
PADDED, PADDED_FAST = "padded recipe", f"padded recipe, {FAST}"
HF = "padded recipe, TFBertForSequenceClassification"
TORCH = "PyTorch, BertForSequenceClassification"


@dataclasses.dataclass
class Variant:
    """One way of training. `start(schedule_steps)` builds and traces it and returns the
    function that trains `steps` more steps and returns their seconds; `stop` frees it."""
    name: str
    settings: str
    input: str
    start: Callable[[int], Callable[[int], float]]
    stop: Callable[[], None] = lambda: None
    train_for_accuracy: Optional[Callable[[int, int], float]] = None  # steps, seed -> accuracy
    counter: Optional[TokenCounter] = None  # None: padded to max_seq_length
    window_steps: int = 0  # 0: --window-steps
    setup_seconds: float = 0.0  # build + tracing (XLA: compiling) + first steps
    seconds: List[float] = dataclasses.field(default_factory=list)
    error: str = ""
    accuracies: Dict[int, float] = dataclasses.field(default_factory=dict)  # seed -> accuracy
    note: str = ""


def make_variants(args, checkpoint: str, data: PreparedData,
                  train_tsv: pathlib.Path) -> List[Variant]:
    """The variants the flags ask for, in the order they are measured."""
    variants = [ours_variant(OURS, "float32", False, checkpoint, data, args)]
    if not args.no_fast:
        variants.append(ours_variant(OURS_FAST, "mixed_bfloat16", True, checkpoint, data, args))
    variants.append(padded_variant(PADDED, "float32", False, checkpoint, data, args.seed))
    if not args.no_fast:
        fast_padded = padded_variant(PADDED_FAST, "mixed_bfloat16", True, checkpoint, data,
                                     args.seed)
        fast_padded.train_for_accuracy = None  # throughput only: same model as the row above
        variants.append(fast_padded)
    if not args.no_hf and not args.skip_throughput:
        variants.append(hf_variant(checkpoint, data, args.seed))
    if not args.no_torch and not args.skip_throughput:
        variants.append(torch_variant(pathlib.Path(args.torch_python), checkpoint, train_tsv,
                                      args.examples, args.max_seq_length, args.seed,
                                      args.torch_window_steps))
    return variants


def precision_settings(precision: str, xla: bool) -> str:
    """The settings column: e.g. "mixed_bfloat16, XLA"."""
    return f"{precision}, {'XLA' if xla else 'no XLA'}"


def ours_variant(name: str, precision: str, xla: bool, checkpoint: str, data: PreparedData,
                 args) -> Variant:
    """The Trainer's path: the TFRecord read by make_dataset, counted by a TokenCounter."""
    counter = TokenCounter(args.max_seq_length)
    return keras_variant(
        name, precision_settings(precision, xla),
        "in-graph tokenizer → TFRecord → `make_dataset` (length buckets)",
        lambda steps, seed: build_ours_or_padded(checkpoint, steps, seed, precision, xla),
        lambda seed: counter.wrap(input_pipeline.make_dataset(
            data.train_file, FEATURE_SPEC, BATCH_SIZE, args.max_seq_length, training=True,
            seed=seed)),
        args.seed,
        lambda: input_pipeline.make_dataset(data.test_file, FEATURE_SPEC, BATCH_SIZE,
                                            args.max_seq_length, training=False),
        priming=data.priming, counter=counter)


def padded_variant(name: str, precision: str, xla: bool, checkpoint: str, data: PreparedData,
                   seed: int) -> Variant:
    """The same classifier on the padded recipe's from_tensor_slices batches."""
    return keras_variant(
        name, precision_settings(precision, xla),
        "`BertTokenizerFast` max_length → `from_tensor_slices`",
        lambda steps, seed: build_ours_or_padded(checkpoint, steps, seed, precision, xla),
        lambda seed: padded_dataset(classifier_inputs(data.padded), data.labels, seed, True),
        seed,
        lambda: padded_dataset(classifier_inputs(data.test_padded), data.test_labels, seed,
                               False))


def hf_variant(checkpoint: str, data: PreparedData, seed: int) -> Variant:
    """TFBertForSequenceClassification on the padded recipe's input (throughput only)."""
    hf = keras_variant(HF, "float32, no XLA", "same as padded recipe",
                       lambda steps, seed: build_hf(checkpoint, steps, seed),
                       lambda seed: padded_dataset(data.padded, data.labels, seed, True),
                       seed,
                       lambda: padded_dataset(data.test_padded, data.test_labels, seed, False))
    hf.train_for_accuracy = None  # its own head (pooler + dense): not the same model
    return hf


def build_ours_or_padded(checkpoint: str, train_steps: int, seed: int, precision: str,
                         xla: bool) -> keras.Model:
    """trainer.model's classifier, as run_fn builds it with --mixed-precision/--xla."""
    keras.mixed_precision.set_global_policy(precision)  # layers take the policy when built
    try:
        keras.utils.set_random_seed(seed)  # the same classifier-head initialisation for all
        classifier = model.build_classifier(checkpoint, NUM_LABELS, DEFAULTS.dropout)
        model.compile_classifier(classifier, DEFAULTS.learning_rate, train_steps,
                                 warmup_steps=int(train_steps * DEFAULTS.warmup_fraction),
                                 weight_decay=DEFAULTS.weight_decay, jit_compile=xla)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return classifier


def build_hf(checkpoint: str, train_steps: int, seed: int) -> keras.Model:
    from transformers import TFBertForSequenceClassification, create_optimizer
    keras.utils.set_random_seed(seed)
    classifier = TFBertForSequenceClassification.from_pretrained(
        checkpoint, num_labels=NUM_LABELS, classifier_dropout=DEFAULTS.dropout)
    optimizer, _ = create_optimizer(
        init_lr=DEFAULTS.learning_rate, num_train_steps=max(train_steps, 1),
        num_warmup_steps=int(train_steps * DEFAULTS.warmup_fraction),
        weight_decay_rate=DEFAULTS.weight_decay)
    classifier.compile(optimizer=optimizer,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                       jit_compile=False)
    return classifier


def logits_of(classifier: keras.Model, features) -> tf.Tensor:
    outputs = classifier(features, training=False)
    return getattr(outputs, "logits", outputs)


def accuracy(classifier: keras.Model, dataset: tf.data.Dataset) -> float:
    correct = total = 0
    for features, labels in dataset:
        predicted = tf.argmax(logits_of(classifier, features), axis=-1).numpy()
        correct += int(np.sum(predicted == labels.numpy()))
        total += len(predicted)
    return correct / total


def keras_variant(name: str, settings: str, input_description: str,
                  build: Callable[[int, int], keras.Model],
                  train_data: Callable[[int], tf.data.Dataset],
                  seed: int,
                  eval_data: Callable[[], tf.data.Dataset],
                  priming: Optional[List[tuple]] = None,
                  counter: Optional[TokenCounter] = None) -> Variant:
    state = {}

    def start(schedule_steps: int) -> Callable[[int], float]:
        started = time.monotonic()
        classifier = build(schedule_steps, seed)
        dataset = train_data(seed)
        iterator = iter(dataset)
        train_function = classifier.make_train_function()
        built = time.monotonic() - started
        if priming:  # same element_spec as the real input: the same trace
            primer = tf.data.Dataset.from_generator(lambda: iter(priming),
                                                    output_signature=dataset.element_spec)
            first = run_steps(train_function, iter(counter.wrap(primer)), len(priming))
        else:
            first = run_steps(train_function, iterator, 1)
        print(f"{name}: built in {built:.0f} s, traced (first {len(priming or [0])} steps) in "
              f"{first:.0f} s", flush=True)
        variant.setup_seconds = time.monotonic() - started
        state.update(classifier=classifier, iterator=iterator)
        return lambda steps: run_steps(train_function, iterator, steps)

    def train_for_accuracy(steps: int, seed: int) -> float:
        keras.backend.clear_session()
        classifier = build(steps, seed)
        classifier.fit(train_data(seed), steps_per_epoch=steps, epochs=1, verbose=0)
        value = accuracy(classifier, eval_data())
        del classifier
        gc.collect()
        return value

    variant = Variant(name, settings, input_description, start, stop=state.clear,
                      train_for_accuracy=train_for_accuracy, counter=counter)
    return variant


def torch_variant(python: pathlib.Path, checkpoint: str, train_file: pathlib.Path,
                  examples: int, max_seq_length: int, seed: int, window_steps: int) -> Variant:
    """The PyTorch loop in its own process (bench/torch_training.py in the torch venv)."""
    state = {}

    def request(command: Dict) -> Dict:
        process = state["process"]
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker exited ({process.wait()}): "
                               + process.stderr.read()[-500:])
        return json.loads(line)

    def start(schedule_steps: int) -> Callable[[int], float]:
        if not python.exists():
            raise FileNotFoundError(f"no torch virtualenv at {python} (make bench-torch-venv)")
        started = time.monotonic()
        # OpenMP threads that wait passively: on this shared 2-core machine (other jobs
        # running) the default spinning wait made torch's steps ~2x slower.
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", PYTHONPATH="")
        process = subprocess.Popen(
            [str(python), str(TORCH_WORKER), "--checkpoint", checkpoint, "--train",
             str(train_file), "--examples", str(examples), "--total-steps", str(schedule_steps),
             "--max-seq-length", str(max_seq_length), "--seed", str(seed),
             "--batch-size", str(BATCH_SIZE), "--learning-rate", str(DEFAULTS.learning_rate),
             "--warmup-fraction", str(DEFAULTS.warmup_fraction),
             "--weight-decay", str(DEFAULTS.weight_decay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        state["process"] = process
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker exited ({process.wait()}): "
                               + process.stderr.read()[-500:])
        ready = json.loads(line)
        variant.note = f"torch {ready['torch']}, {ready['threads']} threads"
        variant.setup_seconds = time.monotonic() - started
        print(f"{TORCH}: ready in {time.monotonic() - started:.0f} s ({variant.note}, first "
              f"step {ready['first_step_seconds']:.0f} s)", flush=True)
        return lambda steps: request({"steps": steps})["seconds"]

    def stop() -> None:
        process = state.pop("process", None)
        if process is not None and process.poll() is None:
            process.stdin.write(json.dumps({"quit": True}) + "\n")
            process.stdin.close()
            process.wait(timeout=60)

    variant = Variant(TORCH, "float32, eager", "`BertTokenizerFast` max_length → `DataLoader`",
                      start, stop=stop, window_steps=window_steps)
    return variant
