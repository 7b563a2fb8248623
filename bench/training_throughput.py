"""Training throughput of the Trainer's bucketed input pipeline vs the padded recipe, one process.

Same checkpoint (the packaged MiniLM unless --checkpoint), same SST-2 sample (the first N rows
of ../shared/data/sst2/train.tsv), global batch 32, the same optimizer (transformers'
create_optimizer: AdamW, lr 5e-5, 10% linear warm-up, weight decay 0.01, as the Trainer) and loss:

* ours: texts tokenized by the project's in-graph tokenizer (BertTokenizerGraph, unpadded ids)
  written as tf.Examples to a GZIP TFRecord, read by trainer.input_pipeline.make_dataset
  (shuffle, length buckets, padding to the bucket bound), into trainer.model.build_classifier
  + compile_classifier (no XLA);
* padded recipe: BertTokenizerFast(padding='max_length', max_length=128, truncation=True),
  tf.data.Dataset.from_tensor_slices(...).shuffle(N).batch(32), into the same classifier; and the
  same input into transformers' TFBertForSequenceClassification (unless --no-hf).

Every variant is built and traced first (ours with one step on each length bucket's shape, so
no new shape appears while timing), then takes its warm-up steps, then K timed windows of W
steps run interleaved window by window (A, B, C, A, B, C, ...) so machine noise hits every
variant alike. A step is one call of the model's Keras train function (what model.fit runs
per step) on one persistent iterator per variant, so no window pays for a new iterator
(re-reading and re-shuffling the data). Writes the table to docs/BENCHMARKS.md unless
--no-write.

  python bench/training_throughput.py                          # 4096 rows, 5 windows x 20 steps
  python bench/training_throughput.py --precision mixed_bfloat16 --accuracy-steps 300
  python bench/training_throughput.py --examples 256 --windows 2 --window-steps 3 --no-write
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from benchmarks_md import write_section  # noqa: E402
from components.text_example_gen import read_delimited_file  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402
from preprocessing.checkpoint import (PACKAGED_CHECKPOINT_NAME,  # noqa: E402
                                      read_tokenizer_settings, resolve_checkpoint)
from preprocessing.preprocessing import (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS,  # noqa: E402
                                         LABEL)
from preprocessing.tokenization import BertTokenizerGraph  # noqa: E402
from trainer import input_pipeline, model  # noqa: E402

BATCH_SIZE = 32
NUM_LABELS = 2
DEFAULTS = PipelineConfig(train_data="-")  # only its training defaults are used
OURS, PADDED, HF = "ours", "padded recipe", "padded recipe, TFBertForSequenceClassification"
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


def build_ours_or_padded(checkpoint: str, train_steps: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)  # the same classifier-head initialisation for both
    classifier = model.build_classifier(checkpoint, NUM_LABELS, DEFAULTS.dropout)
    model.compile_classifier(classifier, DEFAULTS.learning_rate, train_steps,
                             warmup_steps=int(train_steps * DEFAULTS.warmup_fraction),
                             weight_decay=DEFAULTS.weight_decay, jit_compile=False)
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


@dataclasses.dataclass
class Variant:
    name: str
    build: Callable[[int], keras.Model]  # train_steps -> compiled model
    train_data: Callable[[], tf.data.Dataset]
    eval_data: Callable[[], tf.data.Dataset]
    priming: Optional[List[tuple]] = None  # (features, labels) batches, one per shape
    counter: Optional[TokenCounter] = None
    seconds: List[float] = dataclasses.field(default_factory=list)
    error: str = ""
    accuracy: Optional[float] = None


def run_steps(train_function, iterator, steps: int) -> float:
    started = time.perf_counter()
    logs = None
    for _ in range(steps):
        logs = train_function(iterator)
    float(logs["loss"])  # the step's results are in: nothing left running
    return time.perf_counter() - started


def describe_error(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"


def measure_throughput(variants: List[Variant], args) -> Dict[str, Dict]:
    """Build and trace every variant, warm-up steps, then the interleaved timed windows.

    Warm-up steps run only once every variant is traced: the first steps after another model's
    tracing are slow, and must not land in a timed window. Returns token statistics."""
    live = []
    # The learning-rate schedule's length: every step a variant takes here (priming: at most
    # one per bucket; the others: one tracing step).
    total_steps = (len(input_pipeline.bucket_boundaries(args.max_seq_length)) + 1
                   + args.warmup_steps + args.windows * args.window_steps)
    for variant in variants:
        try:
            started = time.monotonic()
            classifier = variant.build(total_steps)
            dataset = variant.train_data()
            iterator = iter(dataset)
            train_function = classifier.make_train_function()
            built = time.monotonic() - started
            if variant.priming:  # same element_spec as the real input: the same trace
                primer = tf.data.Dataset.from_generator(
                    lambda batches=variant.priming: iter(batches),
                    output_signature=dataset.element_spec)
                first = run_steps(train_function, iter(variant.counter.wrap(primer)),
                                  len(variant.priming))
            else:
                first = run_steps(train_function, iterator, 1)
            print(f"{variant.name}: built in {built:.0f} s, traced (first "
                  f"{len(variant.priming or [0])} steps) in {first:.0f} s", flush=True)
            live.append((variant, classifier, iterator, train_function))
        except Exception as error:  # noqa: BLE001 - reported as the variant's row
            variant.error = describe_error(error)
            print(f"{variant.name}: {variant.error}", flush=True)
    gc.collect()
    for variant, _, iterator, train_function in live:
        if args.warmup_steps:
            seconds = run_steps(train_function, iterator, args.warmup_steps)
            print(f"{variant.name}: {args.warmup_steps} warm-up steps in {seconds:.1f} s",
                  flush=True)
    before = {variant.name: variant.counter.snapshot() for variant, *_ in live
              if variant.counter is not None}
    for window in range(args.windows):
        for variant, _, iterator, train_function in live:
            seconds = run_steps(train_function, iterator, args.window_steps)
            variant.seconds.append(seconds)
            print(f"window {window + 1}/{args.windows} {variant.name}: {seconds:.2f} s, "
                  f"{args.window_steps * BATCH_SIZE / seconds:.1f} examples/s", flush=True)
    tokens = {}
    for variant, *_ in live:
        if variant.counter is not None:
            t0, e0, l0 = before[variant.name]
            t1, e1, l1 = variant.counter.snapshot()
            tokens[variant.name] = dict(tokens=t1 - t0, examples=e1 - e0, lengths=l1 - l0,
                                        warmup_lengths=l0)
        else:
            examples = args.windows * args.window_steps * BATCH_SIZE
            tokens[variant.name] = dict(tokens=examples * args.max_seq_length,
                                        examples=examples)
    del live
    gc.collect()
    return tokens


def train_for_accuracy(variants: List[Variant], steps: int) -> None:
    """Each variant from the checkpoint again, `steps` steps of model.fit, then test accuracy."""
    for variant in variants:
        if variant.error:
            continue
        started = time.monotonic()
        keras.backend.clear_session()
        try:
            classifier = variant.build(steps)
            classifier.fit(variant.train_data(), steps_per_epoch=steps, epochs=1, verbose=0)
            variant.accuracy = accuracy(classifier, variant.eval_data())
        except Exception as error:  # noqa: BLE001 - reported as the variant's row
            print(f"{variant.name}: accuracy run failed: {describe_error(error)}", flush=True)
            continue
        print(f"{variant.name}: accuracy {variant.accuracy:.4f} after {steps} steps "
              f"({time.monotonic() - started:.0f} s)", flush=True)
        del classifier
        gc.collect()


# ------------------------------------------------------------------------------------ report


def examples_per_second(variant: Variant, window_steps: int) -> List[float]:
    return [window_steps * BATCH_SIZE / seconds for seconds in variant.seconds]


def report(variants: List[Variant], tokens: Dict[str, Dict], mean_real_length: float,
           args) -> str:
    baseline = next(variant for variant in variants if variant.name == PADDED)
    base_rates = examples_per_second(baseline, args.window_steps)
    rows = ["| variant | input | padded tokens/example | examples/s (median) | min–max "
            "| × padded recipe (median, min–max per round) |",
            "|---|---|---:|---:|---:|---:|"]
    inputs = {OURS: "in-graph tokenizer → TFRecord → `make_dataset` (length buckets)",
              PADDED: "`BertTokenizerFast` max_length → `from_tensor_slices`",
              HF: "same as padded recipe"}
    for variant in variants:
        if variant.error:
            rows.append(f"| {variant.name} | {inputs[variant.name]} | | did not run: "
                        f"{variant.error.replace('|', '/')} | | |")
            continue
        rates = examples_per_second(variant, args.window_steps)
        count = tokens[variant.name]
        padded = count["tokens"] / max(count["examples"], 1)
        if variant is baseline:
            versus = "1.00"
        else:
            ratios = [rate / base for rate, base in zip(rates, base_rates)]
            versus = (f"{statistics.median(ratios):.2f} "
                      f"({min(ratios):.2f}–{max(ratios):.2f})")
        rows.append(f"| {variant.name} | {inputs[variant.name]} | {padded:.1f} | "
                    f"{statistics.median(rates):.1f} | {min(rates):.1f}–{max(rates):.1f} | "
                    f"{versus} |")
    ours = next(variant for variant in variants if variant.name == OURS)
    notes = [f"Real tokens per example (with [CLS]/[SEP]): {mean_real_length:.1f} on average."]
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
    table = "\n".join(rows) + "\n\n" + " ".join(notes)
    if args.accuracy_steps:
        table += (f"\n\n| variant | accuracy on SST-2 test.tsv after {args.accuracy_steps} "
                  "steps |\n|---|---:|\n" + "\n".join(
                      f"| {variant.name} | "
                      + (f"{variant.accuracy:.4f}" if variant.accuracy is not None
                         else "not run") + " |" for variant in variants))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4096,
                        help="first N rows of train.tsv (default 4096)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "sst2"))
    parser.add_argument("--checkpoint", default="", help="default: the packaged MiniLM")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-steps", type=int, default=20)
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    parser.add_argument("--accuracy-steps", type=int, default=0,
                        help="also train each variant afresh for S steps and report its "
                             "accuracy on test.tsv (default 0: skip)")
    parser.add_argument("--no-hf", action="store_true",
                        help="skip the TFBertForSequenceClassification row")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    if min(args.examples, args.windows, args.window_steps) < 1 or args.warmup_steps < 0:
        parser.error("--examples, --windows and --window-steps must be positive")

    started = time.monotonic()
    keras.mixed_precision.set_global_policy(args.precision)
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

    counter = TokenCounter(args.max_seq_length)

    def ours_train() -> tf.data.Dataset:
        return counter.wrap(input_pipeline.make_dataset(
            train_file, FEATURE_SPEC, BATCH_SIZE, args.max_seq_length, training=True,
            seed=args.seed))

    variants = [
        Variant(OURS, lambda steps: build_ours_or_padded(checkpoint, steps, args.seed),
                ours_train,
                lambda: input_pipeline.make_dataset(test_file, FEATURE_SPEC, BATCH_SIZE,
                                                    args.max_seq_length, training=False),
                priming=priming_batches(rows, labels, args.max_seq_length), counter=counter),
        Variant(PADDED, lambda steps: build_ours_or_padded(checkpoint, steps, args.seed),
                lambda: padded_dataset(classifier_inputs(padded), labels, args.seed, True),
                lambda: padded_dataset(classifier_inputs(test_padded), test_labels,
                                       args.seed, False)),
    ]
    if not args.no_hf:
        variants.append(Variant(
            HF, lambda steps: build_hf(checkpoint, steps, args.seed),
            lambda: padded_dataset(padded, labels, args.seed, True),
            lambda: padded_dataset(test_padded, test_labels, args.seed, False)))
    setup = time.monotonic() - started

    tokens = measure_throughput(variants, args)
    timed = time.monotonic() - started - setup
    if variants[1].error:
        raise SystemExit(f"the padded-recipe baseline did not run: {variants[1].error}")
    if args.accuracy_steps:
        train_for_accuracy(variants, args.accuracy_steps)
    table = report(variants, tokens, float(real_lengths.mean()), args)
    print("\n" + table + "\n")
    print(f"wall time: set-up {setup:.0f} s, throughput {timed:.0f} s, accuracy "
          f"{time.monotonic() - started - setup - timed:.0f} s", flush=True)
    work.cleanup()
    if args.no_write:
        return
    learning_rate = f"{DEFAULTS.learning_rate:g}".replace("e-0", "e-")  # 5e-5, not 5e-05
    write_section("Training throughput", (
        f"Training examples/s of the BERT classifier on CPU, all variants in one process: "
        f"checkpoint {f'`{args.checkpoint}`' if args.checkpoint else PACKAGED_CHECKPOINT_NAME}, "
        f"the first "
        f"{len(labels):,} rows of SST-2 train.tsv, global batch {BATCH_SIZE}, max_seq_length "
        f"{args.max_seq_length}, precision {args.precision}, no XLA; optimizer "
        f"`transformers.create_optimizer` (AdamW, lr {learning_rate}, "
        f"{DEFAULTS.warmup_fraction:.0%} linear warm-up, weight decay {DEFAULTS.weight_decay:g}), "
        f"loss sparse categorical cross-entropy on logits. **ours** is the Trainer's input path: "
        f"texts tokenized by the in-graph `BertTokenizerGraph` into a GZIP TFRecord of unpadded "
        f"ids, read by `trainer.input_pipeline.make_dataset` (shuffle, length buckets, padding to "
        f"the bucket bound), into `trainer.model.build_classifier`/`compile_classifier`. "
        f"**padded recipe** is the transformers-docs recipe: `BertTokenizerFast(padding="
        f"'max_length', max_length={args.max_seq_length}, truncation=True)`, "
        f"`from_tensor_slices(...).shuffle(N).batch({BATCH_SIZE}, drop_remainder=True)"
        f".repeat()` (repeated so that one iterator lasts all windows), into the same classifier"
        f"{' and into `TFBertForSequenceClassification`' if not args.no_hf else ''}. Each "
        f"variant: built and traced (ours with one step per length bucket, so every shape "
        f"is seen before timing; the others with one step), then {args.warmup_steps} warm-up "
        f"steps once all are traced, then {args.windows} timed windows of "
        f"{args.window_steps} steps, interleaved across variants window by window; a step is "
        f"one call of the model's Keras train function (what `model.fit` runs per step) on one "
        f"persistent iterator per variant. examples/s = steps × {BATCH_SIZE} / window seconds; "
        f"median and min–max over windows; × padded recipe = the variant's rate over the "
        f"padded recipe's in the same round (median, min–max over rounds)."
        + (f" Accuracy: each variant trained afresh from the checkpoint for "
           f"{args.accuracy_steps} steps with `model.fit` on the same rows, evaluated on all "
           f"{len(test_labels)} rows of SST-2 test.tsv in its own input format."
           if args.accuracy_steps else "")
        + "\n\n" + table))


if __name__ == "__main__":
    main()
