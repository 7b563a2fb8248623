"""Process set-up shared by the bench scripts; each imports it first, before TensorFlow.

A script run as `python bench/NAME.py` has bench/ on sys.path already; this puts the repository
root there too (for the project's packages), and sets what transformers' TF models need
(Keras 2) and the offline mode of this project's machines.
"""
import csv
import os
import pathlib
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = pathlib.Path(__file__).resolve().parent.parent
SST2_DIR = REPO.parent / "shared" / "data" / "sst2"  # the reference data beside the repository
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def sample_tsv(source: pathlib.Path, rows: int, target: pathlib.Path) -> int:
    """Writes the header and the first `rows` rows of a TSV file (SST-2's: unquoted) to
    `target`; returns the number of rows written."""
    with open(source, encoding="utf-8", newline="") as reader, \
            open(target, "w", encoding="utf-8", newline="") as writer:
        lines = list(csv.reader(reader, delimiter="\t", quoting=csv.QUOTE_NONE))[: rows + 1]
        csv.writer(writer, delimiter="\t", quoting=csv.QUOTE_NONE,
                   lineterminator="\n").writerows(lines)
    return len(lines) - 1
