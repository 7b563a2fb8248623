"""The configuration in sections, its command-line flags, and where ExampleGen reads."""
import dataclasses

import pytest

from pipeline.cli import build_parser
from pipeline.config import SECTIONS, PipelineConfig
from pipeline.data_inputs import example_gen_inputs
from trainer.config import TrainerSettings, TrainingConfig


def test_every_setting_is_a_run_flag_with_the_same_default():
    args = build_parser().parse_args(["run", "--train-data", "x.csv", "--max-seq-length", "64",
                                      "--no-enable-cache", "--min-accuracy", "0.8"])
    from pipeline.cli import _config_from_args
    config = _config_from_args(args)
    assert config == PipelineConfig.from_settings(train_data="x.csv", max_seq_length=64,
                                                  enable_cache=False, min_accuracy=0.8)
    assert (config.model.max_seq_length, config.runtime.enable_cache,
            config.evaluation.min_accuracy) == (64, False, 0.8)
    assert build_parser().parse_args(["run", "--data", "y.tsv"]).train_data == "y.tsv"
    # Flat names are unique across sections: each is one flag.
    names = [field.name for _, field in PipelineConfig.fields()]
    assert len(names) == len(set(names)) == sum(
        len(dataclasses.fields(section)) for section in SECTIONS.values())


def test_replace_changes_one_section_and_validates_again():
    config = PipelineConfig.from_settings(train_data="x.csv")
    changed = config.replace(min_accuracy=0.9, epochs=3)
    assert changed.evaluation.min_accuracy == 0.9 and changed.training.epochs == 3
    assert (changed.data, changed.model, changed.serving, changed.runtime) == (
        config.data, config.model, config.serving, config.runtime)
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0"):
        config.replace(epochs=0)
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        config.replace(epoch=2)


def test_the_trainer_gets_its_training_section_and_nothing_of_evaluation_or_serving():
    config = PipelineConfig.from_settings(train_data="x.csv", epochs=2, model_name="m")
    custom_config = config.resolved().trainer_settings().to_custom_config()
    assert set(custom_config) == {"training", "text_feature", "label_feature",
                                  "max_seq_length", "backup_root"}
    assert custom_config["training"]["epochs"] == 2
    # Evaluation, serving and runtime settings do not reach the Trainer (its cache key).
    for other in (config.replace(min_accuracy=0.99), config.replace(serving_root="/srv"),
                  config.replace(model_name="other"), config.replace(beam_workers=2),
                  config.replace(image="x:1")):
        assert other.resolved().trainer_settings().to_custom_config() == custom_config
    assert config.replace(learning_rate=1e-4).resolved().trainer_settings() \
        .to_custom_config() != custom_config
    assert TrainerSettings.from_custom_config(
        dict(custom_config, pretrained_checkpoint="/c")) == config.resolved().trainer_settings()


def test_warm_start_is_on_for_span_data_unless_set():
    assert PipelineConfig.from_settings(train_data="x.csv").resolved().training.warm_start is False
    assert PipelineConfig.from_settings(
        train_data="in/span-{SPAN}/t.csv").resolved().training.warm_start is True
    assert PipelineConfig.from_settings(
        train_data="x.csv", warm_start=True).resolved().training.warm_start is True


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="train_data is required"):
        PipelineConfig.from_settings()
    with pytest.raises(ValueError, match="data_format must be one of"):
        PipelineConfig.from_settings(train_data="x", data_format="xlsx")
    with pytest.raises(ValueError, match="both 'text'"):
        PipelineConfig.from_settings(train_data="x", label_column="text")
    with pytest.raises(ValueError, match="distribution must be one of"):
        TrainingConfig(distribution="horovod")
    with pytest.raises(ValueError, match="label_values has duplicates"):
        PipelineConfig.from_settings(train_data="x", label_values=["a", "a"])
    for steps in ([5], [0, 2], [4, 3], [1, 2, 3]):
        with pytest.raises(ValueError, match=r"profile_steps must be two steps FIRST LAST"):
            TrainingConfig(profile_steps=steps)
    # From the command line, and back from the Trainer's JSON custom_config, as a tuple.
    config = PipelineConfig.from_settings(train_data="x", profile_steps=[5, 8])
    assert config.training.profile_steps == (5, 8)
    assert TrainingConfig.from_dict(config.training.to_dict()).profile_steps == (5, 8)


def test_separate_files_become_input_splits(tmp_path):
    config = PipelineConfig.from_settings(train_data=str(tmp_path / "d" / "train.tsv"),
                                          eval_data=str(tmp_path / "d" / "dev.tsv")).resolved()
    base, input_config, output_config = example_gen_inputs(config.data)
    assert base == str(tmp_path / "d")
    assert [(s.name, s.pattern) for s in input_config.splits] == [("train", "train.tsv"),
                                                                   ("eval", "dev.tsv")]
    assert not output_config.split_config.splits


