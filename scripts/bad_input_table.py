"""Writes the bad-input table of docs/RELIABILITY.md from the bad-input tests' own record.

Runs the tests that feed bad input (readers, pipeline settings, `bertpipe evaluate`/`predict`,
the server's REST and gRPC APIs, fuzzed and hand-written) with BERTPIPE_BAD_INPUT_LOG set; each
such test records (input class, case, outcome) through the `bad_input_record` fixture
(tests/conftest.py). The table counts the cases tried and the outcomes per input class, and is
written only if every test passed. Usage: `make reliability-doc`.
"""
from __future__ import annotations

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
BEGIN, END = "<!-- bad-input table: begin -->", "<!-- bad-input table: end -->"
TESTS = ["tests/test_reader_properties.py", "tests/test_text_example_gen.py",
         "tests/test_bad_input.py", "tests/test_serving_server.py"]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from conftest import BAD_INPUT_LOG_ENV  # noqa: E402  (the one name of the switch)

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


def run_tests(log_path: str) -> str:
    env = dict(os.environ, **{BAD_INPUT_LOG_ENV: log_path})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "",
               "-W", "ignore::hypothesis.errors.HypothesisWarning", *TESTS]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    summary = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)",
                                                                         line)]
    if result.returncode != 0:
        sys.exit(f"the bad-input tests failed; no table written:\n{result.stdout[-5000:]}")
    return summary[-1].strip("= ") if summary else "passed"


def table(records) -> str:
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


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "bad_input.jsonl")
        summary = run_tests(log_path)
        with open(log_path, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True).stdout.strip()
    section = "\n".join([
        BEGIN,
        f"Made by `make reliability-doc` (scripts/bad_input_table.py) on "
        f"{datetime.date.today().isoformat()}, commit {commit}, {platform.machine()} "
        f"{os.cpu_count()} cores, Python {platform.python_version()}: "
        f"`pytest -m '' {' '.join(TESTS)}`: {summary}. Every case below is an assertion of "
        "those tests; the outcome is what the test saw.",
        "",
        table(records),
        END])
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit(f"{DOC} has no {BEGIN} ... {END} section to fill")
    text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    DOC.write_text(text, encoding="utf-8")
    print(f"{DOC}: {len(records)} cases recorded")


if __name__ == "__main__":
    main()
