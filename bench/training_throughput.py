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
# The parts, one job each (bench/ is on sys.path when a script runs as `python bench/x.py`):
#   throughput_data      the SST-2 sample in each variant's input format, token counting
#   throughput_variants  the ways of training compared (`Variant`): ours, padded, HF, PyTorch
#   throughput_timing    running them: warm-up, interleaved timed windows, accuracy runs
#   throughput_stats     examples/s, the paired accuracy difference, its CI and verdict
#   throughput_tables    the markdown: both tables and both docs/BENCHMARKS.md sections
# bench_env must be imported first, before them and anything else that imports TensorFlow
# or the project's packages: it sets up the environment TF needs and puts the repository on
# sys.path (each of those modules imports it first as well).
from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

from bench_env import SST2_DIR  # first: sets up the environment TF needs

from benchmarks_md import write_section  # noqa: E402
from preprocessing.checkpoint import resolve_checkpoint  # noqa: E402
from throughput_data import BATCH_SIZE, prepare_data, read_sample  # noqa: E402
from throughput_tables import (ACCURACY_SECTION, THROUGHPUT_SECTION,  # noqa: E402
                               accuracy_report, accuracy_section, report, throughput_section)
from throughput_timing import measure_throughput, train_for_accuracy  # noqa: E402
from throughput_variants import (DEFAULTS, FAST, PADDED, TORCH_PYTHON,  # noqa: E402
                                 make_variants)


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
    data_dir = pathlib.Path(args.data)
    texts, labels = read_sample(str(data_dir / "train.tsv"), args.examples)
    test_texts, test_labels = read_sample(str(data_dir / "test.tsv"), None)
    if len(labels) < BATCH_SIZE:
        parser.error(f"--examples must be at least the batch size ({BATCH_SIZE})")

    work = tempfile.TemporaryDirectory(prefix="training_throughput_")
    data = prepare_data(texts, labels, test_texts, test_labels, checkpoint, args.max_seq_length,
                        work.name)
    variants = make_variants(args, checkpoint, data, data_dir / "train.tsv")
    setup = time.monotonic() - started

    table = ""
    if not args.skip_throughput:
        tokens = measure_throughput(variants, args)
        baseline = next(variant for variant in variants if variant.name == PADDED)
        if baseline.error:
            raise SystemExit(f"the padded-recipe baseline did not run: {baseline.error}")
        table = report(variants, tokens, float(data.real_lengths.mean()), args)
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
        write_section(THROUGHPUT_SECTION,
                      throughput_section(args, len(labels), load, setup, timed, table))
    if accuracy_table:
        write_section(ACCURACY_SECTION,
                      accuracy_section(args, len(labels), len(test_labels), seeds,
                                       accuracy_seconds, accuracy_table))


if __name__ == "__main__":
    main()
