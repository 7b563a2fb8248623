"""Data quality of the tokenized text through the real pipeline, on crafted spans of SST-2.

The data half (ExampleGen to the text checks) runs on four spans in turn, with the packaged
MiniLM vocabulary: an unchanged span passes every check; a span whose label balance flips is
stopped by the drift check; a span of texts three times longer than max_seq_length and of
strings outside the vocabulary is stopped by the bounds on truncation and [UNK]. Every message
names the feature, the split and span, the measured value and the bound. That drift stops the
push when the whole pipeline runs is tested in test_retraining.py.
"""
import random
import re

import pytest
from tensorflow_data_validation.utils import anomalies_util

from components.validation_gate import DataValidationError, describe_anomalies
from conftest import REPO_ROOT, read_tsv, write_tsv
from pipeline import local_runner, report, run_artifacts, runs
from pipeline.config import PipelineConfig
from preprocessing.features import LABEL_NAME, TOKEN_COUNT, TRUNCATED, UNKNOWN_TOKEN_SHARE

MAX_SEQ_LENGTH = 64
SPAN_ROWS = 400
# Scripts the BERT vocabulary has no pieces for: every word becomes [UNK].
UNKNOWN_SCRIPTS = ("\U00013000", "\u16a0", "\u2d30", "\U00010330")


def unknown_words(rng, count):
    words = []
    for _ in range(count):
        base = ord(rng.choice(UNKNOWN_SCRIPTS))
        words.append("".join(chr(base + rng.randrange(20)) for _ in range(rng.randint(2, 6))))
    return " ".join(words)


@pytest.fixture(scope="module")
def spans(sst2_dir, tmp_path_factory):
    """span-N/train.tsv and eval.tsv of SST-2 rows; span 3's label balance flipped, span 4's
    train texts three times the token budget and its eval texts outside the vocabulary."""
    directory = tmp_path_factory.mktemp("incoming")
    header, *train = read_tsv(sst2_dir / "train.tsv")
    _, *dev = read_tsv(sst2_dir / "dev.tsv")
    positive = [row for row in train[2 * SPAN_ROWS:] if row[1] == "1"]
    negative = [row for row in train[2 * SPAN_ROWS:] if row[1] == "0"]
    rng = random.Random(15)
    long_texts = []
    for start in range(0, 80 * 40, 40):  # 40 sentences each: ~3 x 64 tokens and more
        sentences = [row[0].strip() for row in train[start:start + 40]]
        long_texts.append([" ".join(sentences) + " ", train[start][1]])
    span_rows = {
        1: (train[:SPAN_ROWS], dev[:100]),
        2: (train[SPAN_ROWS:2 * SPAN_ROWS], dev[100:200]),  # the same distribution
        # SST-2 is about 55% positive; this span is 10% positive, its eval split 5%.
        3: (positive[:40] + negative[:360], positive[40:45] + negative[360:455]),
        4: (long_texts, [[unknown_words(rng, rng.randint(3, 12)) + " ", row[1]]
                         for row in dev[200:280]]),
    }
    for span, (train_rows, eval_rows) in span_rows.items():
        (directory / f"span-{span}").mkdir()
        write_tsv(directory / f"span-{span}" / "train.tsv", [header] + train_rows)
        write_tsv(directory / f"span-{span}" / "eval.tsv", [header] + eval_rows)
    return directory


def config_for(spans, output_dir, **settings):
    return PipelineConfig.from_settings(
        train_data=str(spans / "span-{SPAN}" / "train.tsv"),
        eval_data=str(spans / "span-{SPAN}" / "eval.tsv"), text_column="sentence",
        schema_path=str(REPO_ROOT / "schemas" / "sst2.pbtxt"), max_seq_length=MAX_SEQ_LENGTH,
        output_dir=str(output_dir), train=False, **settings)


def hide_spans_after(spans, span):
    """TFX reads the newest span: the later spans are renamed out of the pattern."""
    for directory in spans.iterdir():
        number = int(directory.name.rsplit("-", 1)[1])
        target = spans / (f"span-{number}" if number <= span else f"later-{number}")
        if directory != target:
            directory.rename(target)


def drift_measurements(run):
    """{(split pair, feature): (measured, threshold)} of the run's DriftValidator."""
    anomalies = run.artifact("DriftValidator", "anomalies")
    found = {}
    for split_pair in ("train_train", "eval_eval"):
        path = f"{anomalies.uri}/SplitPair-{split_pair}/SchemaDiff.pb"
        for info in anomalies_util.load_anomalies_binary(path).drift_skew_info:
            for measurement in info.drift_measurements:
                found[split_pair, ".".join(info.path.step)] = (measurement.value,
                                                               measurement.threshold)
    return found


