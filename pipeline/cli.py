"""The `bertpipe` command: run the pipeline, check the tokenizer, show what is installed.

Every setting of PipelineConfig's sections is a `bertpipe run` flag (--train-data,
--max-seq-length, ...), made from the dataclasses themselves and grouped by section in --help,
so the command line and the config cannot disagree.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing
from typing import List, Optional, Tuple

from pipeline import console
from pipeline.config import (SECTIONS, ConfigError, DataConfig, ModelConfig, PipelineConfig,
                             QualityConfig, ServingConfig, flag_of)

# Errors users cause and can fix: printed as a message, exit status 2, no traceback.
_EXIT_USER_ERROR = 2
_EXIT_MISMATCH = 1


_FLAG_ALIASES = {"train_data": ["--data"]}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, grouped by section in --help, with the section's default."""
    groups = {}
    for section, field in PipelineConfig.fields():
        if section not in groups:
            section_class = SECTIONS[section]
            groups[section] = parser.add_argument_group(
                f"{section} settings", (section_class.__doc__ or "").split("\n\n")[0])
        group = groups[section]
        hint = typing.get_type_hints(SECTIONS[section])[field.name]
        flags = [flag_of(field.name), *_FLAG_ALIASES.get(field.name, [])]
        default = (field.default_factory() if field.default_factory is not dataclasses.MISSING
                   else field.default)
        if hint in (bool, Optional[bool]):
            group.add_argument(*flags, dest=field.name, default=default,
                               action=argparse.BooleanOptionalAction,
                               help=_DEFAULT_HELP.get(field.name))
        elif hint in (Tuple[str, ...], Tuple[int, ...], Tuple[float, ...]):
            group.add_argument(*flags, dest=field.name, default=default, nargs="*",
                               type=typing.get_args(hint)[0],
                               help=f"default: {' '.join(map(str, default)) or '(none)'}")
        else:
            group.add_argument(*flags, dest=field.name, type=hint, default=default,
                               help=f"default: {default!r}")


# Settings whose default is a rule rather than a value.
_DEFAULT_HELP = {"warm_start": "default: on when --train-data has {SPAN} (retraining on new "
                               "spans), off otherwise (a rerun reuses the cached model)"}


