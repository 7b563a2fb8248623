"""What `bertpipe serve` takes: `ServerOptions`, TF Serving's defaults, and the command flags.

Light on purpose (no TensorFlow, no web stack): the command line imports it to build its parser.
The flag names follow `tensorflow_model_server`'s where there is one (--port is REST here, as
`bertpipe serve` is mostly used over REST; --grpc-port is TF Serving's --port).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Optional

from serving.request_limits import RequestLimits

DEPLOY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deploy")
# The file the TF Serving container reads too (deploy/docker-compose.yml): both batch alike.
DEFAULT_BATCHING_PARAMETERS_FILE = os.path.join(DEPLOY_DIR, "batching_parameters.txt")
# Prometheus metrics at the path the container's monitoring config names.
DEFAULT_MONITORING_CONFIG_FILE = os.path.join(DEPLOY_DIR, "monitoring.config")
# TF Serving's ports: --port (gRPC) 8500 and --rest_api_port 8501.
DEFAULT_GRPC_PORT, DEFAULT_REST_PORT = 8500, 8501
# Share of requests written to --request-log-dir: enough for statistics of a busy server's
# texts without writing every request.
DEFAULT_REQUEST_LOG_SAMPLING_RATE = 0.1


def sampling_rate_problem(rate: float) -> str:
    """What is wrong with a request log sampling rate, "" if nothing."""
    if 0 < rate <= 1:
        return ""
    return (f"{rate:g}: must be above 0 and at most 1 (the share of requests logged, e.g. "
            f"{DEFAULT_REQUEST_LOG_SAMPLING_RATE})")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    model_root: str  # <serving_root>/<model_name>: numbered version directories
    model_name: str = ""  # default: the model root's directory name
    host: str = "127.0.0.1"
    rest_port: int = DEFAULT_REST_PORT  # 0: any free port
    grpc_port: Optional[int] = DEFAULT_GRPC_PORT  # None: no gRPC; 0: any free port
    num_versions: int = 1  # TF Serving's default version policy: the latest version only
    file_system_poll_wait_seconds: float = 1.0  # TF Serving's default too
    batching_parameters_file: str = DEFAULT_BATCHING_PARAMETERS_FILE
    monitoring_config_file: str = DEFAULT_MONITORING_CONFIG_FILE  # "": no metrics
    limits: RequestLimits = RequestLimits()
    request_timeout_seconds: float = 60.0
    grpc_threads: int = 16
    # TensorFlow's thread pools, as tensorflow_model_server's --tensorflow_intra_op_parallelism
    # and --tensorflow_inter_op_parallelism; 0: from the cores and the batch threads
    # (thread_counts).
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    # A sample of the answered requests as TF Serving's PredictionLog records, in TFRecord files
    # in this directory (serving/request_log.py); "": no request log.
    request_log_dir: str = ""
    request_log_sampling_rate: float = DEFAULT_REQUEST_LOG_SAMPLING_RATE  # in (0, 1]

    def __post_init__(self):
        problem = sampling_rate_problem(self.request_log_sampling_rate)
        if problem:
            raise ValueError(f"--request-log-sampling-rate {problem}")

    @property
    def served_model_name(self) -> str:
        return self.model_name or os.path.basename(os.path.abspath(self.model_root))


_DEFAULTS = ServerOptions(model_root="")


def thread_counts(cpus: int, batch_threads: int, intra: int = 0, inter: int = 0):
    """(intra-op, inter-op) threads: each concurrent model call gets cpus / batch_threads
    intra-op threads (at least 1), and the inter-op pool runs one call per batch thread. A
    value given (non-zero) is kept."""
    batch_threads = max(1, batch_threads)
    return (intra or max(1, cpus // batch_threads), inter or batch_threads)


def _sampling_rate(value: str) -> float:
    """argparse type of --request-log-sampling-rate: argparse names the flag in its error."""
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    problem = sampling_rate_problem(rate)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return rate


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-root", required=True,
                        help="the pushed model: <serving_root>/<model_name>, holding numbered "
                             "versions (TF Serving's --model_base_path)")
    parser.add_argument("--model-name", default="",
                        help="the name in /v1/models/<name> (default: the model root's "
                             "directory name)")
    parser.add_argument("--host", default=_DEFAULTS.host,
                        help="address to listen on (default: %(default)s; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=_DEFAULTS.rest_port,
                        help="REST port, 0 for any free one (default: %(default)s)")
    grpc = parser.add_mutually_exclusive_group()
    grpc.add_argument("--grpc-port", type=int, default=_DEFAULTS.grpc_port,
                      help="gRPC port, 0 for any free one (default: %(default)s)")
    grpc.add_argument("--no-grpc", action="store_true", help="serve REST only")
    parser.add_argument("--num-versions", type=int, default=_DEFAULTS.num_versions,
                        help="serve the newest N versions (default: %(default)s)")
    parser.add_argument("--file-system-poll-wait-seconds", type=float,
                        default=_DEFAULTS.file_system_poll_wait_seconds,
                        help="how often to look for new versions (default: %(default)s)")
    parser.add_argument("--batching-parameters-file",
                        default=_DEFAULTS.batching_parameters_file,
                        help="TF Serving BatchingParameters text file (default: the one the "
                             "docker deployment uses, serving/deploy/batching_parameters.txt)")
    parser.add_argument("--monitoring-config-file", default=_DEFAULTS.monitoring_config_file,
                        help="TF Serving MonitoringConfig text file: Prometheus metrics on the "
                             "REST port ('' for none; default: the docker deployment's, "
                             "serving/deploy/monitoring.config)")
    parser.add_argument("--tensorflow-intra-op-parallelism", type=int, default=0,
                        help="threads of one model call (TF Serving's flag of that name; "
                             "default 0: cores / num_batch_threads)")
    parser.add_argument("--tensorflow-inter-op-parallelism", type=int, default=0,
                        help="model calls' ops run at once (default 0: num_batch_threads)")
    parser.add_argument("--request-timeout-seconds", type=float,
                        default=_DEFAULTS.request_timeout_seconds,
                        help="answer DEADLINE_EXCEEDED (HTTP 504) when the model has not "
                             "answered a request within this time (default: %(default)s)")
    parser.add_argument("--max-request-texts", type=int, default=_DEFAULTS.limits.max_texts,
                        help="texts per request at most (default: %(default)s)")
    parser.add_argument("--max-text-bytes", type=int, default=_DEFAULTS.limits.max_text_bytes,
                        help="UTF-8 bytes per text at most (default: %(default)s)")
    parser.add_argument("--request-log-dir", default=_DEFAULTS.request_log_dir,
                        help="log a sample of the answered predict requests here, as TF "
                             "Serving's PredictionLog records in TFRecord files "
                             "(requests-*.tfrecord), for `bertpipe skew` (default: no log)")
    parser.add_argument("--request-log-sampling-rate", type=_sampling_rate,
                        default=_DEFAULTS.request_log_sampling_rate,
                        help="the share of requests logged, above 0 and at most 1 (default: "
                             "%(default)s)")


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        model_root=args.model_root, model_name=args.model_name, host=args.host,
        rest_port=args.port, grpc_port=None if args.no_grpc else args.grpc_port,
        num_versions=args.num_versions,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        batching_parameters_file=args.batching_parameters_file,
        monitoring_config_file=args.monitoring_config_file,
        request_timeout_seconds=args.request_timeout_seconds,
        intra_op_threads=args.tensorflow_intra_op_parallelism,
        inter_op_threads=args.tensorflow_inter_op_parallelism,
        limits=RequestLimits(max_texts=args.max_request_texts,
                             max_text_bytes=args.max_text_bytes),
        request_log_dir=args.request_log_dir,
        request_log_sampling_rate=args.request_log_sampling_rate)
