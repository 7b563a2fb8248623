"""The `bertpipe` command: run the pipeline, check the tokenizer, show what is installed.

Every PipelineConfig field is a `bertpipe run` flag (--train-data, --max-seq-length, ...), made
from the dataclass itself, so the command line and the config cannot disagree.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing
import warnings
from typing import List, Optional

from pipeline.config import ConfigError, PipelineConfig

# Errors users cause and can fix: printed as a message, exit status 2, no traceback.
_EXIT_USER_ERROR = 2
_EXIT_MISMATCH = 1


_FLAG_ALIASES = {"train_data": ["--data"]}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(PipelineConfig)
    for field in dataclasses.fields(PipelineConfig):
        flags = ["--" + field.name.replace("_", "-"), *_FLAG_ALIASES.get(field.name, [])]
        hint = hints[field.name]
        default = (field.default_factory() if field.default_factory is not dataclasses.MISSING
                   else field.default)
        if hint is bool:
            parser.add_argument(*flags, dest=field.name, default=default,
                                action=argparse.BooleanOptionalAction)
        elif hint == List[str]:
            parser.add_argument(*flags, dest=field.name, default=default, nargs="*",
                                help=f"default: {' '.join(default)}")
        else:
            parser.add_argument(*flags, dest=field.name, type=hint, default=default,
                                help=f"default: {default!r}")


def _config_from_args(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig(**{field.name: getattr(args, field.name)
                             for field in dataclasses.fields(PipelineConfig)})


def _user_errors():
    from components.serving_check import ServingCheckError
    from components.text_example_gen import InputDataError
    from components.validation_gate import DataValidationError
    from preprocessing.checkpoint import CheckpointError
    return (ConfigError, InputDataError, DataValidationError, CheckpointError,
            ServingCheckError)


def find_user_error(error: BaseException) -> Optional[BaseException]:
    """The user-facing error behind `error`, also when Beam or TFX wrapped it."""
    user_errors = _user_errors()
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, user_errors):
            return error
        error = error.__cause__ or error.__context__
    return None


def command_run(args: argparse.Namespace) -> int:
    from pipeline import local_runner, run_summary, spans
    config = _config_from_args(args)
    nothing_to_do = spans.already_processed(config)
    if nothing_to_do:
        print(nothing_to_do)
        return 0
    local_runner.run(config)
    print(f"pipeline root: {config.resolved().pipeline_root}")
    for component, seconds in run_summary.component_wall_times(config).items():
        print(f"  {component:<30} {seconds:8.1f} s")
    summary = run_summary.describe_latest_run(config)
    if summary:
        print(summary)
    return 0


def command_compile(args: argparse.Namespace) -> int:
    from pipeline import kubeflow_v2_runner
    config = _config_from_args(args)
    try:
        job = kubeflow_v2_runner.compile_pipeline(config, args.output)
    except kubeflow_v2_runner.CloudConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return _EXIT_USER_ERROR
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    print(f"wrote {args.output} ({args.target}): pipeline {config.pipeline_name!r}, "
          f"{len(tasks)} tasks, image {config.image}, pipeline root "
          f"{job['runtimeConfig']['gcsOutputDirectory']}")
    return 0


def command_info(args: argparse.Namespace) -> int:
    from preprocessing.checkpoint import PACKAGED_CHECKPOINT_NAME, packaged_checkpoint_dir
    import tensorflow as tf
    import tfx
    print(f"packaged checkpoint: {packaged_checkpoint_dir()}  ({PACKAGED_CHECKPOINT_NAME})")
    print(f"tfx {tfx.__version__}, tensorflow {tf.__version__}")
    return 0


def command_check_tokenizer(args: argparse.Namespace) -> int:
    from components.text_example_gen import read_delimited_file
    from preprocessing import tokenizer_check
    from preprocessing.checkpoint import resolve_checkpoint
    checkpoint = resolve_checkpoint(args.checkpoint)
    texts, _ = read_delimited_file(args.data, args.text_column, None, args.data_format)
    mismatches = tokenizer_check.compare_with_transformers(
        checkpoint, texts, args.max_seq_length, args.transform_graph)
    print(f"{len(texts)} texts, {len(mismatches)} mismatches")
    if mismatches:
        print(tokenizer_check.format_mismatches(mismatches))
        return _EXIT_MISMATCH
    return 0


def command_predict(args: argparse.Namespace) -> int:
    import json
    from serving.predict import predict
    print(json.dumps(predict(args.model, args.texts), indent=2, ensure_ascii=False))
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    from components.text_example_gen import read_delimited_file
    from serving.predict import accuracy
    texts, labels = read_delimited_file(args.data, args.text_column, args.label_column)
    print(f"{len(texts)} examples, accuracy {accuracy(args.model, texts, labels):.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertpipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the pipeline locally (Beam DirectRunner)")
    _add_config_flags(run)
    run.set_defaults(handler=command_run)

    compile_parser = commands.add_parser(
        "compile", help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI "
                        "(every path a gs:// URI)")
    compile_parser.add_argument("--target", required=True, choices=["kubeflow-v2"])
    compile_parser.add_argument("--output", required=True,
                                help="the PipelineJob JSON to write (a .yaml file gets the "
                                     "bare PipelineSpec)")
    _add_config_flags(compile_parser)
    compile_parser.set_defaults(handler=command_compile)

    info = commands.add_parser("info", help="show the packaged checkpoint directory and versions")
    info.set_defaults(handler=command_info)

    check = commands.add_parser(
        "check-tokenizer",
        help="compare the Transform graph's tokenization with transformers' on a data file")
    check.add_argument("--checkpoint", default="",
                       help="checkpoint directory or hub id (default: the packaged MiniLM)")
    check.add_argument("--data", required=True, help="CSV/TSV file with a header row")
    check.add_argument("--text-column", default=None,
                       help="the column to tokenize (default: the first column)")
    check.add_argument("--data-format", default="auto")
    check.add_argument("--max-seq-length", type=int,
                       default=PipelineConfig.max_seq_length)
    check.add_argument("--transform-graph", default=None,
                       help="a Transform output of a pipeline run (default: build the graph "
                            "from preprocessing_fn with TF Transform)")
    check.set_defaults(handler=command_check_tokenizer)
    predict = commands.add_parser("predict", help="label raw texts with an exported model")
    predict.add_argument("--model", required=True,
                         help="a SavedModel, or <serving_root>/<model_name> (latest version)")
    predict.add_argument("texts", nargs="+", help="texts to classify")
    predict.set_defaults(handler=command_predict)

    evaluate = commands.add_parser("evaluate", help="accuracy of an exported model on a "
                                                    "labeled CSV/TSV file")
    evaluate.add_argument("--model", required=True,
                          help="a SavedModel, or <serving_root>/<model_name> (latest version)")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--text-column", default=PipelineConfig.text_column)
    evaluate.add_argument("--label-column", default=PipelineConfig.label_column)
    evaluate.set_defaults(handler=command_evaluate)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # TensorFlow's C++ start-up chatter and Google client deprecation notices bury the output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=FutureWarning)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if os.environ.get("BERTPIPE_VERBOSE") else
                        logging.WARNING)
    try:
        return args.handler(args)
    except Exception as error:  # pylint: disable=broad-except
        user_error = find_user_error(error)
        if user_error is None:
            raise
        print(f"error: {user_error}", file=sys.stderr)
        return _EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