def _config_from_args(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig.from_settings(**{field.name: getattr(args, field.name)
                                           for _, field in PipelineConfig.fields()})


def _user_errors():
    from components.pusher import PushError
    from components.served_baseline import ServedBaselineError
    from components.text_example_gen import InputDataError
    from components.validation_gate import DataValidationError
    from pipeline.cloud_jobs import CloudJobError
    from pipeline.gpu_check import GpuCheckError
    from pipeline.kubeflow_v2_runner import CloudConfigError
    from pipeline.runs import RunStoreError
    from preprocessing.checkpoint import CheckpointError
    from serving.client import ServingClientError
    from serving.contract import InvalidTextError
    from serving.errors import ServeError
    from serving.predict import LabelMismatchError
    from serving.servability import ServingCheckError
    return (ConfigError, CloudConfigError, CloudJobError, InputDataError, DataValidationError,
            CheckpointError, ServingCheckError, ServingClientError, ServeError, RunStoreError,
            GpuCheckError, ServedBaselineError, LabelMismatchError, InvalidTextError,
            PushError)


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


def _report_failed_run(config: PipelineConfig) -> None:
    """The report of a run that stopped (e.g. on bad data) shows where and why, if it can."""
    from pipeline import report
    try:
        print(f"report: {report.write_report(config.run_dir)}", file=sys.stderr)
    except Exception as error:  # pylint: disable=broad-except  (the run's error matters more)
        logging.warning("no report for the failed run: %s", error)


def command_run(args: argparse.Namespace) -> int:
    from pipeline import local_inputs, local_runner, report, run_summary, runs, spans
    config = local_inputs.prepare_local_run(_config_from_args(args))
    nothing_to_do = spans.already_processed(config)
    if nothing_to_do:
        print(nothing_to_do)
        return 0
    try:
        local_runner.run(config)
    except Exception:
        _report_failed_run(config)
        raise
    print(f"pipeline root: {config.pipeline_root}")
    run = runs.read_run(config.run_dir)
    print("\n".join(run_summary.component_lines(run)))
    summary = run_summary.describe_run(run)
    if summary:
        print(summary)
    print(f"report: {report.write_report(config.run_dir)}")
    return 0


def _print_resources(job, file=None) -> None:
    """The cloud resources a compiled pipeline asks for, one line per node (to stdout)."""
    import json
    from pipeline.cloud_jobs import describe_resources
    for node, resources in describe_resources(job).items():
        print(f"  {node}: {json.dumps(resources, sort_keys=True)}", file=file or sys.stdout)


def command_compile(args: argparse.Namespace) -> int:
    from pipeline import kubeflow_v2_runner
    config = _config_from_args(args)
    job = kubeflow_v2_runner.compile_pipeline(config, args.output)  # CloudConfigError: exit 2
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    print(f"wrote {args.output} ({args.target}): pipeline {config.runtime.pipeline_name!r}, "
          f"{len(tasks)} tasks, image {config.runtime.image}, pipeline root "
          f"{job['runtimeConfig']['gcsOutputDirectory']}")
    _print_resources(job)
    if config.runtime.train and not config.data.label_values:
        print("note: no --label-values: the Evaluator computes overall metrics only (per-class "
              "metrics need the label values in class order; a gs:// schema is not read when "
              "compiling)")
    return 0


def _job_spec(args: argparse.Namespace) -> str:
    """The PipelineJob JSON to send: --pipeline-spec, or the run flags compiled now."""
    if args.pipeline_spec:
        return args.pipeline_spec
    import tempfile
    from pipeline import kubeflow_v2_runner
    config = _config_from_args(args)
    path = os.path.join(tempfile.mkdtemp(prefix="bertpipe-"),
                        f"{config.runtime.pipeline_name}.json")
    kubeflow_v2_runner.compile_pipeline(config, path)
    return path


def _print_request(request, job_spec: str, dry_run: bool) -> None:
    import json
    from pipeline.cloud_jobs import load_pipeline_job
    print(json.dumps(request, indent=2, sort_keys=True))
    print("cloud resources of the pipeline's nodes:", file=sys.stderr)
    _print_resources(load_pipeline_job(job_spec), file=sys.stderr)
    print("dry run: the request above was checked and not sent" if dry_run else
          "sent", file=sys.stderr)


def command_submit(args: argparse.Namespace) -> int:
    from pipeline import cloud_jobs
    job_spec = _job_spec(args)
    request = cloud_jobs.submit_vertex(
        job_spec, args.gcp_project, args.gcp_region, enable_caching=args.enable_cache,
        service_account=args.service_account, job_id=args.job_id, dry_run=args.dry_run)
    _print_request(request, job_spec, args.dry_run)
    return 0


def command_schedule(args: argparse.Namespace) -> int:
    from pipeline import cloud_jobs
    common = dict(display_name=args.schedule_name, enable_caching=args.enable_cache,
                  service_account=args.service_account,
                  max_concurrent_runs=args.max_concurrent_runs, dry_run=args.dry_run)
    job_spec = _job_spec(args)
    if args.target == "vertex":
        request = cloud_jobs.schedule_vertex(job_spec, args.gcp_project,
                                             args.gcp_region, args.cron, **common)
    else:
        request = cloud_jobs.schedule_kubeflow(job_spec, args.kfp_host,
                                               args.kfp_experiment_id, args.cron, **common)
    _print_request(request, job_spec, args.dry_run)
    return 0


def _add_job_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline-spec", default="",
                        help="a PipelineJob JSON from `bertpipe compile`; without it the run "
                             "flags below are compiled first (every path a gs:// URI)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the arguments and print the request without sending it "
                             "(no network access, no credentials needed)")
    _add_config_flags(parser)