def test_one_file_is_hash_split_and_span_patterns_keep_their_base(tmp_path):
    config = PipelineConfig.from_settings(
        train_data=str(tmp_path / "spans" / "span-{SPAN}" / "*.csv"), train_buckets=9,
        eval_buckets=1).resolved()
    base, input_config, output_config = example_gen_inputs(config.data)
    assert base == str(tmp_path / "spans")
    assert input_config.splits[0].pattern == "span-{SPAN}/*.csv"
    assert [(s.name, s.hash_buckets) for s in output_config.split_config.splits] == [
        ("train", 9), ("eval", 1)]


def test_a_local_directory_is_read_whole(tmp_path):
    from pipeline.local_inputs import prepare_local_run
    (tmp_path / "data").mkdir()
    config = PipelineConfig.from_settings(train_data=str(tmp_path / "data"),
                                          checkpoint=str(_checkpoint(tmp_path)),
                                          max_seq_length=32)
    base, input_config, _ = example_gen_inputs(prepare_local_run(config).data)
    assert (base, input_config.splits[0].pattern) == (str(tmp_path / "data"), "*")


def _checkpoint(tmp_path):
    """The tiny checkpoint: 64 position embeddings, so max_seq_length at most 64."""
    from conftest import write_tiny_checkpoint
    return write_tiny_checkpoint(tmp_path / "checkpoint")


def test_local_preparation_reads_label_values_from_a_local_schema(tmp_path):
    from conftest import REPO_ROOT
    from pipeline.local_inputs import prepare_local_run
    config = PipelineConfig.from_settings(
        train_data="x.csv", schema_path=str(REPO_ROOT / "schemas" / "demo.pbtxt"),
        checkpoint=str(_checkpoint(tmp_path)), max_seq_length=32)
    assert prepare_local_run(config).data.label_values == ("negative", "positive")
    assert prepare_local_run(config.replace(label_values=["b", "a"])).data.label_values == (
        "b", "a")
    with pytest.raises(ValueError, match=r"schema_path \(--schema-path\) .*none.pbtxt: no such"):
        prepare_local_run(config.replace(schema_path=str(tmp_path / "none.pbtxt")))


def test_beam_settings_become_beam_args():
    def args(**settings):
        return PipelineConfig.from_settings(train_data="x", **settings).runtime.beam_pipeline_args
    assert args() == ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert args(beam_workers=2, beam_args=["--x=1"]) == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=2", "--x=1"]
    assert args(beam_runner="dataflow", gcp_project="p", gcp_region="europe-west4",
                beam_temp_location="gs://b/tmp", image="europe-docker.pkg.dev/p/r/bertpipe:1") == [
        "--runner=DataflowRunner", "--project=p", "--region=europe-west4",
        "--temp_location=gs://b/tmp", "--sdk_container_image=europe-docker.pkg.dev/p/r/bertpipe:1",
        "--experiments=use_runner_v2"]
    with pytest.raises(ValueError, match="'dataflow' needs gcp_project, beam_temp_location"):
        args(beam_runner="dataflow", gcp_region="r")


def test_span_settings_are_checked():
    with pytest.raises(ValueError, match="span_window 3 needs a train_data pattern with {SPAN}"):
        PipelineConfig.from_settings(train_data="x.csv", span_window=3)
    with pytest.raises(ValueError, match="eval_data does not"):
        PipelineConfig.from_settings(train_data="s-{SPAN}/train.csv", eval_data="dev.csv")
    with pytest.raises(ValueError, match=r"--retrain-on drift compares each new span with the "
                                         r"previous one: --train-data needs a \{SPAN\}"):
        PipelineConfig.from_settings(train_data="x.csv", retrain_on="drift", drift_action="warn")
    with pytest.raises(ValueError, match="so drift cannot also stop it: add --drift-action warn "
                                         "\\(it is 'stop-push'\\)"):
        PipelineConfig.from_settings(train_data="s-{SPAN}/train.csv", retrain_on="drift")
    with pytest.raises(ValueError, match=r"--max-truncated-share must be between 0 and 1"):
        PipelineConfig.from_settings(train_data="x.csv", max_truncated_share=5)
    with pytest.raises(ValueError, match=r"text_anomalies must be one of"):
        PipelineConfig.from_settings(train_data="x.csv", text_anomalies="ignore")


def test_command_line_reports_a_bad_setting_without_a_traceback(capsys):
    from pipeline.cli import main
    assert main(["run", "--data", "x.csv", "--epochs", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: epochs must be at least 1, got 0"
