"""In-process serving latency and throughput of the exported SavedModel(s) vs ONNX Runtime and
transformers' Python pipeline on the same sentences, one process (plus the ORT worker),
interleaved.

* ours: each exported SavedModel's `serving_default` (raw text in, tokenization inside the
  graph, probabilities and label out), loaded with tf.saved_model.load, as serving/predict.py
  and TF Serving use it; several --model flags compare export variants (e.g. float32 and
  bfloat16, trainer/export.py), each labelled by its assets.extra/serving_options.json;
* ONNX Runtime (unless --no-onnx): the first model's fine-tuned weights exported to ONNX in the
  ORT virtualenv (bench/onnx_peer.py, `make bench-onnx-venv`), fp32 and dynamic int8, with
  ORT's graph optimizations only and with onnxruntime.transformers' BERT fusions, tokenized by
  BertTokenizerFast; timed in the worker, interleaved with ours block by block;
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
Each row also gives its ratio to ORT fp32 (latency) and ORT int8 (rate), its label agreement
with the first model on all sentences, and the arithmetic limit: FLOP per token of the encoder
(from config.json: 2 x (4h^2 + 2hI) per layer, 21.2 MFLOP for MiniLM-L6) x the sentences' real
token count (no padding), at --peak-fp32-gflops (float32 rows) or --peak-bf16-gflops (bfloat16
and int8 rows): "% of limit" = limit time / measured time.

  python bench/serving_latency.py                      # the newest model `make demo` pushed
  python bench/serving_latency.py --model /tmp/bertpipe_accuracy_x/serving/text_classifier
  python bench/serving_latency.py --no-write --no-transformers --intra-op-threads 1 \
      --model runs/f32/serving/text_classifier --model runs/bf16/serving/text_classifier
"""
from __future__ import annotations

import argparse
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
import tensorflow_text  # noqa: E402,F401  (registers the transform graph's ops)

from benchmarks_md import write_section  # noqa: E402
from components.text_example_gen import read_delimited_file  # noqa: E402
from preprocessing.checkpoint import (PACKAGED_CHECKPOINT_NAME,  # noqa: E402
                                      resolve_checkpoint)
from serving.contract import PROBABILITIES, SERVING_SIGNATURE, TEXT_INPUT  # noqa: E402
from serving.predict import resolve_saved_model_dir  # noqa: E402

BATCH_SIZE = 32
OURS = "ours: exported SavedModel, `serving_default`"
ONNX_WORKER = REPO / "bench" / "onnx_peer.py"
ONNX_PYTHON = REPO / "bench" / ".onnx-venv" / "bin" / "python"
ORT_FP32, ORT_INT8 = "ORT fp32", "ORT int8"
PIPELINE = "transformers `pipeline(\"text-classification\")`, TF"
HF_BATCH = "transformers: tokenizer(padding=True) + TFBertForSequenceClassification call"


def ours_predictor(model_dir: str) -> Callable[[Sequence[str]], np.ndarray]:
    """`serving_default` as a TF2 function (tf.saved_model.load), as bertpipe serve calls it."""
    signature = tf.saved_model.load(model_dir).signatures[SERVING_SIGNATURE]
    return lambda texts: signature(**{TEXT_INPUT: tf.constant(list(texts))})[PROBABILITIES].numpy()


def session_predictor(model_dir: str, intra: int, inter: int
                      ) -> Callable[[Sequence[str]], np.ndarray]:
    """`serving_default` run the way TF Serving runs it: the MetaGraph loaded into a TF1
    Session (SavedModelBundle), with the session's thread settings (TF Serving's
    --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism)."""
    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra,
                                      inter_op_parallelism_threads=inter)
    session = tf.compat.v1.Session(graph=graph, config=config)
    with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], model_dir)
    signature = meta_graph.signature_def[SERVING_SIGNATURE]
    feed, fetch = signature.inputs[TEXT_INPUT].name, signature.outputs[PROBABILITIES].name
    return lambda texts: session.run(fetch, {feed: list(texts)})


def ours_name(model_dir: str) -> str:
    from trainer.export import read_serving_options
    options = read_serving_options(model_dir)
    if options is None:
        return "ours: SavedModel without serving options (before issue 13)"
    return f"ours: {options.precision}{', XLA' if options.xla else ''}"


