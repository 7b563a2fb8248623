"""Shared test fixtures: the SST-2 reference data beside the repo, samples of it, and tiny
checkpoints with a small vocabulary so unit tests run in seconds."""
import csv
import json
import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Before TensorFlow is first imported: transformers' TF models and TFT's Keras layer need Keras 2.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def shared_sst2_dir() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("BERTPIPE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return path / "sst2"


@pytest.fixture(scope="session")
def sst2_dir() -> pathlib.Path:
    path = shared_sst2_dir()
    if not (path / "test.tsv").exists():
        pytest.fail(f"SST-2 reference data not found at {path}: the tests expect ../shared/data "
                    "beside the repository (or BERTPIPE_SHARED_DATA)")
    return path


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_tsv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None,
                   lineterminator="\n").writerows(rows)
    return path


@pytest.fixture(scope="session")
def sst2_sample(sst2_dir, tmp_path_factory):
    """500 SST-2 rows: 400 from train.tsv and 100 from dev.tsv, as train.tsv/dev.tsv."""
    directory = tmp_path_factory.mktemp("sst2_sample")
    train, dev = read_tsv(sst2_dir / "train.tsv"), read_tsv(sst2_dir / "dev.tsv")
    write_tsv(directory / "train.tsv", train[:401])
    write_tsv(directory / "dev.tsv", dev[:101])
    return directory


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great",
              "bad", "good", "un", "##believ", "##able", "cafe", ",", ".", "!", "'", "t",
              "don", "a", "##b", "##c", "北", "京", "ß", "ss"]


# The tiny vocabulary turns most words of real text into [UNK], far above the default bound on
# [UNK] (--max-unknown-token-share): runs with it warn about that instead of stopping. The
# bounds themselves are tested with the real vocabulary (tests/test_data_quality.py).
TINY_VOCAB_SETTINGS = {"text_anomalies": "warn"}
TINY_VOCAB_FLAGS = ["--text-anomalies", "warn"]


def write_tiny_checkpoint(directory: pathlib.Path, lower_case: bool = True) -> pathlib.Path:
    """A Hugging Face-layout BERT checkpoint with a 28-token vocabulary (no weights)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "do_lower_case": lower_case, "tokenizer_class": "BertTokenizer"}))
    (directory / "config.json").write_text(json.dumps({
        "model_type": "bert", "vocab_size": len(TINY_VOCAB), "hidden_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
        "max_position_embeddings": 64, "type_vocab_size": 2}))
    return directory


@pytest.fixture
def tiny_checkpoint(tmp_path):
    return write_tiny_checkpoint(tmp_path / "tiny_checkpoint")


# Trainer tests (test_trainer*.py): see trainer_harness.py. Once per session: the tiny
# checkpoint with TFBertModel weights and the real data half on the demo data for it.
@pytest.fixture(scope="session")
def trainer_inputs(tmp_path_factory):
    import trainer_harness
    return trainer_harness.prepare_trainer_inputs(tmp_path_factory.mktemp("trainer_inputs"))


# The whole pipeline once on the demo data with a tiny BERT, shared by the end-to-end test
# (which goes on running the pipeline in the same output directory) and the report test.
@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """The tiny checkpoint above with random TFBertModel weights."""
    from trainer_harness import make_tiny_checkpoint_with_weights
    return make_tiny_checkpoint_with_weights(tmp_path_factory.mktemp("checkpoint") / "tiny")


@pytest.fixture(scope="session")
def demo_first_run(tiny_bert, tmp_path_factory):
    """The PipelineConfig of one whole run on the demo data, blessed (min_accuracy 0) and so
    pushed as version 1. Tests may run the pipeline again in its output_dir (enable_cache: the
    data half is reused), so none may assume it runs there first or last."""
    from pipeline import local_runner
    from pipeline.config import PipelineConfig
    demo = REPO_ROOT / "data" / "demo"
    config = PipelineConfig.from_settings(
        train_data=str(demo / "train.csv"), eval_data=str(demo / "eval.csv"),
        schema_path=str(REPO_ROOT / "schemas" / "demo.pbtxt"), checkpoint=str(tiny_bert),
        max_seq_length=32, epochs=1, train_batch_size=16, min_accuracy=0.0,
        max_accuracy_drop=1.0, output_dir=str(tmp_path_factory.mktemp("demo_runs")),
        enable_cache=True, **TINY_VOCAB_SETTINGS)
    local_runner.run(config)
    return config


# The reliability record: tests that feed bad input call bad_input_record(input class, case,
# outcome); tests that inject a fault call fault_record(fault, how injected, seconds, survived,
# data lost). With BERTPIPE_RELIABILITY_LOG set (scripts/reliability_tables.py sets it), each
# call appends a JSON line there; docs/RELIABILITY.md's tables are made from those lines.
RELIABILITY_LOG_ENV = "BERTPIPE_RELIABILITY_LOG"


def _reliability_recorder(request, table: str, fields):
    log_path = os.environ.get(RELIABILITY_LOG_ENV)

    def record(*values, **named) -> None:
        if log_path:
            entry = dict(zip(fields, values), **named, table=table, test=request.node.nodeid)
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    return record


@pytest.fixture
def bad_input_record(request):
    return _reliability_recorder(request, "bad input", ("class", "case", "outcome"))


@pytest.fixture
def fault_record(request):
    return _reliability_recorder(request, "faults",
                                 ("fault", "how", "seconds", "survived", "data_lost"))
