"""Never push a model worse than the one being served, whoever pushed it (issue 19).

Two pipelines with their own ML Metadata push into one serving root, as `make demo` and `make
retrain` do. Their models are trained with a tiny BERT on sentences whose label a keyword
decides ("great"/"good": positive, "bad": negative), so their quality is set by the training
labels, not by chance: correct labels learn the rule (accuracy near 1), labels with "good"
marked negative learn a third of the eval set wrong, flipped labels learn the opposite
(accuracy near 0).
"""
import csv
import random
import shutil

import pytest
import tensorflow as tf

from components import pusher
from components.pusher import (NOT_PUSHED_REASON_PROPERTY, SERVED_FINGERPRINT_PROPERTY,
                               SERVED_VERSION_PROPERTY, served_version)
from components.served_baseline import (REPLACES_PROPERTY, SERVED_PATH_PROPERTY,
                                        ServedBaselineError, evaluation_problems)
from conftest import REPO_ROOT, TINY_VOCAB_FLAGS
from pipeline import cli, run_artifacts, runs
from pipeline.config import PipelineConfig
from serving.contract import version_numbers

_FILLERS = ("the", "movie", "was", "a", "cafe", "!", ".", "don")
_KEYWORDS = {"great": "positive", "good": "positive", "bad": "negative"}
_FLIP = {"positive": "negative", "negative": "positive"}


