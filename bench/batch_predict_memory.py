"""Batch prediction memory: peak RSS and rows/s of `bertpipe predict --data` at growing sizes.

Writes CSV files of SST-2 train.tsv sentences (read at run time, cycled to the size asked for)
into a temporary directory, then runs `bertpipe predict --model M --data F --output O` on each,
one fresh process per size (Beam DirectRunner, in_memory, one worker: the default), and
measures the process's peak resident memory (os.wait4's ru_maxrss of that child alone) and its
wall time. "job s" and "rows/s" are the command's own summary (model load included, Python
start-up not). Memory that does not grow with the rows is what the batch job promises
(serving/batch_predict.py); the sizes differ tenfold to show it.
Writes the section "Batch prediction memory" of docs/BENCHMARKS.md unless --no-write.

  python bench/batch_predict_memory.py [--model runs/serving/text_classifier] \
      [--rows 10000 100000] [--batch-size 64] [--no-write]
  python bench/batch_predict_memory.py --rows 1000 5000 --no-write     # a quick check
"""
from __future__ import annotations

import argparse
import csv
import datetime
import itertools
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from bench_env import REPO, SST2_DIR  # first: sets up the environment TF needs
from benchmarks_md import machine_description, write_section  # noqa: E402

SECTION = "Batch prediction memory"
DEFAULT_MODEL = REPO / "runs" / "serving" / "text_classifier"
_SUMMARY = re.compile(r"(\d+) rows read, (\d+) rows written to .* in ([\d.]+) s "
                      r"\((\d+) rows/s\)")


def write_rows(source: pathlib.Path, rows: int, target: pathlib.Path) -> None:
    """`rows` rows (id, text) of SST-2 sentences, cycled, as CSV."""
    with open(source, encoding="utf-8", newline="") as handle:
        sentences = [row[0] for row in
                     itertools.islice(csv.reader(handle, delimiter="\t",
                                                 quoting=csv.QUOTE_NONE), 1, None)]
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text"])
        writer.writerows([index, sentence] for index, sentence in
                         zip(range(rows), itertools.cycle(sentences)))


def count_rows(path: pathlib.Path) -> int:
    with open(path, encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def run_one(command: List[str], directory: pathlib.Path) -> Dict:
    """Runs `command`; its wall seconds, peak RSS (MiB), exit code and output."""
    out_path, err_path = directory / "stdout.txt", directory / "stderr.txt"
    started = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err)
        # wait4 gives this child's own peak RSS; getrusage(RUSAGE_CHILDREN) would give the
        # largest of all children waited for so far.
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.monotonic() - started, "peak_mib": usage.ru_maxrss / 1024,
            "returncode": process.returncode, "stdout": out_path.read_text(),
            "stderr": err_path.read_text()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="a SavedModel or a model directory with numbered versions "
                             "(default: the demo model `make demo` pushes)")
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", default=str(SST2_DIR / "train.tsv"),
                        help="the TSV whose first column gives the sentences")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="bertpipe_batch_bench_") as directory:
        for rows in args.rows:
            data = pathlib.Path(directory) / f"rows_{rows}.csv"
            output = pathlib.Path(directory) / f"labeled_{rows}.csv"
            write_rows(pathlib.Path(args.data), rows, data)
            command = [sys.executable, "-m", "pipeline.cli", "predict", "--model", args.model,
                       "--data", str(data), "--output", str(output),
                       "--batch-size", str(args.batch_size)]
            print(f"{rows} rows: {' '.join(map(shlex.quote, command))}", flush=True)
            run = run_one(command, pathlib.Path(directory))
            if run["returncode"] != 0:
                sys.exit(f"failed (exit {run['returncode']}):\n{run['stderr'][-4000:]}")
            summary = _SUMMARY.search(run["stdout"])
            if not summary or int(summary.group(2)) != rows or count_rows(output) != rows:
                sys.exit(f"expected {rows} rows written:\n{run['stdout']}")
            results.append(dict(rows=rows, job_seconds=float(summary.group(3)),
                                rows_per_second=int(summary.group(4)), **run))
            output.unlink()

    table = "\n".join(
        ["| rows | process s | job s | rows/s | peak RSS MB |",
         "|---:|---:|---:|---:|---:|"]
        + [f"| {r['rows']:,} | {r['seconds']:.1f} | {r['job_seconds']:.1f} | "
           f"{r['rows_per_second']:,} | {r['peak_mib']:.0f} |" for r in results])
    model = os.path.relpath(args.model, REPO) if args.model.startswith(str(REPO)) \
        else args.model
    body = (f"`bertpipe predict --model {model} --data FILE --output FILE --batch-size "
            f"{args.batch_size}` (Beam DirectRunner, in_memory, one worker) on CSV files of "
            "SST-2 train.tsv sentences cycled to each size (id and text columns), one fresh "
            "process per size. Peak RSS is that process's maximum resident memory "
            "(os.wait4's ru_maxrss); \"process s\" its wall time, Python and TensorFlow start-up "
            "included; \"job s\" and rows/s the command's own summary (model load included)."
            f"\n\n{table}")
    command = "python " + " ".join(shlex.quote(arg) for arg in sys.argv)
    print(f"\n## {SECTION}\n\n{body}\n\n- command: `{command}`\n"
          f"- machine: {machine_description()} (nproc {os.cpu_count()})\n"
          f"- date: {datetime.date.today().isoformat()}\n", flush=True)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