def command_info(args: argparse.Namespace) -> int:
    from preprocessing.checkpoint import PACKAGED_CHECKPOINT_NAME, packaged_checkpoint_dir
    import tensorflow as tf
    import tfx
    from pipeline.gpu_check import visible_devices
    from trainer import distribution
    print(f"packaged checkpoint: {packaged_checkpoint_dir()}  ({PACKAGED_CHECKPOINT_NAME})")
    print(f"tfx {tfx.__version__}, tensorflow {tf.__version__}")
    print(f"devices: {', '.join(visible_devices())}")
    print(f"--distribution auto: {distribution.choose_strategy_name('auto')}, "
          f"--mixed-precision auto: {distribution.choose_precision('auto')}")
    return 0


def command_gpu_check(args: argparse.Namespace) -> int:
    from pipeline import gpu_check
    return gpu_check.main(args.data, args.text_column, args.label_column, args.rows)


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
    if args.data is not None or args.output is not None:
        # Batch prediction of a file: a Beam job (serving/batch_predict.py).
        from pipeline.config import RuntimeConfig
        if args.texts:
            raise ConfigError(f"give either texts to classify or --data, not both (texts: "
                              f"{args.texts[:3]}{' ...' if len(args.texts) > 3 else ''})")
        if args.url:
            raise ConfigError("--data runs the model in a Beam job, which loads it from "
                              "files: give --model DIR, not --url")
        if args.data is None or args.output is None:
            raise ConfigError("--data FILE and --output FILE go together")
        # The Beam flags of the pipeline's own Beam components: the DirectRunner in this
        # process, or Dataflow with the pipeline image as the SDK container (ConfigError when
        # the project, region or temp location is missing).
        runtime = RuntimeConfig(beam_runner=args.beam_runner, gcp_project=args.gcp_project,
                                gcp_region=args.gcp_region,
                                beam_temp_location=args.beam_temp_location, image=args.image)
        from serving import batch_predict
        try:
            summary = batch_predict.predict_file(
                args.model, args.data, args.output, text_column=args.text_column,
                batch_size=args.batch_size, beam_args=runtime.beam_pipeline_args)
        except Exception as error:  # pylint: disable=broad-except
            user_error = batch_predict.find_batch_error(error)
            if user_error is None:
                raise
            print(f"error: {user_error}", file=sys.stderr)
            return _EXIT_USER_ERROR
        print(summary)
        return 0
    if not args.texts:
        raise ConfigError("give texts to classify, or --data FILE --output FILE to label a file")
    if args.url:
        from serving.client import connect
        client = connect(args.url, args.model_name, args.model_version, args.grpc)
        results = client.predict(args.texts)
        client.close()
    else:
        from serving.predict import predict
        results = predict(args.model, args.texts)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


def command_serve(args: argparse.Namespace) -> int:
    from serving import local_server, server_options
    local_server.run(server_options.options_from_args(args))
    return 0


def command_report(args: argparse.Namespace) -> int:
    from pipeline import report
    path = report.write_report(args.run_dir, args.output, args.run_id)  # RunStoreError: exit 2
    print(f"report: {path}")
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    from components.text_example_gen import read_delimited_file
    from serving.predict import accuracy
    texts, labels = read_delimited_file(args.data, args.text_column, args.label_column)
    value, warning = accuracy(args.model, texts, labels,
                              source=f"{args.data} (column {args.label_column!r})")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(texts)} examples, accuracy {value:.4f}")
    return 0