def keyword_rows(count, seed, mislabel=()):
    """(text, label) rows; the label of a row whose keyword is in `mislabel` is flipped."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        keyword = list(_KEYWORDS)[index % len(_KEYWORDS)]
        words = rng.sample(_FILLERS, 3) + [keyword]
        rng.shuffle(words)
        label = _KEYWORDS[keyword]
        rows.append((" ".join(words), _FLIP[label] if keyword in mislabel else label))
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keyword_data")
    return {
        "eval": write_csv(directory / "eval.csv", keyword_rows(60, seed=1)),
        "good": write_csv(directory / "good.csv", keyword_rows(480, seed=2)),
        "fair": write_csv(directory / "fair.csv", keyword_rows(480, seed=2, mislabel={"good"})),
        "bad": write_csv(directory / "bad.csv",
                         keyword_rows(480, seed=2, mislabel=set(_KEYWORDS))),
    }


def run_pipeline(capsys, name, output_dir, serving_root, train_data, eval_data, checkpoint,
                 extra=()):
    """`bertpipe run` as a user runs it; (exit status, what it printed, the run)."""
    capsys.readouterr()
    status = cli.main([
        "run", "--train-data", train_data, "--eval-data", eval_data,
        "--schema-path", str(REPO_ROOT / "schemas" / "demo.pbtxt"), "--checkpoint",
        str(checkpoint), "--max-seq-length", "16", "--epochs", "3", "--train-batch-size", "16",
        "--learning-rate", "1e-2", "--pooling", "mean", "--min-accuracy", "0",
        "--pipeline-name", name, "--output-dir", str(output_dir),
        "--serving-root", str(serving_root), *TINY_VOCAB_FLAGS, *extra])
    config = PipelineConfig.from_settings(train_data=train_data, pipeline_name=name,
                                          output_dir=str(output_dir))
    printed = capsys.readouterr()
    return status, printed.out + printed.err, runs.read_run(config.resolved().run_dir)


def accuracy(run):
    return run_artifacts.overall_metrics(
        run.artifact("Evaluator", "evaluation").uri)["sparse_categorical_accuracy"]


class Story:
    """Pipelines "a" and "b" (each with its own ML Metadata) pushing into one serving root."""

    def __init__(self, capsys, checkpoint, data, directory):
        self.capsys, self.checkpoint, self.data = capsys, checkpoint, data
        self.directory = directory
        self.serving_root = directory / "serving"
        self.model_dir = self.serving_root / "text_classifier"

    def run(self, pipeline, train, extra=()):
        return run_pipeline(self.capsys, pipeline, self.directory / pipeline, self.serving_root,
                            self.data[train], self.data["eval"], self.checkpoint, extra)

    def versions(self):
        return version_numbers(str(self.model_dir))


@pytest.fixture(scope="module")
def story(tiny_bert, data, tmp_path_factory):
    return {"directory": tmp_path_factory.mktemp("served_baseline"), "checkpoint": tiny_bert,
            "data": data}


def test_a_model_worse_than_the_served_one_is_not_pushed_whoever_pushed_that(story, capsys):
    story = Story(capsys, story["checkpoint"], story["data"], story["directory"])
    model_dir = story.model_dir

    # Pipeline "a" pushes a fair model: version 1.
    status, out, first = story.run("a", "fair")
    assert status == 0, out
    fair_accuracy = accuracy(first)
    assert 0.5 < fair_accuracy < 0.8, out  # the "good" third of the eval set is wrong
    assert "compared with: nothing is served yet" in out
    assert story.versions() == [1]

    # Pipeline "b", with ML Metadata of its own, trains a worse model: compared with
    # version 1, not pushed, and the summary says so with both accuracies.
    status, out, worse = story.run("b", "bad")
    assert status == 0, out
    bad_accuracy = accuracy(worse)
    assert bad_accuracy < fair_accuracy - 0.2, out
    assert f"compared with: served version 1 ({model_dir}/1)" in out
    assert (f"not pushed: worse than served version 1 (accuracy {bad_accuracy:.4f} vs "
            f"{fair_accuracy:.4f})") in out
    baseline = worse.artifact("ServedBaseline", "baseline")
    assert baseline.get_int_custom_property(SERVED_VERSION_PROPERTY) == 1
    # Imported into the run, so ML Metadata keeps what the model was compared with.
    assert tf.io.gfile.exists(f"{baseline.uri}/Format-Serving/saved_model.pb")
    assert worse.artifact("Evaluator", "evaluation") is not None
    assert story.versions() == [1]


@pytest.mark.slow
def test_a_better_model_of_another_pipeline_and_a_served_model_that_cannot_be_compared(
        story, capsys):
    """Goes on in the serving root of the test above (which must have run): a version written
    by hand, a better model of the other pipeline, a served model that cannot be compared."""
    story = Story(capsys, story["checkpoint"], story["data"], story["directory"])
    model_dir = story.model_dir
    assert story.versions() == [1], "runs after the test above"
    worse = runs.read_run(str(story.directory / "b" / "b"))

    # A version written by hand (TFX's stock layout: a numbered SavedModel directory) is what
    # TF Serving serves now, so it is the baseline: a rerun of "a" with nothing else changed
    # reuses its Trainer but reads what is served again, is compared with version 2, and
    # pushes its model as version 3.
    shutil.copytree(worse.artifact("Trainer", "model").uri + "/Format-Serving",
                    model_dir / "2")
    status, out, rerun = story.run("a", "fair")
    assert status == 0, out
    assert rerun.get("Trainer").state == "CACHED"
    assert rerun.get("ServedBaseline").state == "COMPLETE"
    assert f"compared with: served version 2 ({model_dir}/2)" in out
    assert "model blessed: yes" in out
    assert f"pushed model: {model_dir}/3 (version 3)" in out
    assert story.versions() == [1, 2, 3]
    served = runs.read_run(str(story.directory / "a" / "a"))

    # Pipeline "b" trains a better model: blessed against version 3 and pushed as version 4.
    status, out, better = story.run("b", "good")
    assert status == 0, out
    assert accuracy(better) > accuracy(served) + 0.2, out
    assert f"compared with: served version 3 ({model_dir}/3)" in out
    assert "model blessed: yes" in out and f"pushed model: {model_dir}/4 (version 4)" in out
    assert story.versions() == [1, 2, 3, 4]

    # A served version the Evaluator cannot call (no serving_examples / eval_features): the
    # run stops before the Evaluator and says how to go on; the override is recorded.
    class Plain(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, text):
            return {"label": text}
    module = Plain()
    tf.saved_model.save(module, str(model_dir / "5"),
                        signatures={"serving_default": module.serve})
    status, out, stopped = story.run("b", "good")
    assert status == 2, out
    assert (f"error: The served version 5 ({model_dir}/5) cannot be evaluated against the new "
            "model: it lacks the signature(s) ['serving_examples', 'eval_features']") in out
    assert "run again with --allow-replace-served" in out
    assert stopped.get("ServedBaseline").state == "FAILED"
    assert stopped.get("Evaluator") is None
    assert story.versions() == [1, 2, 3, 4, 5]

    status, out, replaced = story.run("b", "good", extra=["--allow-replace-served"])
    assert status == 0, out
    assert replaced.get("Trainer").state == "CACHED"
    assert replaced.artifact("ServedBaseline", "baseline").get_int_custom_property(
        REPLACES_PROPERTY) == 5
    assert "served version 5 could not be evaluated; --allow-replace-served" in out
    assert f"pushed model: {model_dir}/6 (version 6)" in out
    assert story.versions() == [1, 2, 3, 4, 5, 6]
