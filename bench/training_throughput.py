"""Training throughput of the Trainer's bucketed input pipeline vs the padded recipe, and the
accuracy both reach after the same number of steps.

Same checkpoint (the packaged MiniLM unless --checkpoint), same SST-2 sample (the first N rows
of ../shared/data/sst2/train.tsv), global batch 32, the same optimizer (transformers'
create_optimizer: AdamW, lr 5e-5, 10% linear warm-up, weight decay 0.01, as the Trainer) and loss:

* ours: texts tokenized by the project's in-graph tokenizer (BertTokenizerGraph, unpadded ids)
  written as tf.Examples to a GZIP TFRecord, read by trainer.input_pipeline.make_dataset
  (shuffle, length buckets, padding to the bucket bound), into trainer.model.build_classifier
  + compile_classifier: at the Trainer's defaults on CPU (float32, no XLA), and with the
  Trainer's `--mixed-precision mixed_bfloat16 --xla`;
* padded recipe: BertTokenizerFast(padding='max_length', max_length=128, truncation=True),
  tf.data.Dataset.from_tensor_slices(...).shuffle(N).batch(32), into the same classifier (also
  with mixed_bfloat16 + XLA, to show what those settings do for it); and the same input into
  transformers' TFBertForSequenceClassification (unless --no-hf);
* PyTorch: transformers' BertForSequenceClassification in a plain torch loop (padded to 128,
  AdamW), in the separate torch virtualenv (bench/torch_training.py; unless --no-torch).

Every variant is built and traced first (ours with one step on each length bucket's shape, so
no new shape appears while timing; XLA compiles each shape then), then takes its warm-up
steps, then K timed windows of W steps run interleaved window by window (A, B, C, A, B, C, ...)
so machine noise hits every variant alike. A step is one call of the model's Keras train
function (what model.fit runs per step) on one persistent iterator per variant, so no window
pays for a new iterator. The PyTorch loop runs in its own process, driven window by window from
this one over a pipe (only one of the two computes at a time), with fewer steps per window
(--torch-window-steps) as its steps are slower. Then (unless --accuracy-steps 0), for each of
--accuracy-seeds seeds, ours, ours with bf16 + XLA and the padded recipe are each trained afresh
from the checkpoint with that seed (the same classifier-head initialisation, dropout and
shuffle seed for all three), for the same number of steps with model.fit, and evaluated on
SST-2 test.tsv (the 872-row GLUE dev set); the difference from the padded recipe is reported
paired by seed, with a 95% confidence interval. One variant's accuracy moves by 1-2 points
from seed to seed, more than the effect asked about, hence several. Writes its two sections
("Training throughput", "Training: accuracy after equal steps") to docs/BENCHMARKS.md unless
--no-write.

  python bench/training_throughput.py                          # about 1.5 h on 2 cores
  python bench/training_throughput.py --skip-throughput        # the accuracy part: ~1 h
  python bench/training_throughput.py --examples 256 --windows 2 --window-steps 3 \
      --warmup-steps 1 --accuracy-steps 4 --accuracy-seeds 2 --no-write  # a quick check
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

from bench_env import REPO, SST2_DIR  # first: sets up the environment TF needs

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from benchmarks_md import write_section  # noqa: E402
from components.text_example_gen import read_delimited_file  # noqa: E402
from preprocessing.checkpoint import (PACKAGED_CHECKPOINT_NAME,  # noqa: E402
                                      read_tokenizer_settings, resolve_checkpoint)
from preprocessing.features import INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS, LABEL  # noqa: E402
from preprocessing.tokenization import BertTokenizerGraph  # noqa: E402
from trainer import input_pipeline, model  # noqa: E402
from trainer.config import TrainingConfig  # noqa: E402

BATCH_SIZE = 32
NUM_LABELS = 2
DEFAULTS = TrainingConfig()  # the Trainer's defaults
TORCH_WORKER = REPO / "bench" / "torch_training.py"
TORCH_PYTHON = REPO / "bench" / ".torch-venv" / "bin" / "python"
FAST = "mixed_bfloat16 + XLA"
OURS, OURS_FAST = "ours", f"ours, {FAST}"
PADDED, PADDED_FAST = "padded recipe", f"padded recipe, {FAST}"
HF = "padded recipe, TFBertForSequenceClassification"
TORCH = "PyTorch, BertForSequenceClassification"
ACCURACY_SECTION = "Training: accuracy after equal steps"
# Two variants' accuracies count as equal when the 95% confidence interval of their paired
# difference lies within ±1 point: about 9 of the 872 test sentences (one variant's accuracy
# alone ranged over 1.2-1.8 points across six seeds).
EQUIVALENCE_MARGIN = 0.01
# What Transform's transformed_feature_spec() gives the Trainer: the sparse token outputs are
# VarLen, the (dense) label index is FixedLen.
FEATURE_SPEC = {INPUT_IDS: tf.io.VarLenFeature(tf.int64),
                INPUT_MASK: tf.io.VarLenFeature(tf.int64),
                INPUT_TYPE_IDS: tf.io.VarLenFeature(tf.int64),
                LABEL: tf.io.FixedLenFeature([], tf.int64)}


# ------------------------------------------------------------------------------------- data


def read_sample(path: str, rows: Optional[int]):
    texts, labels = read_delimited_file(path, "sentence", "label")
    rows = len(texts) if rows is None else rows
    # SST-2's labels are '0'/'1'; schemas/sst2.pbtxt lists them in that order, so the
    # Trainer's class index is the integer value.
    return texts[:rows], np.array([int(label) for label in labels[:rows]], np.int64)


def tokenize_ours(texts: Sequence[str], checkpoint: str, max_seq_length: int
                  ) -> Dict[str, List[List[int]]]:
    """The project's in-graph tokenizer, as Transform runs it: unpadded rows per text."""
    tokenizer = BertTokenizerGraph(read_tokenizer_settings(checkpoint), max_seq_length)
    rows: Dict[str, List[List[int]]] = {name: [] for name in (INPUT_IDS, INPUT_MASK,
                                                              INPUT_TYPE_IDS)}
    for start in range(0, len(texts), 1024):
        tokens = tokenizer(tf.constant(list(texts[start:start + 1024])))
        for name in rows:
            rows[name].extend(tokens[name].to_list())
    return rows


