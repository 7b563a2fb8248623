"""The whole pipeline, ExampleGen to ServingPusher, on the demo data with a tiny BERT: only
blessed models are pushed, versions increase, and the pushed model answers raw text."""
import dataclasses
import json
import os
import subprocess
import sys

from pipeline import local_runner, report, run_summary


def versions(config):
    model_dir = os.path.join(config.resolved().serving_model_root, config.model_name)
    return sorted(name for name in os.listdir(model_dir) if name.isdigit()) \
        if os.path.isdir(model_dir) else []


def test_blessed_models_are_pushed_as_new_versions_and_others_are_not(demo_first_run):
    def run(**thresholds):
        config = dataclasses.replace(demo_first_run, **thresholds)  # cached data half
        local_runner.run(config)
        return config

    config = demo_first_run  # blessed (min_accuracy 0)
    assert versions(config) == ["1"]
    run_dir = report.run_dir_of(config)  # other tests may have run in it since: the first run
    summary = run_summary.describe_run(report.read_run(run_dir, report.run_ids(run_dir)[0]))
    assert "model blessed: yes" in summary and "(version 1)" in summary

    config = run(min_accuracy=1.01, max_accuracy_drop=1.0)  # no model can reach this
    assert versions(config) == ["1"]
    assert "model blessed: no" in run_summary.describe_latest_run(config)

    config = run(min_accuracy=0.0, max_accuracy_drop=1.0)
    assert versions(config) == ["1", "2"]

    serving_root = config.resolved().serving_model_root
    assert "text_classifier" in open(os.path.join(serving_root, "models.config")).read()
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "bertpipe"), "predict", "--model",
         os.path.join(serving_root, config.model_name), "a lovely stay", "cold food"],
        capture_output=True, text=True, check=True)
    predictions = json.loads(result.stdout)
    assert [p["text"] for p in predictions] == ["a lovely stay", "cold food"]
    for prediction in predictions:
        assert prediction["label"] in ("negative", "positive")
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-5