def precision_of(name: str) -> str:
    return "float32" if ("float32" in name or "fp32" in name or "13)" in name
                         or not name.startswith(("ours", "ORT"))) else "bfloat16/int8"


def flop_per_token(checkpoint: str) -> float:
    """Multiply-adds x 2 of the encoder's dense layers per token (attention scores excluded)."""
    with open(os.path.join(checkpoint, "config.json")) as handle:
        config = json.load(handle)
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    return 2.0 * (4 * hidden * hidden + 2 * hidden * inner) * config["num_hidden_layers"]


def export_peer_weights(model_dir: str, checkpoint: str, target: str) -> None:
    """The exported classifier's weights under PyTorch BertModel's names (+ head.*), as .npz."""
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name
    from trainer import model as classifier_model
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    num_labels = reader.get_tensor(
        "classifier/layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE").shape[0]
    classifier = classifier_model.build_classifier(checkpoint, num_labels)
    classifier_model.warm_start(classifier, model_dir)
    weights = {}
    for weight in classifier.weights:
        value = weight.numpy()
        if weight.name.startswith("classifier/"):
            weights["head.weight" if "kernel" in weight.name else "head.bias"] = value.T \
                if "kernel" in weight.name else value
            continue
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove="bert.", tf_weight_shape=weight.shape)
        weights[name] = value.T if transpose.name != "NO" else value
    np.savez(target, **weights)