def write_tfrecord(path: str, rows: Dict[str, List[List[int]]], labels: np.ndarray) -> str:
    """Transform's output format: one GZIP'd tf.Example per text, ids unpadded."""
    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for index, label in enumerate(labels):
            feature = {name: int64s(rows[name][index]) for name in rows}
            feature[LABEL] = int64s([int(label)])
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return path


def tokenize_padded(texts: Sequence[str], checkpoint: str, max_seq_length: int
                    ) -> Dict[str, np.ndarray]:
    """The transformers-docs recipe: every text padded (or truncated) to max_length."""
    from transformers import BertTokenizerFast
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    encoded = tokenizer(list(texts), padding="max_length", max_length=max_seq_length,
                        truncation=True, return_tensors="np")
    return {name: np.asarray(values, np.int32) for name, values in encoded.items()}


def padded_dataset(features: Dict[str, np.ndarray], labels: np.ndarray, seed: int,
                   training: bool) -> tf.data.Dataset:
    """from_tensor_slices(dict(...)).shuffle().batch(32); repeated, so that one iterator lasts
    every window (drop_remainder: one shape, as the recipe has whenever N % 32 == 0)."""
    dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels))
    if not training:
        return dataset.batch(BATCH_SIZE)
    return dataset.shuffle(len(labels), seed=seed).batch(BATCH_SIZE, drop_remainder=True).repeat()