def test_unchanged_span_passes_a_flipped_label_balance_drifts_long_and_unknown_texts_stop(
        spans, tmp_path):
    output_dir = tmp_path / "runs"
    config = config_for(spans, output_dir, drift_action="stop-run")

    hide_spans_after(spans, 1)
    local_runner.run(config)
    first = runs.read_run(config.resolved().run_dir)
    assert first.artifact("DriftValidator", "anomalies").get_json_value_custom_property(
        "blessed") == {"train": 2, "eval": 2}  # no earlier span: nothing to compare with
    described = run_artifacts.text_statistics(first.artifact("TextStatisticsGen", "statistics"))
    assert described["train"]["All Examples"]["texts"] > 250
    assert described["train"]["All Examples"][TRUNCATED] == 0
    assert described["train"]["All Examples"][UNKNOWN_TOKEN_SHARE] < 0.01
    assert set(described["train"]) == {"All Examples", "label_name_0", "label_name_1"}

    # An unchanged span: no anomaly in the bounds, no drift, and the measured distances small.
    hide_spans_after(spans, 2)
    local_runner.run(config)
    second = runs.read_run(config.resolved().run_dir)
    assert describe_anomalies(second.artifact("TextValidator", "anomalies")) == {}
    drift = second.artifact("DriftValidator", "anomalies")
    assert drift.span == 2
    assert drift.get_json_value_custom_property("blessed") == {"train_train": 1,
                                                               "eval_eval": 1}
    measured = drift_measurements(second)
    assert {feature for _, feature in measured} == {LABEL_NAME, "text_length", TOKEN_COUNT}
    assert all(value < threshold for value, threshold in measured.values()), measured

    # The label balance flips: the drift check stops the run before training.
    hide_spans_after(spans, 3)
    with pytest.raises(DataValidationError) as raised:
        local_runner.run(config)
    message = str(raised.value)
    assert message.startswith("Drift: the new span differs from the previous span")
    label_lines = [line for line in message.splitlines() if f"feature '{LABEL_NAME}'" in line]
    assert [line.split(":")[0].strip() for line in label_lines] == [
        "split 'eval' of span 3", "split 'train' of span 3"]
    assert "Linfty distance between current and previous is 0.4" in label_lines[1]
    assert "above the threshold 0.1" in label_lines[1]
    # The report puts the two spans' label shares side by side, with the distances.
    page = " ".join(re.sub(r"<[^>]+>", " ", report.render_report(
        config.resolved().run_dir)).split())
    text_section = page[page.index("Tokenized text and drift"):page.index("Tuning")]
    assert "span 3 against span 2" in text_section
    shares = re.search(r"label 0 ([\d.]+)% ([\d.]+)% label 1 ([\d.]+)% ([\d.]+)%",
                       text_section)
    assert shares, text_section
    before_negative, now_negative = float(shares.group(1)), float(shares.group(2))
    assert 35 < before_negative < 55 and now_negative > 85
    assert re.search(r"train label_name 0\.4\d\d 0\.100 drift", text_section), text_section

    # Texts three times the token budget (train) and outside the vocabulary (eval).
    hide_spans_after(spans, 4)
    with pytest.raises(DataValidationError) as raised:
        local_runner.run(config.replace(drift_action="warn"))
    message = str(raised.value)
    assert message.startswith("Text validation failed")
    lines = [line.strip() for line in message.splitlines() if line.startswith("  split")]
    assert lines == [
        f"split 'eval' of span 4: feature '{UNKNOWN_TOKEN_SHARE}': the mean share of [UNK] "
        "among a text's tokens must be at most 0.01 (--max-unknown-token-share), measured 1",
        f"split 'train' of span 4: feature '{TRUNCATED}': the share of texts cut at "
        "max_seq_length must be at most 0.05 (--max-truncated-share), measured 1",
    ], message


def test_the_validators_take_their_settings_as_json_strings_as_kubeflow_hands_them_over(
        tmp_path):
    """KFP v2's container entrypoint gives proto settings to executors as JSON strings (a
    stand-in here: the executors called as that entrypoint calls them, on real statistics)."""
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.proto_settings import (RETRAIN_PROPERTY, _BoundsExecutor,
                                           _DriftExecutor)
    from pipeline.config import QualityConfig
    from pipeline.data_quality import drift_config, text_bounds

    def statistics(name, frame, span):
        artifact = standard_artifacts.ExampleStatistics()
        artifact.uri = str(tmp_path / name)
        artifact.split_names = '["train"]'
        artifact.span = span
        (tmp_path / name / "Split-train").mkdir(parents=True)
        generated = tfdv.generate_statistics_from_dataframe(frame)
        generated.datasets[0].name = "All Examples"  # as TextStatisticsGen's sliced statistics
        (tmp_path / name / "Split-train" / "FeatureStats.pb").write_bytes(
            generated.SerializeToString())
        return artifact

    balanced = pd.DataFrame({LABEL_NAME: ["0", "1"] * 50, TOKEN_COUNT: list(range(100)),
                             "text_length": list(range(100)), TRUNCATED: [0] * 100,
                             UNKNOWN_TOKEN_SHARE: [0.0] * 100})
    flipped = balanced.assign(**{LABEL_NAME: ["1"] * 100, TRUNCATED: [1] * 100})
    previous, current = statistics("previous", balanced, 1), statistics("current", flipped, 2)

    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "drift")
    result = _DriftExecutor().Do(
        {"statistics": [current], "baseline_statistics": [previous]}, {"anomalies": [anomalies]},
        {"distribution_validator_config": proto_utils.proto_to_json(
            drift_config(QualityConfig())), "include_split_pairs": "null"})
    assert result.output_artifacts["anomalies"].artifacts[0].custom_properties[
        RETRAIN_PROPERTY].int_value == 1
    assert "feature 'label_name'" in describe_anomalies(anomalies)["train"][0]

    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    (tmp_path / "schema").mkdir()
    tfdv.write_schema_text(tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(flipped)),
                           str(tmp_path / "schema" / "schema.pbtxt"))
    bounds = standard_artifacts.ExampleAnomalies()
    bounds.uri = str(tmp_path / "bounds")
    _BoundsExecutor().Do(
        {"statistics": [current], "schema": [schema]}, {"anomalies": [bounds]},
        {"custom_validation_config": proto_utils.proto_to_json(text_bounds(QualityConfig())),
         "exclude_splits": "[]"})
    assert describe_anomalies(bounds, current) == {"train": [
        f"feature '{TRUNCATED}': the share of texts cut at max_seq_length must be at most 0.05 "
        "(--max-truncated-share), measured 1"]}
