"""Data half (ExampleGen -> ... -> Transform) wall time per component at several sizes of SST-2.

For each size N, the first N rows of ../shared/data/sst2/train.tsv (plus all of dev.tsv as the
eval split) run through the real pipeline on the local Beam runner; per-component wall times
come from ML Metadata. Writes the table to docs/BENCHMARKS.md.

  python bench/data_half_scaling.py --rows 10000 30000 60000
"""
from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

from bench_env import REPO, SST2_DIR, sample_tsv  # first: sets up the environment TF needs

from benchmarks_md import write_section  # noqa: E402

COMPONENTS = ["TextExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "ValidationGate", "Transform"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10000, 30000, 60000])
    parser.add_argument("--data", default=str(SST2_DIR))
    args = parser.parse_args()

    from pipeline import local_runner, runs
    from pipeline.config import PipelineConfig

    data = pathlib.Path(args.data)
    table = ["| train rows | eval rows | " + " | ".join(COMPONENTS) + " | total s | rows/s |",
             "|---:|---:|" + "---:|" * (len(COMPONENTS) + 2)]
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as work:
            work = pathlib.Path(work)
            train_rows = sample_tsv(data / "train.tsv", rows, work / "train.tsv")
            eval_rows = sample_tsv(data / "dev.tsv", 10**9, work / "dev.tsv")
            config = PipelineConfig.from_settings(
                train_data=str(work / "train.tsv"), eval_data=str(work / "dev.tsv"),
                text_column="sentence", schema_path=str(REPO / "schemas" / "sst2.pbtxt"),
                output_dir=str(work / "runs"), train=False)
            started = time.monotonic()
            local_runner.run(config)
            total = time.monotonic() - started
            times = {name: entry.seconds
                     for name, entry in runs.read_run(config.run_dir).components.items()}
        table.append(f"| {train_rows} | {eval_rows} | "
                     + " | ".join(f"{times.get(name, float('nan')):.1f}" for name in COMPONENTS)
                     + f" | {total:.1f} | {(train_rows + eval_rows) / total:.0f} |")
        print(table[-1], flush=True)
    write_section("Data half scaling", (
        "Wall time per component (seconds, from ML Metadata) of the data half on the local Beam "
        "DirectRunner (in_memory, 1 worker), SST-2 train rows + all 6,735 dev rows, "
        "max_seq_length 128, curated schema (ImportSchemaGen), `train=False` (the data half only). "
        "Total includes pipeline start-up.\n\n" + "\n".join(table)))


if __name__ == "__main__":
    main()
