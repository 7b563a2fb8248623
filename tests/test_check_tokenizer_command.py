"""`bertpipe check-tokenizer` and `bertpipe info`, run as a user runs them."""
import csv
import os
import subprocess
import sys

import pytest

from test_tokenization import EDGE_CASES

BERTPIPE = os.path.join(os.path.dirname(sys.executable), "bertpipe")


def bertpipe(*args):
    return subprocess.run([BERTPIPE, *args], capture_output=True, text=True)


def test_info_prints_the_packaged_checkpoint_directory():
    result = bertpipe("info")
    assert result.returncode == 0, result.stderr
    directory = result.stdout.split("packaged checkpoint: ")[1].split()[0]
    assert os.path.isfile(os.path.join(directory, "vocab.txt"))


@pytest.mark.slow  # the whole GLUE dev set through the Transform graph: a scale check
def test_sst2_glue_dev_and_edge_cases_have_no_mismatches(sst2_dir, tmp_path):
    result = bertpipe("check-tokenizer", "--data", str(sst2_dir / "test.tsv"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "872 texts, 0 mismatches"

    # CSV quoting carries the tabs and newlines of the edge cases; it cannot carry NUL (the
    # in-process tokenization test covers that one).
    edge_cases = [text for text in EDGE_CASES if "\x00" not in text]
    edge_file = tmp_path / "edge.csv"
    with open(edge_file, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["text"]] + [[text] for text in edge_cases])
    result = bertpipe("check-tokenizer", "--data", str(edge_file), "--text-column", "text")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{len(edge_cases)} texts, 0 mismatches"


def test_mismatches_are_shown_and_exit_non_zero(sst2_dir, tmp_path):
    """A transform graph built for 8 tokens disagrees with transformers at 128 tokens."""
    from preprocessing.checkpoint import packaged_checkpoint_dir
    from preprocessing.tokenizer_check import build_transform_graph
    graph = build_transform_graph(packaged_checkpoint_dir(), 8, str(tmp_path / "graph"))
    data = tmp_path / "short.csv"
    data.write_text("text\nshort one\na sentence that is clearly longer than eight tokens\n")
    result = bertpipe("check-tokenizer", "--data", str(data), "--transform-graph", graph)
    assert result.returncode == 1
    assert "2 texts, 1 mismatches" in result.stdout
    assert "transform:    [CLS] a sentence that is clearly longer [SEP]" in result.stdout
    assert "transformers: [CLS] a sentence that is clearly longer than eight" in result.stdout