class OnnxPeer:
    """bench/onnx_peer.py in the ORT virtualenv, over stdin/stdout (see its docstring)."""

    def __init__(self, python: str, checkpoint: str, weights: str, texts_tsv: str,
                 max_seq_length: int, threads: int, work_dir: str):
        if not os.path.exists(python):
            raise FileNotFoundError(f"no ONNX Runtime virtualenv at {python} "
                                    "(make bench-onnx-venv), or pass --no-onnx")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH="")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            [python, str(ONNX_WORKER), "--checkpoint", checkpoint, "--weights", weights,
             "--texts", texts_tsv, "--max-seq-length", str(max_seq_length),
             "--threads", str(threads), "--work-dir", work_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=env)
        self.ready = self._reply()

    def _reply(self) -> Dict:
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"the ONNX Runtime worker exited ({self._process.wait()}): "
                               + self._stderr.read()[-2000:])
        return json.loads(line)

    def request(self, command: Dict) -> Dict:
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.write(json.dumps({"quit": True}) + "\n")
            self._process.stdin.close()
            self._process.wait(timeout=60)


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
    parser.add_argument("--model", action="append",
                        help="a SavedModel or <serving_root>/<model_name> (newest version); "
                             "repeat to compare export variants (the first is the reference "
                             "for agreement and ORT's weights); default: what `make demo` "
                             "pushed")
    parser.add_argument("--data", default=str(SST2_DIR))
    parser.add_argument("--checkpoint", default="", help="default: the packaged MiniLM")
    parser.add_argument("--calls", type=int, default=400, help="single-sentence calls per variant")
    parser.add_argument("--block", type=int, default=20, help="calls per interleaved block")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-batches", type=int, default=4)
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="TensorFlow's intra-op threads (0: TF's default, the cores)")
    parser.add_argument("--inter-op-threads", type=int, default=0)
    parser.add_argument("--runner", choices=("session", "function", "both"), default="session",
                        help="how ours is called: a TF1 Session as TF Serving runs it "
                             "(default), the TF2 function tf.saved_model.load gives (as "
                             "bertpipe serve calls it), or both")
    parser.add_argument("--no-transformers", action="store_true",
                        help="skip the transformers pipeline rows")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    parser.add_argument("--onnx-python", default=str(ONNX_PYTHON),
                        help="the ORT virtualenv's python (default bench/.onnx-venv)")
    parser.add_argument("--onnx-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-seq-length", type=int, default=0,
                        help="for ORT's tokenizer; default: the model's recorded one, else 128")
    parser.add_argument("--peak-fp32-gflops", type=float, default=200.0)
    parser.add_argument("--peak-bf16-gflops", type=float, default=400.0)
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    if min(args.calls, args.block, args.windows, args.window_batches) < 1:
        parser.error("--calls, --block, --windows and --window-batches must be positive")
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)

    from trainer.export import read_max_seq_length
    model_dirs = [resolve_saved_model_dir(model) for model in
                  (args.model or [str(REPO / "runs" / "serving" / "text_classifier")])]
    texts_tsv = str(pathlib.Path(args.data) / "test.tsv")
    texts, _ = read_delimited_file(texts_tsv, "sentence", "label")
    checkpoint = resolve_checkpoint(args.checkpoint)
    predictors: Dict[str, Callable] = {}
    runners = ("session", "function") if args.runner == "both" else (args.runner,)
    for model_dir in model_dirs:
        for runner in runners:
            name = f"{ours_name(model_dir)} [{runner}]"
            while name in predictors:
                name += "'"
            predictors[name] = (
                session_predictor(model_dir, args.intra_op_threads, args.inter_op_threads)
                if runner == "session" else ours_predictor(model_dir))
    if not args.no_transformers:
        predictors.update(transformers_predictors(checkpoint))
    started = time.monotonic()
    for predict in predictors.values():  # first calls build/trace/compile: not timed
        for text in texts[:5]:
            predict([text])
        predict(texts[:BATCH_SIZE])
    ours = [name for name in predictors if name.startswith("ours")]
    # Every sentence once, in batches and alone: compiles what XLA models need, and the
    # probabilities for the agreement columns.
    probabilities = {name: np.concatenate([predictors[name](texts[i:i + BATCH_SIZE])
                                           for i in range(0, len(texts), BATCH_SIZE)])
                     for name in ours}
    for name in ours:
        for index in range(min(args.calls, len(texts))):
            predictors[name]([texts[index]])
    print(f"warm-up {time.monotonic() - started:.0f} s", flush=True)

    peer: Optional[OnnxPeer] = None
    peer_variants: List[str] = []
    if not args.no_onnx:
        work_dir = tempfile.mkdtemp(prefix="onnx_peer_")
        weights = os.path.join(work_dir, "weights.npz")
        export_peer_weights(model_dirs[0], checkpoint, weights)
        max_seq_length = (args.max_seq_length or read_max_seq_length(model_dirs[0]) or 128)
        peer = OnnxPeer(args.onnx_python, checkpoint, weights, texts_tsv, max_seq_length,
                        args.onnx_threads, work_dir)
        peer_variants = peer.ready["variants"]
        for variant in peer_variants:
            probabilities[f"ORT {variant}"] = np.asarray(
                peer.request({"probabilities": variant, "batch": BATCH_SIZE})["probabilities"])
        print(f"ONNX Runtime {peer.ready['onnxruntime']}, {peer.ready['threads']} threads: "
              f"{', '.join(peer_variants)} {peer.ready['notes']}", flush=True)
    names = list(predictors) + [f"ORT {variant}" for variant in peer_variants]

    latencies: Dict[str, List[float]] = {name: [] for name in names}
    for start in range(0, args.calls, args.block):
        indices = list(range(start, min(start + args.block, args.calls)))
        for name, predict in predictors.items():
            for index in indices:
                text = texts[index % len(texts)]
                began = time.perf_counter()
                predict([text])
                latencies[name].append(time.perf_counter() - began)
        for variant in peer_variants:
            latencies[f"ORT {variant}"] += peer.request(
                {"single": variant, "indices": indices})["seconds"]

    batches = [(i, i + BATCH_SIZE) for i in range(0, len(texts) - BATCH_SIZE + 1, BATCH_SIZE)]
    rates: Dict[str, List[float]] = {name: [] for name in names}
    next_batch = 0
    for _ in range(args.windows):
        window = [batches[(next_batch + i) % len(batches)] for i in range(args.window_batches)]
        next_batch += args.window_batches
        for name, predict in predictors.items():
            began = time.perf_counter()
            for begin, end in window:
                predict(texts[begin:end])
            rates[name].append(len(window) * BATCH_SIZE / (time.perf_counter() - began))
        for variant in peer_variants:
            seconds = peer.request({"batches": variant, "ranges": window})["seconds"]
            rates[f"ORT {variant}"].append(len(window) * BATCH_SIZE / seconds)
    if peer is not None:
        peer.close()

    # The arithmetic limit: real tokens (with [CLS]/[SEP], no padding) x FLOP per token.
    from transformers import BertTokenizerFast
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    token_counts = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                                  max_length=512)["input_ids"]]
    per_token = flop_per_token(checkpoint)
    single_tokens = statistics.median(token_counts[index % len(texts)]
                                      for index in range(args.calls))
    batch_tokens = statistics.mean(token_counts)

    def peak(name: str) -> float:
        return 1e9 * (args.peak_fp32_gflops if precision_of(name) == "float32"
                      else args.peak_bf16_gflops)

    reference = ours[0]
    p50 = {name: percentile(latencies[name], 50) for name in names}
    rate = {name: statistics.median(rates[name]) for name in names}
    ort_fp32 = next((f"ORT {v}" for v in ("fp32", "fp32-fused") if f"ORT {v}" in names), None)
    ort_int8 = next((f"ORT {v}" for v in ("int8", "int8-fused") if f"ORT {v}" in names), None)
    rows = ["| variant | single p50 ms | p99 ms | p50 / ORT fp32 | % of limit | batch 32: "
            "sentences/s | min–max | rate / ORT int8 | % of limit | labels = ref | max |Δp| |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        single_limit = single_tokens * per_token / peak(name)
        rate_limit = peak(name) / (batch_tokens * per_token)
        agreement = difference = "–"
        if name in probabilities:
            same = probabilities[name].argmax(1) == probabilities[reference].argmax(1)
            agreement = f"{100 * same.mean():.2f}%"
            difference = f"{np.abs(probabilities[name] - probabilities[reference]).max():.4f}"
        latency_ratio = f"{p50[name] / p50[ort_fp32]:.2f}" if ort_fp32 else "–"
        rate_ratio = f"{rate[name] / rate[ort_int8]:.2f}" if ort_int8 else "–"
        rows.append(
            f"| {name} | {1000 * p50[name]:.1f} | {1000 * percentile(latencies[name], 99):.1f} "
            f"| {latency_ratio} | {100 * single_limit / p50[name]:.0f}% | {rate[name]:.0f} | "
            f"{min(rates[name]):.0f}–{max(rates[name]):.0f} | {rate_ratio} | "
            f"{100 * rate[name] / rate_limit:.0f}% | {agreement} | {difference} |")
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    threads = (f"TF intra-op threads {args.intra_op_threads or 'default'}, inter-op "
               f"{args.inter_op_threads or 'default'} ([session]: TF Serving's way, a TF1 "
               f"Session over the MetaGraph; [function]: tf.saved_model.load's function); "
               f"ORT {args.onnx_threads} threads")
    limits = (f"arithmetic limit: {per_token / 1e6:.1f} MFLOP/token; single: median "
              f"{single_tokens:.0f} tokens; batches: mean {batch_tokens:.1f} tokens/sentence; "
              f"peak {args.peak_fp32_gflops:.0f} GFLOP/s float32, {args.peak_bf16_gflops:.0f} "
              f"bfloat16/int8")
    table = "\n".join(rows)
    print("\n" + table + f"\n\n{threads}\n{limits}\nload average {load}\n", flush=True)
    if args.no_write:
        return
    write_section("Serving: in-process latency", (
        f"Prediction from raw text in this process (no server), SST-2 test.tsv sentences. "
        f"**ours**: the exported SavedModels ("
        + ", ".join(d.replace(str(REPO) + os.sep, "") for d in model_dirs)
        + "), `serving_default` called with a string batch; tokenization happens inside the "
        f"graph. **ORT**: the first model's weights in ONNX Runtime (bench/onnx_peer.py; "
        f"`-fused`: with onnxruntime.transformers' BERT fusions; int8: dynamic quantization), "
        f"BertTokenizerFast in Python, timed in its worker process. The transformers rows run "
        f"`TFBertForSequenceClassification` from the {PACKAGED_CHECKPOINT_NAME} with a new "
        f"random classification head (per call it costs the same up to the pooler's one "
        f"384×384 layer), tokenization by `BertTokenizerFast` in Python; its `pipeline` runs "
        f"TensorFlow models one text at a time. Single sentence: {args.calls} calls per "
        f"variant, interleaved in blocks of {args.block}; p50/p99 of per-call wall time. "
        f"Batched: batches of {BATCH_SIZE} consecutive sentences, {args.windows} windows of "
        f"{args.window_batches} batches interleaved across variants; sentences/s median and "
        f"min–max over windows. Labels = ref: label agreement with the first model on all "
        f"{len(texts)} sentences; max |Δp|: largest probability difference. {threads}. "
        f"{limits}. The machine is shared with other jobs (load average {load} at the end), "
        f"so compare within the table.\n\n" + table))


if __name__ == "__main__":
    main()
