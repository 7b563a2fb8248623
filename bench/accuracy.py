"""SST-2 accuracy of the whole pipeline, next to published figures and the earlier recipe.

Runs the real pipeline (what `bertpipe run` runs: the local Beam runner, every component) on
all of ../shared/data/sst2/train.tsv with dev.tsv as the Evaluator's eval split and the packaged
MiniLM checkpoint, once per variant, each into a fresh directory (kept, so a pushed model can be
reused, e.g. by bench/serving_latency.py): by default the project's default flags, and the same
with the Tuner on a small budget. A variant is a list of `bertpipe run` flags added to the data
flags. Then it measures each pushed model's accuracy on test.tsv, the 872-row official GLUE
SST-2 dev set (what papers report), as `bertpipe evaluate` does, and reads from the run what
training did: epochs run, the best epoch, validation accuracy per epoch, the Tuner's trials.
Writes the section "Accuracy: SST-2" of docs/BENCHMARKS.md unless --no-write.

  python bench/accuracy.py                                  # defaults, then tuned: ~2-3 h
  python bench/accuracy.py --variant defaults= --no-write   # the defaults only
  python bench/accuracy.py --variant "lr1e-4=--learning-rate 1e-4" --rows 2000 --no-write
  python bench/accuracy.py --output-dir DIR --summarize-only  # tabulate finished runs again
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import tempfile
import time
from typing import Dict, List, Optional, Tuple

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
# The recipe before early stopping and the Tuner (this section, 2026-11-22): one epoch at
# learning rate 1e-4, the last weights exported, on the same data and checkpoint.
EARLIER = ("earlier recipe: 1 epoch, lr 1e-4, last weights (2026-11-22)", 89.56, 93.81, 1376)
DEFAULT_VARIANTS = ["defaults=",
                    "tuned=--tune --tuner-trials 6 --tuner-max-steps 400"]
COMPONENTS = ["TextExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "ValidationGate", "Transform", "Tuner", "Trainer", "Evaluator", "ServingCheck",
              "ServingPusher"]


def parse_variant(text: str) -> Tuple[str, List[str]]:
    name, _, flags = text.partition("=")
    return name, shlex.split(flags)


def summarize(name: str, flags: List[str], config, data: pathlib.Path,
              total: Optional[float]) -> Dict:
    """What a finished run did and how accurate its model is."""
    from components.text_example_gen import read_delimited_file
    from pipeline import run_artifacts, runs
    from serving.predict import accuracy, resolve_saved_model_dir
    from trainer.task import TRAINING_SUMMARY_FILE

    run = runs.read_run(config.run_dir)
    times = {component: entry.seconds for component, entry in run.components.items()}
    # The Evaluator's overall accuracy on the eval split (pipeline/eval_config.py).
    dev_accuracy = run_artifacts.overall_metrics(run.artifact("Evaluator", "evaluation").uri)[
        "sparse_categorical_accuracy"]
    pushed = pathlib.Path(config.model_dir)
    if pushed.is_dir():
        model_dir = resolve_saved_model_dir(str(pushed))
    else:  # not blessed: measure the Trainer's export, and say so
        model_dir = os.path.join(run.artifact("Trainer", "model").uri, "Format-Serving")
        print(f"the model was not blessed, so not pushed: measuring {model_dir}", flush=True)
    texts, labels = read_delimited_file(str(data / "test.tsv"), "sentence", "label")
    with open(os.path.join(run.artifact("Trainer", "model_run").uri,
                           TRAINING_SUMMARY_FILE), encoding="utf-8") as handle:
        training = json.load(handle)
    tuner = run.artifact("Tuner", "tuner_results")
    result = {
        "name": name, "flags": flags, "test_accuracy": accuracy(model_dir, texts, labels)[0],
        "dev_accuracy": dev_accuracy, "blessed": pushed.is_dir(), "times": times,
        "total": total if total is not None else sum(times.values()),
        "train_rows": training["train_examples"] + training["validation_examples"],
        "validation_rows": training["validation_examples"],
        "settings": training["training"], "tuned": training["tuned_hyperparameters"],
        "epochs_run": training["epochs_run"], "best_epoch": training["best_epoch"],
        "val_accuracy": training["history"].get("val_accuracy", []),
        "trials": run_artifacts.tuner_trials(tuner) if tuner is not None else [],
        "model_dir": model_dir}
    print(json.dumps({key: value for key, value in result.items() if key != "trials"},
                     indent=1, default=str), flush=True)
    return result


def _setting_text(result: Dict) -> str:
    settings = result["settings"]
    return (f"{settings['epochs']} epochs max, lr {settings['learning_rate']:g}, batch "
            f"{settings['train_batch_size']}, warm-up {settings['warmup_fraction']:g}, dropout "
            f"{settings['dropout']:g}")


def tables(results: List[Dict], dev_rows: int) -> str:
    rows = []
    for result in results:
        flags = " ".join(result["flags"]) or "(default flags)"
        stopped = (f"{result['epochs_run']} run, best {result['best_epoch'] + 1}"
                   if result["best_epoch"] is not None else f"{result['epochs_run']} run")
        rows.append(
            f"| this pipeline, `{flags}`: {_setting_text(result)} "
            f"{'(tuned)' if result['tuned'] else ''} | **{100 * result['test_accuracy']:.2f}** "
            f"| {100 * result['dev_accuracy']:.2f} | {stopped} | "
            f"{' / '.join(f'{value:.4f}' for value in result['val_accuracy'])} | "
            f"{result['times'].get('Tuner', 0):.0f} | {result['times'].get('Trainer', 0):.0f} "
            f"| {result['total']:.0f} |" + ("" if result["blessed"] else " (not blessed)"))
    name, test, dev, total = EARLIER
    rows.append(f"| {name} | {test:.2f} | {dev:.2f} | 1 | | | | {total} |")
    rows += [f"| {published} ({source}) | {figure:.1f} | | | | | | |"
             for published, figure, source in PUBLISHED]
    table = "\n".join(
        ["| model and recipe | GLUE SST-2 dev accuracy % (test.tsv, 872 rows) | our dev.tsv "
         f"({dev_rows:,} rows) % | epochs | validation accuracy per epoch (held-out 10% of "
         "train) | Tuner s | Trainer s | whole run s |",
         "|---|---:|---:|---|---|---:|---:|---:|"] + rows)
    for result in results:
        if not result["trials"]:
            continue
        trial_rows = [
            f"| {trial['trial_id']} | {trial['hyperparameters'].get('learning_rate', ''):g} | "
            f"{trial['hyperparameters'].get('epochs', '')} | "
            f"{trial['hyperparameters'].get('train_batch_size', '')} | "
            f"{trial['hyperparameters'].get('warmup_fraction', '')} | "
            f"{trial['hyperparameters'].get('dropout', '')} | "
            f"{trial['val_accuracy']:.4f} | "
            + (f"{trial['seconds']:.0f}" if trial.get("seconds") is not None else "") + " |"
            for trial in result["trials"]]
        table += (f"\n\nThe Tuner's trials in `{' '.join(result['flags'])}` (each at most the "
                  "step budget; scored by the best held-out validation accuracy):\n\n"
                  "| trial | learning rate | epochs | batch | warm-up | dropout | validation "
                  "accuracy | s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
                  + "\n".join(trial_rows))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SST2_DIR))
    parser.add_argument("--output-dir", default="",
                        help="a new or empty directory (default: a new one under the temp dir); "
                             "each variant runs in <output-dir>/<variant name>")
    parser.add_argument("--rows", type=int, default=0,
                        help="train on the first N rows of train.tsv only (default: all)")
    parser.add_argument("--variant", action="append", default=None,
                        help="NAME=FLAGS: bertpipe run flags of one variant (repeatable; "
                             f"default: {' and '.join(repr(v) for v in DEFAULT_VARIANTS)})")
    parser.add_argument("--summarize-only", action="store_true",
                        help="do not run: read back the finished runs in --output-dir (made "
                             "by this script with the same flags) and write the table")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.summarize_only and not args.output_dir:
        parser.error("--summarize-only needs the --output-dir of finished runs")
    variants = [parse_variant(text) for text in (args.variant or DEFAULT_VARIANTS)]

    from pipeline import local_runner
    from pipeline.cli import _config_from_args, build_parser
    from preprocessing.checkpoint import PACKAGED_CHECKPOINT_NAME

    data = pathlib.Path(args.data)
    output = pathlib.Path(args.output_dir or tempfile.mkdtemp(prefix="bertpipe_accuracy_"))
    if not args.summarize_only and output.exists() and any(output.iterdir()):
        # A used directory would let TFX reuse cached outputs and warm-start from an earlier
        # blessed model: neither is the run this benchmark describes.
        parser.error(f"--output-dir {output} is not empty")
    output.mkdir(parents=True, exist_ok=True)
    train = data / "train.tsv"
    if args.rows:
        train = output / "train_sample.tsv"
        if not args.summarize_only:
            sample_tsv(data / "train.tsv", args.rows, train)

    def shown(path: pathlib.Path) -> str:  # the data as seen from the repository
        return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)

    schema = REPO / "schemas" / "sst2.pbtxt"

    def data_flags(path=lambda path: str(path)):  # as run, or shown from the repository
        return ["--train-data", path(train), "--eval-data", path(data / "dev.tsv"),
                "--text-column", "sentence", "--schema-path", path(schema)]

    results = []
    for name, flags in variants:
        directory = output / name
        place = ["--output-dir", str(directory / "runs"), "--serving-root",
                 str(directory / "serving")]
        config = _config_from_args(build_parser().parse_args(
            ["run", *data_flags(), *place, *flags]))
        equivalent = "bertpipe run " + " ".join(map(shlex.quote,
                                                    data_flags(shown) + place + flags))
        total = None
        if not args.summarize_only:
            print(f"variant {name}: {equivalent}", flush=True)
            started = time.monotonic()
            local_runner.run(config)
            total = time.monotonic() - started
        results.append(summarize(name, flags, config, data, total))
    from components.text_example_gen import read_delimited_file
    dev_rows = len(read_delimited_file(str(data / "dev.tsv"), "sentence", "label")[0])
    table = tables(results, dev_rows)
    print("\n" + table + "\n", flush=True)
    if args.no_write:
        return
    when = (f"the machine's 1-min load average at the end was {os.getloadavg()[0]:.1f}"
            if not args.summarize_only else
            "the runs were tabulated afterwards (--summarize-only), so a whole-run time is the "
            "sum of the run's component times")
    commands = "; ".join(f"`{name}`: `bertpipe run "
                         f"{' '.join(map(shlex.quote, data_flags(shown) + flags))}`"
                         for name, flags in variants)
    write_section("Accuracy: SST-2", (
        f"The whole pipeline on SST-2 with the {PACKAGED_CHECKPOINT_NAME}, max_seq_length 128: "
        f"trained on {results[0]['train_rows']:,} rows of train.tsv (the Trainer holds out "
        f"{results[0]['validation_rows']:,} of them for validation: early stopping and the "
        "best epoch), the Evaluator on dev.tsv, then the pushed SavedModel's accuracy on "
        "test.tsv, the official GLUE SST-2 dev set that papers report, as `bertpipe evaluate "
        f"--data test.tsv` computes it. Variants: {commands}. Whole-run times include the data "
        f"half and the Evaluator; {when}.\n\n{table}"))


if __name__ == "__main__":
    main()
