"""The configuration object, its command-line flags, and where ExampleGen reads."""
import os

import pytest

from pipeline.cli import build_parser
from pipeline.config import PipelineConfig
from pipeline.data_inputs import example_gen_inputs


def test_every_config_field_is_a_run_flag_with_the_same_default():
    args = build_parser().parse_args(["run", "--train-data", "x.csv", "--max-seq-length", "64",
                                      "--no-enable-cache"])
    config = PipelineConfig(**{k: v for k, v in vars(args).items()
                               if k in PipelineConfig.__dataclass_fields__})
    assert config == PipelineConfig(train_data="x.csv", max_seq_length=64, enable_cache=False)
    assert build_parser().parse_args(["run", "--data", "y.tsv"]).train_data == "y.tsv"


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="train_data is required"):
        PipelineConfig()
    with pytest.raises(ValueError, match="data_format must be one of"):
        PipelineConfig(train_data="x", data_format="xlsx")
    with pytest.raises(ValueError, match="both 'text'"):
        PipelineConfig(train_data="x", label_column="text")


def test_separate_files_become_input_splits(tmp_path):
    config = PipelineConfig(train_data=str(tmp_path / "d" / "train.tsv"),
                            eval_data=str(tmp_path / "d" / "dev.tsv")).resolved()
    base, input_config, output_config = example_gen_inputs(config)
    assert base == str(tmp_path / "d")
    assert [(s.name, s.pattern) for s in input_config.splits] == [("train", "train.tsv"),
                                                                   ("eval", "dev.tsv")]
    assert not output_config.split_config.splits


def test_one_file_is_hash_split_and_span_patterns_keep_their_base(tmp_path):
    config = PipelineConfig(train_data=str(tmp_path / "spans" / "span-{SPAN}" / "*.csv"),
                            train_buckets=9, eval_buckets=1).resolved()
    base, input_config, output_config = example_gen_inputs(config)
    assert base == str(tmp_path / "spans")
    assert input_config.splits[0].pattern == os.path.join("span-{SPAN}", "*.csv")
    assert [(s.name, s.hash_buckets) for s in output_config.split_config.splits] == [
        ("train", 9), ("eval", 1)]


def test_beam_settings_become_beam_args():
    assert PipelineConfig(train_data="x").beam_pipeline_args == [
        "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert PipelineConfig(train_data="x", beam_workers=2, beam_args=["--x=1"]
                          ).beam_pipeline_args == ["--direct_running_mode=multi_processing",
                                                   "--direct_num_workers=2", "--x=1"]
    dataflow = PipelineConfig(train_data="x", beam_runner="dataflow", gcp_project="p",
                              gcp_region="europe-west4", beam_temp_location="gs://b/tmp",
                              image="europe-docker.pkg.dev/p/r/bertpipe:1")
    assert dataflow.beam_pipeline_args == [
        "--runner=DataflowRunner", "--project=p", "--region=europe-west4",
        "--temp_location=gs://b/tmp", "--sdk_container_image=europe-docker.pkg.dev/p/r/bertpipe:1",
        "--experiments=use_runner_v2"]
    with pytest.raises(ValueError, match="'dataflow' needs gcp_project, beam_temp_location"):
        PipelineConfig(train_data="x", beam_runner="dataflow", gcp_region="r")


def test_span_settings_are_checked():
    with pytest.raises(ValueError, match="span_window 3 needs a train_data pattern with {SPAN}"):
        PipelineConfig(train_data="x.csv", span_window=3)
    with pytest.raises(ValueError, match="eval_data does not"):
        PipelineConfig(train_data="s-{SPAN}/train.csv", eval_data="dev.csv")


def test_command_line_reports_a_bad_setting_without_a_traceback(capsys):
    from pipeline.cli import main
    assert main(["run", "--data", "x.csv", "--epochs", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: epochs must be at least 1, got 0"
