"""The whole pipeline, ExampleGen to ServingPusher, on the demo data with a tiny BERT: a changed
blessing threshold reuses the cached Trainer and reruns the Evaluator, only blessed models are
pushed, the same model is not pushed twice, a changed training setting trains and pushes a new
version, and the pushed model answers raw text."""
import json
import os
import subprocess
import sys

from pipeline import local_runner, run_summary, runs
from serving.contract import version_numbers


def versions(config):
    return version_numbers(config.resolved().model_dir)


def test_threshold_changes_reuse_the_trainer_and_only_new_blessed_models_are_pushed(
        demo_first_run):
    def run(**settings):
        config = demo_first_run.replace(**settings)
        local_runner.run(config)
        return config, runs.read_run(config.run_dir)

    config = demo_first_run  # blessed (min_accuracy 0)
    assert versions(config) == [1]
    # Other tests may have run in the directory since: the first run is read by its id.
    first = runs.read_run(config.run_dir, runs.run_ids(config.run_dir)[0])
    summary = run_summary.describe_run(first)
    assert "model blessed: yes" in summary and "(version 1)" in summary

    # Only the threshold changed: Transform and the Trainer are cached, the Evaluator reruns.
    config, second = run(min_accuracy=1.01, max_accuracy_drop=1.0)  # no model reaches this
    assert second.get("Transform").state == "CACHED"
    assert second.get("Trainer").state == "CACHED"
    assert second.get("Evaluator").state == "COMPLETE"
    assert second.artifact("Trainer", "model").uri == first.artifact("Trainer", "model").uri
    summary = run_summary.describe_run(second)
    assert "model blessed: no" in summary
    assert "cached (inputs and settings unchanged, outputs reused): " in summary
    assert "Trainer" in summary.split("cached (")[1].splitlines()[0]
    assert versions(config) == [1]

    # Blessed again, but it is the model version 1 already serves: no second copy.
    config, third = run(min_accuracy=0.0, max_accuracy_drop=1.0)
    assert third.get("Trainer").state == "CACHED"
    # What is served (version 1) did not change since the second run: nothing to read again.
    assert third.get("ServedBaseline").state == "CACHED"
    assert "already serving model: " in run_summary.describe_run(third)
    assert versions(config) == [1]

    # A training setting changed: the Trainer trains, and the new model is pushed.
    config, fourth = run(min_accuracy=0.0, max_accuracy_drop=1.0, seed=7)
    assert fourth.get("Trainer").state == "COMPLETE"
    assert versions(config) == [1, 2]

    serving_root = config.resolved().serving_model_root
    assert "text_classifier" in open(os.path.join(serving_root, "models.config")).read()
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "bertpipe"), "predict", "--model",
         config.resolved().model_dir, "a lovely stay", "cold food"],
        capture_output=True, text=True, check=True)
    predictions = json.loads(result.stdout)
    assert [p["text"] for p in predictions] == ["a lovely stay", "cold food"]
    for prediction in predictions:
        assert prediction["label"] in ("negative", "positive")
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-5
