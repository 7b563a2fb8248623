"""SST-2 accuracy of the whole pipeline, next to published figures.

Runs the real pipeline (what `bertpipe run` runs: the local Beam runner, every component) on
all of ../shared/data/sst2/train.tsv with dev.tsv as the Evaluator's eval split, the packaged
MiniLM checkpoint, 1 epoch, learning rate 1e-4, into a fresh output directory (kept, so the
pushed model can be reused, e.g. by bench/serving_latency.py). Then measures the pushed
model's accuracy on test.tsv, the 872-row official GLUE SST-2 dev set (what papers report), as
`bertpipe evaluate` does. Writes the table to docs/BENCHMARKS.md unless --no-write.

  python bench/accuracy.py                                   # about 20-25 min on 2 cores
  python bench/accuracy.py --rows 2000 --no-write            # a quick check of the script
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import tempfile
import time
from typing import Optional

from bench_env import REPO, SST2_DIR, sample_tsv  # first: sets up the environment TF needs

from benchmarks_md import write_section  # noqa: E402

# GLUE SST-2 dev-set accuracy (%) reported by the papers, with where each figure is printed.
PUBLISHED = [
    ("BERT-base (110M parameters)", 92.7,
     "DistilBERT paper, Sanh et al. 2019 (arXiv:1910.01108), Table 1, GLUE dev; the BERT paper "
     "(Devlin et al. 2019, arXiv:1810.04805) Table 1 gives 93.5 on the GLUE test set"),
    ("MiniLM 6 layers x 384 hidden (22M)", 91.5,
     "MiniLM paper, Wang et al. 2020 (arXiv:2002.10957), 6x384 student, GLUE dev (figure as "
     "quoted by the project issue)"),
    ("DistilBERT (66M)", 91.3, "DistilBERT paper, Sanh et al. 2019, Table 1, GLUE dev"),
]
COMPONENTS = ["TextExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "ValidationGate", "Transform", "Trainer", "Evaluator", "ServingCheck",
              "ServingPusher"]


def summarize(config, output: pathlib.Path, data: pathlib.Path, train: pathlib.Path,
              epochs: int, total: Optional[float]):
    """The accuracy table, the timing line and the number of training rows of a finished run."""
    from components.text_example_gen import read_delimited_file
    from pipeline import run_artifacts, runs
    from serving.predict import accuracy, resolve_saved_model_dir

    run = runs.read_run(config.run_dir)
    times = {name: entry.seconds for name, entry in run.components.items()}
    # The Evaluator's overall accuracy on the eval split: Keras' SparseCategoricalAccuracy
    # (pipeline/eval_config.py).
    dev_accuracy = run_artifacts.overall_metrics(run.artifact("Evaluator", "evaluation").uri)[
        "sparse_categorical_accuracy"]
    pushed = output / "serving" / config.serving.model_name
    if pushed.is_dir():
        model_dir = resolve_saved_model_dir(str(pushed))
    else:  # not blessed: measure the Trainer's export, and say so
        model_dir = os.path.join(run.artifact("Trainer", "model").uri, "Format-Serving")
        print(f"the model was not blessed, so not pushed: measuring {model_dir}", flush=True)
    texts, labels = read_delimited_file(str(data / "test.tsv"), "sentence", "label")
    test_accuracy = accuracy(model_dir, texts, labels)
    train_rows = len(read_delimited_file(str(train), "sentence", "label")[0])
    dev_rows = len(read_delimited_file(str(data / "dev.tsv"), "sentence", "label")[0])

    ours = (f"| this pipeline, all-MiniLM-L6-v2 (6 x 384, 22M), "
            f"{epochs} epoch on {train_rows:,} rows | **{100 * test_accuracy:.2f}** | "
            f"{100 * dev_accuracy:.2f} | measured here"
            + ("" if pushed.is_dir() else " (model not blessed)") + " |")
    table = "\n".join(
        ["| model | GLUE SST-2 dev accuracy % (test.tsv, 872 rows) | our dev.tsv "
         f"({dev_rows:,} rows) % | source |", "|---|---:|---:|---|", ours]
        + [f"| {name} | {figure:.1f} | | {source} |" for name, figure, source in PUBLISHED])
    timing = ("Wall time per component (s): " + ", ".join(
        f"{name} {times[name]:.0f}" for name in COMPONENTS if name in times)
        + (f"; whole run {total:.0f} s (1-min load average at the end: "
           f"{os.getloadavg()[0]:.1f})." if total is not None
           else f"; their sum {sum(times.values()):.0f} s."))
    print("\n" + table + "\n\n" + timing + f"\npushed model: {model_dir}\n", flush=True)
    return table, timing, train_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SST2_DIR))
    parser.add_argument("--output-dir", default="",
                        help="a new or empty directory (default: a new one under the temp dir)")
    parser.add_argument("--rows", type=int, default=0,
                        help="train on the first N rows of train.tsv only (default: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--mixed-precision", default="auto")
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--summarize-only", action="store_true",
                        help="do not run: read back the finished run in --output-dir (made "
                             "by this script with the same flags) and write its table")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.summarize_only and not args.output_dir:
        parser.error("--summarize-only needs the --output-dir of a finished run")

    from pipeline import local_runner
    from pipeline.config import PipelineConfig
    from preprocessing.checkpoint import PACKAGED_CHECKPOINT_NAME

    data = pathlib.Path(args.data)
    output = pathlib.Path(args.output_dir or tempfile.mkdtemp(prefix="bertpipe_accuracy_"))
    if args.summarize_only:
        if not (output / "runs").is_dir():
            parser.error(f"--output-dir {output} holds no finished run")
    elif output.exists() and any(output.iterdir()):
        # A used directory would let TFX reuse cached outputs and warm-start from an earlier
        # blessed model: neither is the run this benchmark describes.
        parser.error(f"--output-dir {output} is not empty")
    output.mkdir(parents=True, exist_ok=True)
    train = data / "train.tsv"
    if args.rows:
        train = output / "train_sample.tsv"
        if not args.summarize_only:
            sample_tsv(data / "train.tsv", args.rows, train)
    config = PipelineConfig.from_settings(
        train_data=str(train), eval_data=str(data / "dev.tsv"), text_column="sentence",
        label_column="label", schema_path=str(REPO / "schemas" / "sst2.pbtxt"),
        epochs=args.epochs, learning_rate=args.learning_rate,
        mixed_precision=args.mixed_precision, xla=args.xla, output_dir=str(output / "runs"),
        serving_root=str(output / "serving"))
    def shown(path: pathlib.Path) -> str:  # the data as seen from the repository
        return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)

    equivalent = ("bertpipe run " + " ".join(shlex.quote(part) for part in [
        "--train-data", shown(train), "--eval-data", shown(data / "dev.tsv"),
        "--text-column", "sentence", "--schema-path", "schemas/sst2.pbtxt",
        "--epochs", str(args.epochs), "--learning-rate", f"{args.learning_rate:g}",
        "--output-dir", str(output / "runs"), "--serving-root", str(output / "serving")]
        + (["--mixed-precision", args.mixed_precision] if args.mixed_precision != "auto" else [])
        + (["--xla"] if args.xla else [])))
    if args.summarize_only:
        total = None
    else:
        print(f"running the pipeline into {output} (equivalent: {equivalent})", flush=True)
        started = time.monotonic()
        local_runner.run(config)
        total = time.monotonic() - started
    table, timing, train_rows = summarize(config, output, data, train, args.epochs, total)
    if args.no_write:
        return
    write_section("Accuracy: SST-2", (
        f"The whole pipeline on SST-2 (`{equivalent}`: the {PACKAGED_CHECKPOINT_NAME}, "
        f"max_seq_length 128, batch 32, the Trainer's defaults "
        f"otherwise): trained on {train_rows:,} rows of train.tsv, the Evaluator on dev.tsv, then "
        f"the pushed SavedModel's accuracy on test.tsv, the official GLUE SST-2 dev set that "
        f"papers report, as `bertpipe evaluate --data test.tsv` computes it. The published "
        f"models are fine-tuned for several epochs with tuned hyper-parameters; this is one "
        f"epoch on one setting.\n\n{table}\n\n{timing}"))


if __name__ == "__main__":
    main()
