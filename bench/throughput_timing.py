"""When and how bench/training_throughput.py runs its variants' training steps.

run_steps times one call of Keras steps; measure_throughput builds and traces every variant,
gives each its warm-up steps, then runs the timed windows interleaved window by window
(A, B, C, A, B, C, ...); train_for_accuracy runs the accuracy comparison seed by seed.
"""
from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Dict, List, Sequence

import bench_env  # noqa: F401  first: sets up the environment TF needs

from throughput_data import BATCH_SIZE  # noqa: E402
from trainer import input_pipeline  # noqa: E402

if TYPE_CHECKING:  # throughput_variants imports run_steps from here
    from throughput_variants import Variant


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
