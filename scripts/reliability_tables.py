"""Writes the tables of docs/RELIABILITY.md from the reliability tests' own record.

`bad-input`: runs the tests that feed bad input (readers, pipeline settings, `bertpipe
evaluate`/`predict`, the server's REST and gRPC APIs, fuzzed and hand-written); the table counts
the cases tried and the outcomes per input class. `faults`: runs the fault-injection suite (SIGKILL
inside each pipeline component, corrupted versions, read-only and full serving roots, overload);
one row per fault. Each test records through the `bad_input_record` / `fault_record` fixtures
(tests/conftest.py) when BERTPIPE_RELIABILITY_LOG is set. A table is written only if every
test passed. Usage: `make reliability-doc` (bad input), `make chaos` (faults).
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "RELIABILITY.md"
sys.path.insert(0, str(REPO_ROOT / "tests"))
from conftest import RELIABILITY_LOG_ENV  # noqa: E402  (the one name of the switch)

TESTS = {
    "bad input": ["tests/test_reader_properties.py", "tests/test_text_example_gen.py",
                  "tests/test_bad_input.py", "tests/test_serving_server.py"],
    "faults": ["tests/test_chaos.py", "tests/test_pusher.py", "tests/test_serving_server.py"],
}
# How each input class's cases are made; the class names are the tests' own.
HOW = {
    "CSV/TSV file (reader)": "hypothesis: quoting, separators/quotes/newlines/CR/NUL/BOM in "
                             "texts, CRLF, 300 000-char fields, extra columns; a field more or "
                             "less, invalid UTF-8 or a NUL injected into a row",
    "CSV/TSV file (TextExampleGen)": "the same generator, through TextExampleGen's executor on "
                                     "Beam's DirectRunner; tf.Examples read back",
    "input file, whole pipeline": "hand-written files through the whole local pipeline",
    "bertpipe run settings": "checkpoints the pipeline cannot fine-tune (hand-written)",
    "bertpipe evaluate": "data files whose labels are not the model's classes",
    "bertpipe predict": "a command-line text with a byte that is not UTF-8",
    "REST API (schemathesis)": "schemathesis from serving/openapi.yaml, valid and invalid "
                               "requests (mode: positive/negative), against the live server",
    "REST predict body (hand-written)": "TF Serving's request errors, one per rule",
    "REST path (hand-written)": "paths, methods and model names TF Serving answers with errors",
    "gRPC PredictRequest": "malformed PredictRequests: dtypes, shapes, inputs, sizes",
}


def run_tests(tests, log_path: str) -> str:
    env = dict(os.environ, **{RELIABILITY_LOG_ENV: log_path})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "",
               "-W", "ignore::hypothesis.errors.HypothesisWarning", *tests]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    summary = [line for line in result.stdout.splitlines()
               if re.search(r"\d+ (passed|failed)", line)]
    if result.returncode != 0:
        sys.exit(f"the tests failed; no table written:\n{result.stdout[-5000:]}")
    return summary[-1].strip("= ") if summary else "passed"


def bad_input_table(records) -> str:
    cases = collections.defaultdict(set)
    outcomes = collections.defaultdict(collections.Counter)
    for record in records:
        cases[record["class"]].add(record["case"])
        outcomes[record["class"]][record["outcome"]] += 1
    lines = ["| input class | how generated | cases tried | outcomes (count) |",
             "| --- | --- | ---: | --- |"]
    for input_class in sorted(outcomes, key=lambda name: list(HOW).index(name)
                              if name in HOW else len(HOW)):
        tried = sum(outcomes[input_class].values())
        shown = "; ".join(f"{outcome}: {count}" for outcome, count in
                          sorted(outcomes[input_class].items(), key=lambda item: -item[1]))
        lines.append(f"| {input_class} | {HOW.get(input_class, '')} | {tried} "
                     f"({len(cases[input_class])} distinct) | {shown} |")
    return "\n".join(lines)


def faults_table(records) -> str:
    lines = ["| fault | how injected | time (s) | survived | data lost |",
             "| --- | --- | ---: | --- | --- |"]
    for record in records:
        lines.append(f"| {record['fault']} | {record['how']} | {record['seconds']:.1f} | "
                     f"{'yes' if record['survived'] else 'NO'} | {record['data_lost']} |")
    return "\n".join(lines)


def write_section(table: str, tests, summary: str, body: str) -> None:
    begin, end = f"<!-- {table} table: begin -->", f"<!-- {table} table: end -->"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True).stdout.strip()
    section = "\n".join([
        begin,
        f"Made by scripts/reliability_tables.py {table.replace(' ', '-')} on "
        f"{datetime.date.today().isoformat()}, commit {commit}, {platform.machine()} "
        f"{os.cpu_count()} cores, Python {platform.python_version()}: "
        f"`pytest -m '' {' '.join(tests)}`: {summary}. Every row is what those tests "
        "asserted and saw.",
        "",
        body,
        end])
    text = DOC.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        sys.exit(f"{DOC} has no {begin} ... {end} section to fill")
    DOC.write_text(text[:text.index(begin)] + section + text[text.index(end) + len(end):],
                   encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=["bad-input", "faults"])
    table = parser.parse_args().table.replace("-", " ")
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "reliability.jsonl")
        summary = run_tests(TESTS[table], log_path)
        with open(log_path, encoding="utf-8") as handle:
            records = [record for record in map(json.loads, handle)
                       if record["table"] == table]
    write_section(table, TESTS[table], summary,
                  bad_input_table(records) if table == "bad input" else faults_table(records))
    print(f"{DOC}: {len(records)} {table} records")


if __name__ == "__main__":
    main()
