"""The markdown of bench/training_throughput.py: the throughput table (`report`), the accuracy
table (`accuracy_report`), and the text of the two docs/BENCHMARKS.md sections around them
(`throughput_section`, `accuracy_section`).
"""
from __future__ import annotations

import statistics
from typing import Dict, List, Sequence

import bench_env  # noqa: F401  first: sets up the environment TF needs

import numpy as np  # noqa: E402

from preprocessing.checkpoint import PACKAGED_CHECKPOINT_NAME  # noqa: E402
from throughput_data import BATCH_SIZE  # noqa: E402
from throughput_stats import (EQUIVALENCE_MARGIN, examples_per_second,  # noqa: E402
                              paired_difference, verdict)
from throughput_variants import DEFAULTS, OURS, PADDED, Variant  # noqa: E402

THROUGHPUT_SECTION = "Training throughput"
ACCURACY_SECTION = "Training: accuracy after equal steps"


def report(variants: List[Variant], tokens: Dict[str, Dict], mean_real_length: float,
           args) -> str:
    """Examples/s per variant (median and min–max over windows), their ratio to the padded
    recipe's in the same round, and the padded tokens each trained on."""
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


def throughput_section(args, train_rows: int, load: str, setup: float, timed: float,
                       table: str) -> str:
    """Section "Training throughput": what was measured, how, then the table."""
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
    return (
        f"Training examples/s of the BERT classifier on CPU: checkpoint "
        f"{f'`{args.checkpoint}`' if args.checkpoint else PACKAGED_CHECKPOINT_NAME}, the first "
        f"{train_rows:,} rows of SST-2 train.tsv, global batch {BATCH_SIZE}, max_seq_length "
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
        f"s, throughput {timed:.0f} s.\n\n" + table)


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


def accuracy_section(args, train_rows: int, test_rows: int, seeds: Sequence[int],
                     seconds: float, table: str) -> str:
    """Section "Training: accuracy after equal steps": what was compared, how the verdict is
    reached, then the table."""
    return (
        f"Does training on length buckets cost accuracy? ours (float32 and "
        f"mixed_bfloat16 + XLA) and the padded recipe of section \"{THROUGHPUT_SECTION}\", each "
        f"trained afresh from the checkpoint for {args.accuracy_steps} steps of "
        f"`model.fit` (batch {BATCH_SIZE}, the learning-rate schedule sized to those "
        f"steps) on the same {train_rows:,} rows, then evaluated on all "
        f"{test_rows} rows of SST-2 test.tsv in its own input format. The three "
        f"share the classifier and optimizer; only the input differs (length-bucketed "
        f"batches padded to the bucket bound vs random batches padded to "
        f"{args.max_seq_length}). A seed sets the initial head weights, dropout and the "
        f"shuffle order; every variant runs with each of {len(seeds)} seeds, so the "
        f"difference from the padded recipe is paired by seed (95% confidence interval "
        f"from Student's t over the seeds). verdict: better when that interval lies above "
        f"0, equal when it lies within ±{100 * EQUIVALENCE_MARGIN:g} point (about "
        f"{EQUIVALENCE_MARGIN * test_rows:.0f} of the {test_rows} test "
        f"sentences; \"lower, by less than\" when within it but below 0), worse when it "
        f"lies below 0 and reaches past the margin, inconclusive when it straddles 0 and "
        f"reaches past the margin. Wall time {seconds:.0f} s.\n\n"
        + table)