def classifier_inputs(encoded: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """BertTokenizerFast's names -> build_classifier's input names."""
    return {INPUT_IDS: encoded["input_ids"], INPUT_MASK: encoded["attention_mask"],
            INPUT_TYPE_IDS: encoded["token_type_ids"]}


class TokenCounter:
    """Counts the batches the model consumes and their padded lengths (ours only: the padded
    recipe is 128 by construction). A synchronous map after make_dataset's own prefetch;
    inject_prefetch is off so tf.data adds no prefetch behind it (make_dataset already ends in
    one, so its pipeline is unchanged), i.e. the counts are of batches actually trained on."""

    def __init__(self, max_seq_length: int):
        self.tokens = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.examples = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.lengths = tf.Variable(tf.zeros([max_seq_length + 2], tf.int64), trainable=False)

    def wrap(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        def count(features, label):
            shape = tf.shape(features[INPUT_IDS], out_type=tf.int64)
            updates = [self.tokens.assign_add(shape[0] * shape[1]),
                       self.examples.assign_add(shape[0]),
                       self.lengths.assign_add(tf.one_hot(shape[1], tf.shape(self.lengths)[0],
                                                          dtype=tf.int64))]
            with tf.control_dependencies(updates):
                return {name: tf.identity(value) for name, value in features.items()}, label
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return dataset.map(count).with_options(options)

    def snapshot(self):
        return int(self.tokens.numpy()), int(self.examples.numpy()), self.lengths.numpy().copy()


def priming_batches(rows: Dict[str, List[List[int]]], labels: np.ndarray,
                    max_seq_length: int) -> List[tuple]:
    """One real batch per length bucket that holds any example, padded to the bucket bound as
    make_dataset pads it: a warm-up step on every shape ours can produce, even for buckets too
    small to fill a batch within the warm-up steps."""
    bounds = [bound - 1 for bound in input_pipeline.bucket_boundaries(max_seq_length)]
    lengths = np.array([len(ids) for ids in rows[INPUT_IDS]])
    bucket_of = np.searchsorted(bounds, lengths, side="left")
    batches = []
    for bucket, bound in enumerate(bounds):
        members = np.flatnonzero(bucket_of == bucket)
        if len(members):
            chosen = np.resize(members, BATCH_SIZE)
            batches.append(({name: np.array([values[i] + [0] * (bound - len(values[i]))
                                             for i in chosen], np.int32)
                             for name, values in rows.items()}, labels[chosen]))
    return batches


# ------------------------------------------------------------------------------------ models


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


# ------------------------------------------------------------------------------- measurement


def run_steps(train_function, iterator, steps: int) -> float:
    started = time.perf_counter()
    logs = None
    for _ in range(steps):
        logs = train_function(iterator)
    float(logs["loss"])  # the step's results are in: nothing left running
    return time.perf_counter() - started


def describe_error(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"


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
    counter: Optional["TokenCounter"] = None  # None: padded to max_seq_length
    window_steps: int = 0  # 0: --window-steps
    setup_seconds: float = 0.0  # build + tracing (XLA: compiling) + first steps
    seconds: List[float] = dataclasses.field(default_factory=list)
    error: str = ""
    accuracies: Dict[int, float] = dataclasses.field(default_factory=dict)  # seed -> accuracy
    note: str = ""


def keras_variant(name: str, settings: str, input_description: str,
                  build: Callable[[int, int], keras.Model],
                  train_data: Callable[[int], tf.data.Dataset],
                  seed: int,
                  eval_data: Callable[[], tf.data.Dataset],
                  priming: Optional[List[tuple]] = None,
                  counter: Optional["TokenCounter"] = None) -> Variant:
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


def measure_throughput(variants: List[Variant], args) -> Dict[str, Dict]:
    """Build and trace every variant, warm-up steps, then the interleaved timed windows.

    Warm-up steps run only once every variant is traced: the first steps after another model's
    tracing are slow, and must not land in a timed window. Returns token statistics."""
    live = []
    # The learning-rate schedule's length: every step a variant takes here (priming: at most
    # one per bucket; the others: one tracing step).
    schedule_steps = (len(input_pipeline.bucket_boundaries(args.max_seq_length)) + 1
                      + args.warmup_steps + args.windows * args.window_steps)
    for variant in variants:
        variant.window_steps = variant.window_steps or args.window_steps
        try:
            live.append((variant, variant.start(schedule_steps)))
        except Exception as error:  # noqa: BLE001 - reported as the variant's row
            variant.error = describe_error(error)
            print(f"{variant.name}: {variant.error}", flush=True)
            variant.stop()
    gc.collect()
    for variant, run in live:
        warmup = min(args.warmup_steps, variant.window_steps)
        if warmup:
            print(f"{variant.name}: {warmup} warm-up steps in {run(warmup):.1f} s", flush=True)
    before = {variant.name: variant.counter.snapshot() for variant, _ in live
              if variant.counter is not None}
    for window in range(args.windows):
        for variant, run in live:
            seconds = run(variant.window_steps)
            variant.seconds.append(seconds)
            print(f"window {window + 1}/{args.windows} {variant.name}: {seconds:.2f} s, "
                  f"{variant.window_steps * BATCH_SIZE / seconds:.1f} examples/s", flush=True)
    tokens = {}
    for variant, _ in live:
        if variant.counter is not None:
            t0, e0, l0 = before[variant.name]
            t1, e1, l1 = variant.counter.snapshot()
            tokens[variant.name] = dict(tokens=t1 - t0, examples=e1 - e0, lengths=l1 - l0,
                                        warmup_lengths=l0)
        else:
            examples = args.windows * variant.window_steps * BATCH_SIZE
            tokens[variant.name] = dict(tokens=examples * args.max_seq_length,
                                        examples=examples)
        variant.stop()
    del live
    gc.collect()
    return tokens


def train_for_accuracy(variants: List[Variant], steps: int, seeds: Sequence[int]) -> None:
    """For each seed, each variant from the checkpoint again: `steps` steps of model.fit, then
    test accuracy. Seed by seed, so an interrupted run still has complete pairs."""
    for seed in seeds:
        for variant in variants:
            if variant.error or variant.train_for_accuracy is None:
                continue
            started = time.monotonic()
            try:
                variant.accuracies[seed] = variant.train_for_accuracy(steps, seed)
            except Exception as error:  # noqa: BLE001 - reported as the variant's row
                print(f"{variant.name}, seed {seed}: accuracy run failed: "
                      f"{describe_error(error)}", flush=True)
                continue
            print(f"{variant.name}, seed {seed}: accuracy {variant.accuracies[seed]:.4f} after "
                  f"{steps} steps ({time.monotonic() - started:.0f} s)", flush=True)


def paired_difference(variant: Variant, baseline: Variant) -> Optional[Dict[str, float]]:
    """Mean of variant - baseline over the seeds both ran, with a 95% t confidence interval
    (the seed changes both runs alike: initial head weights, dropout and shuffle order)."""
    from scipy import stats
    seeds = sorted(set(variant.accuracies) & set(baseline.accuracies))
    if not seeds:
        return None
    differences = np.array([variant.accuracies[seed] - baseline.accuracies[seed]
                            for seed in seeds])
    mean = float(differences.mean())
    half = (float(stats.t.ppf(0.975, len(seeds) - 1) * differences.std(ddof=1)
                  / np.sqrt(len(seeds))) if len(seeds) > 1 else float("nan"))
    return dict(mean=mean, low=mean - half, high=mean + half, seeds=len(seeds),
                not_worse=int(np.sum(differences >= 0)))


def verdict(difference: Dict[str, float]) -> str:
    """better / equal / worse than the baseline, from the paired difference's 95% CI."""
    low, high = difference["low"], difference["high"]
    if np.isnan(low):
        return "one seed: no interval"
    if low > 0:
        return "better"
    if -EQUIVALENCE_MARGIN <= low and high <= EQUIVALENCE_MARGIN:
        return (f"lower, by less than {100 * EQUIVALENCE_MARGIN:g} point" if high < 0 else
                f"equal (CI within ±{100 * EQUIVALENCE_MARGIN:g} point)")
    if high < 0:
        return "worse"
    return "inconclusive: CI wider than the margin"


def accuracy_report(variants: List[Variant], steps: int, seeds: Sequence[int]) -> str:
    """Per-seed accuracies, their mean and standard deviation, and the paired difference from
    the padded recipe, in points."""
    ran = [variant for variant in variants if variant.train_for_accuracy and not variant.error]
    baseline = next(variant for variant in ran if variant.name == PADDED)
    rows = ["| variant | " + " | ".join(f"seed {seed}" for seed in seeds)
            + " | mean ± sd | − padded recipe, points: mean [95% CI] | seeds ≥ padded "
            "| verdict |",
            "|---|" + "---:|" * (len(seeds) + 3) + "---|"]
    for variant in ran:
        values = [variant.accuracies[seed] for seed in seeds if seed in variant.accuracies]
        cells = [f"{variant.accuracies[seed]:.4f}" if seed in variant.accuracies else "failed"
                 for seed in seeds]
        spread = (f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}" if len(values) > 1
                  else f"{values[0]:.4f}" if values else "")
        difference = "" if variant is baseline else paired_difference(variant, baseline)
        versus = (f"{100 * difference['mean']:+.2f} [{100 * difference['low']:+.2f}, "
                  f"{100 * difference['high']:+.2f}]" if difference else "")
        count = f"{difference['not_worse']}/{difference['seeds']}" if difference else ""
        rows.append(f"| {variant.name} | " + " | ".join(cells)
                    + f" | {spread} | {versus} | {count} | "
                    + (verdict(difference) if difference else "baseline") + " |")
    return (f"Accuracy on SST-2 test.tsv (GLUE dev, 872 rows) after {steps} steps of batch "
            f"{BATCH_SIZE}, per seed:\n\n" + "\n".join(rows))


# ------------------------------------------------------------------------------------ report


def examples_per_second(variant: Variant) -> List[float]:
    return [variant.window_steps * BATCH_SIZE / seconds for seconds in variant.seconds]


def report(variants: List[Variant], tokens: Dict[str, Dict], mean_real_length: float,
           args) -> str:
    baseline = next(variant for variant in variants if variant.name == PADDED)
    base_rates = examples_per_second(baseline)
    rows = ["| variant | settings | input | set-up s | padded tokens/example "
            "| examples/s (median) | min–max | × padded recipe (median, min–max per round) |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    for variant in variants:
        settings = variant.settings + (f" ({variant.note})" if variant.note else "")
        if variant.error:
            rows.append(f"| {variant.name} | {settings} | {variant.input} | | | did not run: "
                        f"{variant.error.replace('|', '/')} | | |")
            continue
        rates = examples_per_second(variant)
        count = tokens[variant.name]
        padded = count["tokens"] / max(count["examples"], 1)
        if variant is baseline:
            versus = "1.00"
        else:
            ratios = [rate / base for rate, base in zip(rates, base_rates)]
            versus = (f"**{statistics.median(ratios):.2f}** "
                      f"({min(ratios):.2f}–{max(ratios):.2f})")
        rows.append(f"| {variant.name} | {settings} | {variant.input} | "
                    f"{variant.setup_seconds:.0f} | {padded:.1f} | "
                    f"{statistics.median(rates):.1f} | {min(rates):.1f}–{max(rates):.1f} | "
                    f"{versus} |")
    notes = [f"Real tokens per example (with [CLS]/[SEP]): {mean_real_length:.1f} on average."]
    ours = next(variant for variant in variants if variant.name == OURS)
    if not ours.error:
        count = tokens[OURS]
        padded = count["tokens"] / max(count["examples"], 1)
        batches = {length: int(n) for length, n in enumerate(count["lengths"]) if n}
        total = sum(batches.values()) or 1
        shares = ", ".join(f"{length}: {n / total:.0%}" for length, n in sorted(batches.items()))
        unwarmed = sorted(length for length in batches if not count["warmup_lengths"][length])
        notes.append(
            f"In the timed windows ours trained on {count['tokens']:,} token positions for "
            f"{count['examples']:,} examples ({padded:.1f} per example, batches by padded "
            f"length: {shares}); the padded recipe on {tokens[PADDED]['tokens']:,} "
            f"({args.max_seq_length} per example, {args.max_seq_length / padded:.1f}× as many)."
            + (f" Lengths first seen in a timed window: {unwarmed}." if unwarmed else ""))
    return "\n".join(rows) + "\n\n" + " ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4096,
                        help="first N rows of train.tsv (default 4096)")
    parser.add_argument("--data", default=str(SST2_DIR))
    parser.add_argument("--checkpoint", default="", help="default: the packaged MiniLM")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-steps", type=int, default=20)
    parser.add_argument("--torch-window-steps", type=int, default=5,
                        help="steps per timed window of the PyTorch loop (default 5)")
    parser.add_argument("--accuracy-steps", type=int, default=300,
                        help="train ours, ours with bf16 + XLA and the padded recipe afresh "
                             "for S steps each and report their accuracy on test.tsv "
                             "(default 300; 0: skip)")
    parser.add_argument("--accuracy-seeds", type=int, default=6,
                        help="train each of those variants with K seeds: --seed, --seed + 1, "
                             "... (default 6)")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="only the accuracy comparison (writes only its section)")
    parser.add_argument("--no-hf", action="store_true",
                        help="skip the TFBertForSequenceClassification row")
    parser.add_argument("--no-fast", action="store_true",
                        help=f"skip the two {FAST} rows")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch row")
    parser.add_argument("--torch-python", default=str(TORCH_PYTHON),
                        help="the torch virtualenv's python (default bench/.torch-venv)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--no-write", action="store_true",
                        help="print the tables only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    if min(args.examples, args.windows, args.window_steps, args.torch_window_steps,
           args.accuracy_seeds) < 1 \
            or min(args.warmup_steps, args.accuracy_steps) < 0:
        parser.error("--examples, --windows, the window steps and --accuracy-seeds must be "
                     "positive, "
                     "--warmup-steps and --accuracy-steps not negative")

    started = time.monotonic()
    checkpoint = resolve_checkpoint(args.checkpoint)
    data = pathlib.Path(args.data)
    texts, labels = read_sample(str(data / "train.tsv"), args.examples)
    test_texts, test_labels = read_sample(str(data / "test.tsv"), None)
    if len(labels) < BATCH_SIZE:
        parser.error(f"--examples must be at least the batch size ({BATCH_SIZE})")

    work = tempfile.TemporaryDirectory(prefix="training_throughput_")
    rows = tokenize_ours(texts, checkpoint, args.max_seq_length)
    train_file = write_tfrecord(os.path.join(work.name, "train.tfrecord.gz"), rows, labels)
    test_file = write_tfrecord(os.path.join(work.name, "test.tfrecord.gz"),
                               tokenize_ours(test_texts, checkpoint, args.max_seq_length),
                               test_labels)
    padded = tokenize_padded(texts, checkpoint, args.max_seq_length)
    test_padded = tokenize_padded(test_texts, checkpoint, args.max_seq_length)
    real_lengths = np.array([len(ids) for ids in rows[INPUT_IDS]])
    mismatches = int(np.sum(padded["attention_mask"].sum(axis=1) != real_lengths))
    print(f"{len(labels)} training texts, {len(test_labels)} test texts; "
          f"{mismatches} length mismatches between the two tokenizers", flush=True)
    priming = priming_batches(rows, labels, args.max_seq_length)

    def ours(name: str, precision: str, xla: bool) -> Variant:
        counter = TokenCounter(args.max_seq_length)
        return keras_variant(
            name, f"{precision}, {'XLA' if xla else 'no XLA'}",
            "in-graph tokenizer → TFRecord → `make_dataset` (length buckets)",
            lambda steps, seed: build_ours_or_padded(checkpoint, steps, seed, precision, xla),
            lambda seed: counter.wrap(input_pipeline.make_dataset(
                train_file, FEATURE_SPEC, BATCH_SIZE, args.max_seq_length, training=True,
                seed=seed)),
            args.seed,
            lambda: input_pipeline.make_dataset(test_file, FEATURE_SPEC, BATCH_SIZE,
                                                args.max_seq_length, training=False),
            priming=priming, counter=counter)

    def padded_recipe(name: str, precision: str, xla: bool) -> Variant:
        return keras_variant(
            name, f"{precision}, {'XLA' if xla else 'no XLA'}",
            "`BertTokenizerFast` max_length → `from_tensor_slices`",
            lambda steps, seed: build_ours_or_padded(checkpoint, steps, seed, precision, xla),
            lambda seed: padded_dataset(classifier_inputs(padded), labels, seed, True),
            args.seed,
            lambda: padded_dataset(classifier_inputs(test_padded), test_labels, args.seed,
                                   False))

    variants = [ours(OURS, "float32", False)]
    if not args.no_fast:
        variants.append(ours(OURS_FAST, "mixed_bfloat16", True))
    variants.append(padded_recipe(PADDED, "float32", False))
    if not args.no_fast:
        fast_padded = padded_recipe(PADDED_FAST, "mixed_bfloat16", True)
        fast_padded.train_for_accuracy = None  # throughput only: same model as the row above
        variants.append(fast_padded)
    if not args.no_hf and not args.skip_throughput:
        hf = keras_variant(HF, "float32, no XLA", "same as padded recipe",
                           lambda steps, seed: build_hf(checkpoint, steps, seed),
                           lambda seed: padded_dataset(padded, labels, seed, True),
                           args.seed,
                           lambda: padded_dataset(test_padded, test_labels, args.seed, False))
        hf.train_for_accuracy = None  # its own head (pooler + dense): not the same model
        variants.append(hf)
    if not args.no_torch and not args.skip_throughput:
        variants.append(torch_variant(pathlib.Path(args.torch_python), checkpoint,
                                      data / "train.tsv", args.examples, args.max_seq_length,
                                      args.seed, args.torch_window_steps))
    setup = time.monotonic() - started

    table = ""
    if not args.skip_throughput:
        tokens = measure_throughput(variants, args)
        baseline = next(variant for variant in variants if variant.name == PADDED)
        if baseline.error:
            raise SystemExit(f"the padded-recipe baseline did not run: {baseline.error}")
        table = report(variants, tokens, float(real_lengths.mean()), args)
        print("\n" + table + "\n", flush=True)
    timed = time.monotonic() - started - setup
    seeds = [args.seed + offset for offset in range(args.accuracy_seeds)]
    accuracy_table = ""
    if args.accuracy_steps:
        train_for_accuracy(variants, args.accuracy_steps, seeds)
        accuracy_table = accuracy_report(variants, args.accuracy_steps, seeds)
        print("\n" + accuracy_table + "\n")
    accuracy_seconds = time.monotonic() - started - setup - timed
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"wall time: set-up {setup:.0f} s, throughput {timed:.0f} s, accuracy "
          f"{accuracy_seconds:.0f} s; load average {load}", flush=True)
    work.cleanup()
    if args.no_write:
        return
    if table:
        learning_rate = f"{DEFAULTS.learning_rate:g}".replace("e-0", "e-")  # 5e-5, not 5e-05
        torch_text = (
            f" **PyTorch** is the plain loop from transformers' docs in a separate process "
            f"(bench/torch_training.py in the torch virtualenv, `OMP_WAIT_POLICY=PASSIVE`): "
            f"`BertForSequenceClassification` (its pooler + dense head) on the same checkpoint, "
            f"the same rows padded to {args.max_seq_length}, a shuffled `DataLoader` of "
            f"{BATCH_SIZE}, `torch.optim.AdamW` (lr {learning_rate}, weight decay "
            f"{DEFAULTS.weight_decay:g}) with the same linear warm-up/decay; this process drives "
            f"it window by window over a pipe (only one of the two computes at a time), "
            f"{args.torch_window_steps} steps per window, timed inside the worker."
            if not args.no_torch else "")
        write_section("Training throughput", (
            f"Training examples/s of the BERT classifier on CPU: checkpoint "
            f"{f'`{args.checkpoint}`' if args.checkpoint else PACKAGED_CHECKPOINT_NAME}, the first "
            f"{len(labels):,} rows of SST-2 train.tsv, global batch {BATCH_SIZE}, max_seq_length "
            f"{args.max_seq_length}; optimizer `transformers.create_optimizer` (AdamW, lr "
            f"{learning_rate}, {DEFAULTS.warmup_fraction:.0%} linear warm-up, weight decay "
            f"{DEFAULTS.weight_decay:g}), loss sparse categorical cross-entropy on logits. "
            f"**ours** is the Trainer's input path: texts tokenized by the in-graph "
            f"`BertTokenizerGraph` into a GZIP TFRecord of unpadded ids, read by "
            f"`trainer.input_pipeline.make_dataset` "
            f"(shuffle, length buckets 8 tokens wide up to 64, padding to the bucket bound), into "
            f"`trainer.model.build_classifier`/`compile_classifier`; at the Trainer's CPU defaults "
            f"(float32, no XLA) and with `bertpipe run --mixed-precision mixed_bfloat16 --xla` "
            f"(bfloat16 compute, float32 weights and logits; one XLA compilation per bucket shape, "
            f"done before timing). **padded recipe** is the transformers-docs recipe: "
            f"`BertTokenizerFast(padding='max_length', max_length={args.max_seq_length}, "
            f"truncation=True)`, `from_tensor_slices(...).shuffle(N).batch({BATCH_SIZE}, "
            f"drop_remainder=True).repeat()` (repeated so that one iterator lasts all windows), "
            f"into the same classifier, also with the same bf16 + XLA settings, and into "
            f"`TFBertForSequenceClassification`." + torch_text + f" Each variant: built and "
            f"traced (ours with one step per length bucket, so every shape is seen before timing; "
            f"the others with one step), then {args.warmup_steps} warm-up steps once all are "
            f"traced, then {args.windows} timed windows of {args.window_steps} steps, interleaved "
            f"across variants window by window; a Keras step is one call of the model's train "
            f"function (what `model.fit` runs per step) on one persistent iterator per variant. "
            f"set-up s = building the model, tracing (with XLA: compiling every bucket shape) and "
            f"those first steps, a one-time cost of each training run that XLA makes larger. "
            f"examples/s = steps × {BATCH_SIZE} / window seconds; median and min–max over "
            f"windows; × padded recipe = the variant's rate over the padded recipe's in the same "
            f"round (median, min–max over rounds). The machine is shared with other engineers' "
            f"jobs (load average {load} at the end of the run), so absolute rates vary from run "
            f"to run; the interleaved ratios are the figures to compare. Accuracy after the same "
            f"number of steps: section \"{ACCURACY_SECTION}\". Wall time: set-up {setup:.0f} "
            f"s, throughput {timed:.0f} s.\n\n" + table))
    if accuracy_table:
        write_section(ACCURACY_SECTION, (
            f"Does training on length buckets cost accuracy? ours (float32 and "
            f"mixed_bfloat16 + XLA) and the padded recipe of section \"Training throughput\", each "
            f"trained afresh from the checkpoint for {args.accuracy_steps} steps of "
            f"`model.fit` (batch {BATCH_SIZE}, the learning-rate schedule sized to those "
            f"steps) on the same {len(labels):,} rows, then evaluated on all "
            f"{len(test_labels)} rows of SST-2 test.tsv in its own input format. The three "
            f"share the classifier and optimizer; only the input differs (length-bucketed "
            f"batches padded to the bucket bound vs random batches padded to "
            f"{args.max_seq_length}). A seed sets the initial head weights, dropout and the "
            f"shuffle order; every variant runs with each of {len(seeds)} seeds, so the "
            f"difference from the padded recipe is paired by seed (95% confidence interval "
            f"from Student's t over the seeds). verdict: better when that interval lies above "
            f"0, equal when it lies within ±{100 * EQUIVALENCE_MARGIN:g} point (about "
            f"{EQUIVALENCE_MARGIN * len(test_labels):.0f} of the {len(test_labels)} test "
            f"sentences; \"lower, by less than\" when within it but below 0), worse when it "
            f"lies below 0 and reaches past the margin, inconclusive when it straddles 0 and "
            f"reaches past the margin. Wall time {accuracy_seconds:.0f} s.\n\n"
            + accuracy_table))


if __name__ == "__main__":
    main()