def command_skew(args: argparse.Namespace) -> int:
    from pipeline import skew
    return skew.main(args)  # prints its own errors: exit 2, skew: exit 1


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

    submit = commands.add_parser(
        "submit", help="start one run on Vertex AI Pipelines (--gcp-project, --gcp-region)")
    submit.add_argument("--target", required=True, choices=["vertex"])
    submit.add_argument("--job-id", default="", help="the run's id (default: generated)")
    _add_job_flags(submit)
    submit.set_defaults(handler=command_submit)

    schedule = commands.add_parser(
        "schedule", help="run the pipeline on a cron schedule: a Vertex AI schedule or a "
                         "Kubeflow Pipelines recurring run")
    schedule.add_argument("--target", required=True, choices=["vertex", "kubeflow"])
    schedule.add_argument("--cron", required=True,
                          help="five cron fields, e.g. '0 3 * * 1' (Mondays 03:00); Vertex "
                               "also takes a 'TZ=Europe/Berlin ' prefix")
    schedule.add_argument("--schedule-name", default="",
                          help="default: <pipeline name>-schedule")
    schedule.add_argument("--max-concurrent-runs", type=int, default=1)
    schedule.add_argument("--kfp-host", default="",
                          help="kubeflow: the KFP API endpoint, e.g. https://HOST/pipeline")
    schedule.add_argument("--kfp-experiment-id", default="", help="kubeflow: the experiment")
    _add_job_flags(schedule)
    schedule.set_defaults(handler=command_schedule)

    info = commands.add_parser("info", help="show the packaged checkpoint, versions, devices, "
                                            "and the strategy and precision `auto` picks here")
    info.set_defaults(handler=command_info)

    gpu = commands.add_parser("gpu-check", help="train on a sample on this machine's GPUs and "
                                                "check MirroredStrategy over all of them and "
                                                "float16 compute")
    gpu.add_argument("--data", required=True, help="a labeled CSV/TSV file, e.g. SST-2 train.tsv")
    gpu.add_argument("--text-column", default="sentence")
    gpu.add_argument("--label-column", default=DataConfig.label_column)
    gpu.add_argument("--rows", type=int, default=4096, help="rows of --data to train on")
    gpu.set_defaults(handler=command_gpu_check)

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
                       default=ModelConfig.max_seq_length)
    check.add_argument("--transform-graph", default=None,
                       help="a Transform output of a pipeline run (default: build the graph "
                            "from preprocessing_fn with TF Transform)")
    check.set_defaults(handler=command_check_tokenizer)
    predict = commands.add_parser(
        "predict", help="label raw texts with an exported model, here or on a running model "
                        "server; or label every row of a file (--data, a Beam job)")
    where = predict.add_mutually_exclusive_group(required=True)
    where.add_argument("--model",
                       help="a SavedModel, or <serving_root>/<model_name> (latest version)")
    where.add_argument("--url", help="a running TF Serving or `bertpipe serve`: "
                                     "http://HOST:PORT (REST), grpc://HOST:PORT (gRPC)")
    predict.add_argument("--grpc", action="store_true", help="--url HOST:PORT is gRPC")
    predict.add_argument("--model-name", default=ServingConfig.model_name,
                         help="with --url: the served model (default: %(default)s)")
    predict.add_argument("--model-version", type=int, default=None,
                         help="with --url: a specific version (default: the latest)")
    predict.add_argument("texts", nargs="*", help="texts to classify (or --data)")
    batch = predict.add_argument_group(
        "batch prediction", "--model --data FILE --output FILE: every row of a CSV/TSV file "
        "(header row) or of TFRecord files of tf.Example, through Beam RunInference; the "
        "output has the input's format and columns plus the label and the probabilities")
    batch.add_argument("--data", default=None,
                       help="a .csv/.tsv file or .tfrecord[.gz] files (a glob)")
    batch.add_argument("--output", default=None,
                       help="the file to write (.csv/.tsv/.tfrecord[.gz] as the input); "
                            "written only when the whole job succeeded")
    batch.add_argument("--text-column", default=DataConfig.text_column,
                       help="the column (tf.Example: bytes feature) holding the texts "
                            "(default: %(default)s)")
    from serving.contract import BATCH_PREDICTION_BATCH_SIZE  # standard library only
    batch.add_argument("--batch-size", type=int, default=BATCH_PREDICTION_BATCH_SIZE,
                       help="texts per call of the model (default: %(default)s)")
    from pipeline.config import BEAM_RUNNERS, RuntimeConfig
    runtime_defaults = RuntimeConfig()
    batch.add_argument("--beam-runner", choices=BEAM_RUNNERS,
                       default=runtime_defaults.beam_runner,
                       help="direct: in this process; dataflow: Google Cloud Dataflow "
                            "(gs:// paths; needs the three flags below)")
    batch.add_argument("--gcp-project", default=runtime_defaults.gcp_project)
    batch.add_argument("--gcp-region", default=runtime_defaults.gcp_region)
    batch.add_argument("--beam-temp-location", default=runtime_defaults.beam_temp_location)
    batch.add_argument("--image", default=runtime_defaults.image,
                       help="the Dataflow workers' SDK container (default: %(default)s)")
    predict.set_defaults(handler=command_predict)

    from serving import server_options  # light: no TensorFlow until the server starts
    serve = commands.add_parser("serve", help="serve a pushed model with TF Serving's REST "
                                              "and gRPC APIs (no docker needed)")
    server_options.add_serve_flags(serve)
    serve.set_defaults(handler=command_serve)

    evaluate = commands.add_parser("evaluate", help="accuracy of an exported model on a "
                                                    "labeled CSV/TSV file")
    evaluate.add_argument("--model", required=True,
                          help="a SavedModel, or <serving_root>/<model_name> (latest version)")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--text-column", default=DataConfig.text_column)
    evaluate.add_argument("--label-column", default=DataConfig.label_column)
    evaluate.set_defaults(handler=command_evaluate)

    report = commands.add_parser("report", help="write the HTML report of a pipeline run "
                                                "(statistics, curves, metrics, blessing, push)")
    report.add_argument("--run-dir", required=True,
                        help="the run's <output_dir>/<pipeline_name> directory (holds "
                             "metadata.sqlite and root/)")
    report.add_argument("--run-id", default=None,
                        help="the run to report (default: the latest; an unknown id lists "
                             "the run ids)")
    report.add_argument("--output", default=None,
                        help="the HTML file to write (default: <run-dir>/report.html)")
    report.set_defaults(handler=command_report)

    skew = commands.add_parser(
        "skew", help="compare logged requests (TF Serving PredictionLog TFRecords) with the "
                     "training statistics of the served model's run; exit 1 on skew")
    skew.add_argument("--request-log", required=True,
                      help="a `bertpipe serve --request-log-dir` directory (its *.tfrecord "
                           "files), or a glob of PredictionLog TFRecord files (TF Serving's "
                           "request logs; .gz: GZIP)")
    skew.add_argument("--run-dir", default=None,
                      help="the pipeline's <output_dir>/<pipeline_name> directory (default: "
                           "from --output-dir and --pipeline-name)")
    skew.add_argument("--output-dir", default=RuntimeConfig.output_dir)
    skew.add_argument("--pipeline-name", default=RuntimeConfig.pipeline_name)
    skew.add_argument("--model-root", default="",
                      help="<serving_root>/<model_name> of the served model (default: the "
                           "model the run dir pushed last)")
    skew.add_argument("--model-version", type=int, default=None,
                      help="the served version (default: the newest in --model-root)")
    # The bound on drift between spans is the bound on skew too: the same divergence.
    skew.add_argument("--max-length-skew", type=float, default=QualityConfig.max_length_drift,
                      help="largest Jensen-Shannon divergence of text length and token count "
                           "between training and requests (default: %(default)s)")
    skew.add_argument("--html", default=None,
                      help="the page to write (default: skew.html in the request log's "
                           "directory)")
    skew.set_defaults(handler=command_skew)

    verbose_help = ("show every library's log (TensorFlow, TFX, Beam, transformers); by "
                    "default only warnings that matter and one line per pipeline component")
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    for command in commands.choices.values():  # also after the command: bertpipe run --verbose
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=verbose_help)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # Before anything imports TensorFlow: the console settings include environment variables
    # read at import, and TensorFlow then loads Keras 2 (what transformers' TF models need)
    # instead of Keras 3 as well (5 s of every command's start-up).
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    console.configure(verbose=args.verbose or bool(os.environ.get("BERTPIPE_VERBOSE")))
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
