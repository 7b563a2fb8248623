"""In-process serving latency and throughput of the exported SavedModel vs transformers' Python
pipeline on the same checkpoint, same sentences, one process, interleaved.

* ours: the exported SavedModel's `serving_default` (raw text in, tokenization inside the
  graph, probabilities and label out), loaded with tf.saved_model.load, as serving/predict.py
  and TF Serving use it;
* transformers pipeline: `pipeline("text-classification", framework="tf")` around
  TFBertForSequenceClassification and BertTokenizerFast (Python tokenization);
* transformers, batched call: the same model called directly on `tokenizer(texts,
  padding=True)` (the pipeline does not batch TensorFlow models: it runs one text at a time
  whatever `batch_size` says, so this row is the fair batched baseline).

The transformers model is the packaged checkpoint's encoder and pooler with a new, random
classification head: the fine-tuned SavedModel's head sits on the [CLS] state without the
pooler, which TFBertForSequenceClassification cannot load. The cost per call is the same up
to the pooler's one 384x384 layer; the predictions differ and are not compared.

Single sentence: N calls per variant, one sentence each (SST-2 test.tsv in order), run in
interleaved blocks (B calls of A, B calls of B, ...); p50/p99 per call. Batched: batches of 32
consecutive sentences, K timed windows of W batches interleaved; sentences/s, median of windows.

  python bench/serving_latency.py                      # the newest model `make demo` pushed
  python bench/serving_latency.py --model /tmp/bertpipe_accuracy_x/serving/text_classifier
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import time
from typing import Callable, Dict, List, Sequence

from bench_env import REPO, SST2_DIR  # first: sets up the environment TF needs

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (registers the transform graph's ops)

from benchmarks_md import write_section  # noqa: E402
from components.text_example_gen import read_delimited_file  # noqa: E402
from preprocessing.checkpoint import (PACKAGED_CHECKPOINT_NAME,  # noqa: E402
                                      resolve_checkpoint)
from serving.contract import PROBABILITIES, SERVING_SIGNATURE, TEXT_INPUT  # noqa: E402
from serving.predict import resolve_saved_model_dir  # noqa: E402

BATCH_SIZE = 32
OURS = "ours: exported SavedModel, `serving_default`"
PIPELINE = "transformers `pipeline(\"text-classification\")`, TF"
HF_BATCH = "transformers: tokenizer(padding=True) + TFBertForSequenceClassification call"


def ours_predictor(model_dir: str) -> Callable[[Sequence[str]], np.ndarray]:
    signature = tf.saved_model.load(model_dir).signatures[SERVING_SIGNATURE]
    return lambda texts: signature(**{TEXT_INPUT: tf.constant(list(texts))})[PROBABILITIES].numpy()


def transformers_predictors(checkpoint: str) -> Dict[str, Callable[[Sequence[str]], object]]:
    from transformers import BertTokenizerFast, TFBertForSequenceClassification, pipeline
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    model = TFBertForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, framework="tf")

    def batched(texts: Sequence[str]) -> np.ndarray:
        encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=128,
                            return_tensors="tf")
        return tf.nn.softmax(model(**encoded, training=False).logits, axis=-1).numpy()

    return {PIPELINE: lambda texts: classify(list(texts), batch_size=len(texts)),
            HF_BATCH: batched}


def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "runs" / "serving" / "text_classifier"),
                        help="a SavedModel or <serving_root>/<model_name> (newest version); "
                             "default: what `make demo` pushed")
    parser.add_argument("--data", default=str(SST2_DIR))
    parser.add_argument("--checkpoint", default="", help="default: the packaged MiniLM")
    parser.add_argument("--calls", type=int, default=400, help="single-sentence calls per variant")
    parser.add_argument("--block", type=int, default=20, help="calls per interleaved block")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-batches", type=int, default=4)
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    if min(args.calls, args.block, args.windows, args.window_batches) < 1:
        parser.error("--calls, --block, --windows and --window-batches must be positive")

    model_dir = resolve_saved_model_dir(args.model)
    texts, _ = read_delimited_file(str(pathlib.Path(args.data) / "test.tsv"), "sentence",
                                   "label")
    predictors = {OURS: ours_predictor(model_dir),
                  **transformers_predictors(resolve_checkpoint(args.checkpoint))}
    for predict in predictors.values():  # first calls build/trace: not timed
        for text in texts[:5]:
            predict([text])
        predict(texts[:BATCH_SIZE])

    latencies: Dict[str, List[float]] = {name: [] for name in predictors}
    for start in range(0, args.calls, args.block):
        for name, predict in predictors.items():
            for index in range(start, min(start + args.block, args.calls)):
                text = texts[index % len(texts)]
                began = time.perf_counter()
                predict([text])
                latencies[name].append(time.perf_counter() - began)

    batches = [texts[i:i + BATCH_SIZE] for i in range(0, len(texts) - BATCH_SIZE + 1, BATCH_SIZE)]
    rates: Dict[str, List[float]] = {name: [] for name in predictors}
    next_batch = 0
    for _ in range(args.windows):
        window = [batches[(next_batch + i) % len(batches)] for i in range(args.window_batches)]
        next_batch += args.window_batches
        for name, predict in predictors.items():
            began = time.perf_counter()
            for batch in window:
                predict(batch)
            rates[name].append(len(window) * BATCH_SIZE / (time.perf_counter() - began))

    ours_p50 = percentile(latencies[OURS], 50)
    ours_rate = statistics.median(rates[OURS])
    rows = ["| variant | single sentence p50 ms | p99 ms | p50 / ours' p50 | batch 32: "
            "sentences/s (median) | min–max | ours' rate / this rate |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name in predictors:
        p50, p99 = percentile(latencies[name], 50), percentile(latencies[name], 99)
        rate = statistics.median(rates[name])
        rows.append(f"| {name} | {1000 * p50:.1f} | {1000 * p99:.1f} | {p50 / ours_p50:.2f} | "
                    f"{rate:.0f} | {min(rates[name]):.0f}–{max(rates[name]):.0f} | "
                    f"{ours_rate / rate:.2f} |")
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    table = "\n".join(rows)
    print("\n" + table + f"\n\nload average {load}\n", flush=True)
    if args.no_write:
        return
    write_section("Serving: in-process latency", (
        f"Prediction from raw text in this process (no server), SST-2 test.tsv sentences. "
        f"**ours**: the exported SavedModel ({model_dir.replace(str(REPO) + os.sep, '')}, "
        f"MiniLM fine-tuned by the pipeline), `serving_default` called with a string batch; "
        f"tokenization happens inside the graph. The transformers rows run "
        f"`TFBertForSequenceClassification` from the {PACKAGED_CHECKPOINT_NAME} with a new "
        f"random classification head (our fine-tuned head reads [CLS] without the pooler, "
        f"which that class cannot load; per call it costs the same up to the pooler's one "
        f"384×384 layer), tokenization by `BertTokenizerFast` in Python. transformers' "
        f"`pipeline` runs TensorFlow models one text at a time even when given a list and "
        f"`batch_size` (batching is PyTorch-only in transformers 4.49), so its batch row is 32 "
        f"single calls; the direct `tokenizer(padding=True)` + model call is the batched "
        f"baseline. Single sentence: {args.calls} calls per variant, interleaved in blocks of "
        f"{args.block}, after 5 untimed warm-up calls; p50/p99 of per-call wall time. "
        f"Batched: batches of {BATCH_SIZE} consecutive sentences, {args.windows} windows of "
        f"{args.window_batches} batches interleaved across variants; sentences/s median and "
        f"min–max over windows. The machine is shared with other jobs (load average {load} at "
        f"the end), so compare within the table.\n\n" + table))


if __name__ == "__main__":
    main()
