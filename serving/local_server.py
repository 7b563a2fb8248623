"""`bertpipe serve`: a local model server with TensorFlow Serving's REST and gRPC APIs.

For machines without docker or a TF Serving binary (and for this project's tests): it serves the
pushed model root (`<serving_root>/<model_name>`) with the same paths, JSON and error bodies as
TF Serving's REST API (serving/rest_api.py), TF Serving's gRPC PredictionService and
ModelService (serving/grpc_service.py), the newest version hot-reloaded without restart
(serving/model_manager.py) and request batching configured by the same batching parameters file
as the container (serving/batcher.py, serving/deploy/batching_parameters.txt).

HTTP is tornado's server (one event loop thread: parsing and answering; the model runs on the
batch threads), gRPC is grpcio's server (a thread pool). Both submit to the same batch queues,
so REST and gRPC requests share batches.

With --request-log-dir, a sample of the answered predict requests (REST and gRPC) is written as
TF Serving's PredictionLog records (serving/request_log.py), for `bertpipe skew`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import signal
import threading
from typing import Callable, List, Optional, Tuple

import prometheus_client
import tornado.httpserver
import tornado.netutil
import tornado.web

from serving.contract import SERVING_CONFIG_FILE_NAME, model_names, version_numbers
from serving import rest_api
from serving.batcher import BatchingOptions
from serving.errors import DeadlineExceeded, InvalidArgument, ServeError, ServingError
from serving.grpc_service import start_grpc_server
from serving.metrics import ServerMetrics, prometheus_path
from serving.model_manager import ModelManager
from serving.request_limits import check_signature
from serving.request_log import RequestLogger, predict_log_from_texts
from serving.server_options import ServerOptions, thread_counts
from serving.servable import Servable
from serving.server_process import ready_line

_LOG = logging.getLogger(__name__)


def _check_model_root(options: ServerOptions) -> None:
    root = options.model_root
    if not os.path.isdir(root):
        raise ServeError(f"--model-root {root}: no such directory")
    if version_numbers(root):
        return
    hint = ""
    if os.path.exists(os.path.join(root, SERVING_CONFIG_FILE_NAME)) or model_names(root):
        hint = (f"; it looks like a serving root: use one of its models, e.g. --model-root "
                f"{os.path.join(root, (model_names(root) or ['<model_name>'])[0])}")
    raise ServeError(f"--model-root {root} has no numbered version directories (1, 2, ...) "
                     f"holding a SavedModel{hint}")



def _set_tensorflow_threads(options: ServerOptions, batching: BatchingOptions):
    """TensorFlow's intra-/inter-op threads from the options, or from the cores and batch
    threads; they can only be set before TensorFlow's runtime starts (else: left as they are,
    with a warning). Returns what was asked."""
    import tensorflow as tf
    intra, inter = thread_counts(os.cpu_count() or 1, batching.num_batch_threads,
                                 options.intra_op_threads, options.inter_op_threads)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as error:  # the runtime is already up (e.g. a server in a test process)
        logging.warning("TensorFlow threads not set to intra %d / inter %d: %s", intra, inter,
                        error)
    return intra, inter

class _V1Handler(tornado.web.RequestHandler):
    """Every /v1/ request: TF Serving's status, metadata and predict endpoints."""

    def initialize(self, server: "LocalServer"):
        self._server = server

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json")

    async def get(self):
        await self._answer(self._get)

    async def post(self):
        await self._answer(self._post)

    def on_finish(self):
        path = self.request.path.lower()
        endpoint = ("predict" if path.endswith(":predict") else
                    "metadata" if path.endswith("/metadata") else "status")
        self._server.metrics.record("rest", endpoint, str(self.get_status()),
                                    self.request.request_time())

    async def _answer(self, handle):
        try:
            self.finish(await handle())
        except ServingError as error:
            self._finish_error(error.http_status, str(error))
        except Exception as error:  # pylint: disable=broad-except  (JSON 500, logged)
            _LOG.exception("%s %s failed", self.request.method, self.request.path)
            self._finish_error(500, f"internal error: {error}")

    def _finish_error(self, status: int, message: str):
        self.set_status(status)
        self.finish(rest_api.error_json(message))

    def write_error(self, status_code, **kwargs):  # tornado's own errors (e.g. 405) as JSON
        self.finish(rest_api.error_json(self._reason))

    def _model_version(self, path: rest_api.ModelPath) -> Optional[int]:
        if path.label is not None:  # no version labels are configured (TF Serving: 400)
            raise InvalidArgument(f"Unrecognized servable version label: {path.label}")
        return path.version

    async def _get(self) -> str:
        path = rest_api.parse_path("GET", self.request.path)
        manager = self._server.manager
        version = self._model_version(path)
        if path.method == "metadata":
            servable, signature_defs = manager.metadata(path.model_name, version)
            return rest_api.metadata_json(servable.name, servable.version, signature_defs)
        return rest_api.status_json(manager.status(path.model_name, version))

    async def _post(self) -> str:
        path = rest_api.parse_path("POST", self.request.path)
        if path.method != "predict":
            raise InvalidArgument(f"{path.method}: this model serves predict only (classify "
                                  "and regress take tf.Examples; the signature takes raw text)")
        version = self._model_version(path)
        request = rest_api.parse_predict_request(self.request.body)
        manager, options = self._server.manager, self._server.options
        check_signature(manager.servable(path.model_name, version), request.signature_name)
        options.limits.check(request.texts)
        used_version, future = manager.submit(path.model_name, version, request.texts)
        try:
            # shield: on timeout the batch still runs; only this answer is given up.
            outputs = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                             options.request_timeout_seconds)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"no answer from the model within "
                                   f"{options.request_timeout_seconds:g} s") from None
        request_log = self._server.request_log
        if request_log is not None:
            request_log.maybe_log(functools.partial(
                predict_log_from_texts, path.model_name, version, request.signature_name,
                request.texts, used_version, outputs, request_log.sampling_rate))
        return json.dumps(rest_api.predict_response(outputs, request.columnar))


class _MetricsHandler(tornado.web.RequestHandler):
    """Prometheus' scrape endpoint (the monitoring config's path)."""

    def initialize(self, server: "LocalServer"):
        self._server = server

    def get(self):
        self.set_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
        self.finish(self._server.metrics.page())


class _OpenApiHandler(tornado.web.RequestHandler):
    """The REST API's OpenAPI document (serving/openapi.yaml) as JSON."""

    def initialize(self, server: "LocalServer"):
        self._server = server

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(rest_api.openapi_document(
            self._server.options.served_model_name)))


class _NotFoundHandler(tornado.web.RequestHandler):
    """Paths outside /v1/: 404 with a JSON body naming the API paths."""

    def prepare(self):
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish(rest_api.error_json(
            f"{self.request.method} {self.request.path}: not found; the API is under "
            "/v1/models/<name> (status), /v1/models/<name>/metadata and "
            f"/v1/models/<name>[/versions/<version>]:predict, described at "
            f"{rest_api.OPENAPI_PATH}"))


def _request_logger(options: ServerOptions) -> Optional[RequestLogger]:
    if not options.request_log_dir:
        return None
    try:
        return RequestLogger(options.request_log_dir, options.request_log_sampling_rate)
    except OSError as error:
        raise ServeError(f"--request-log-dir {options.request_log_dir}: cannot write there: "
                         f"{error}") from error


class LocalServer:
    """The model manager, the REST server and the gRPC server, started and stopped together."""

    def __init__(self, options: ServerOptions):
        self.options = options
        _check_model_root(options)
        try:
            batching = BatchingOptions.from_file(options.batching_parameters_file)
        except (OSError, ValueError) as error:
            raise ServeError(f"batching parameters: {error}") from error
        try:
            self.metrics_path = prometheus_path(options.monitoring_config_file)
        except (OSError, ValueError) as error:
            raise ServeError(f"monitoring config: {error}") from error
        self.metrics = ServerMetrics()
        self.threads = _set_tensorflow_threads(options, batching)
        self.manager = ModelManager(options.served_model_name, options.model_root, batching,
                                    load=functools.partial(Servable, threads=self.threads),
                                    num_versions=options.num_versions,
                                    poll_seconds=options.file_system_poll_wait_seconds,
                                    on_batch=self.metrics.batch_size.observe,
                                    on_load=self.metrics.record_load)
        self.request_log: Optional[RequestLogger] = None  # opened by start()
        self.rest_port: Optional[int] = None
        self.grpc_port: Optional[int] = None
        self._grpc_server = None
        self._http_server: Optional[tornado.httpserver.HTTPServer] = None
        self._sockets: List = []

    def start(self) -> Tuple[int, Optional[int]]:
        """Loads the model, opens the ports; returns (REST port, gRPC port or None)."""
        options = self.options
        self.request_log = _request_logger(options)
        self.manager.start()
        if not self.manager.loaded_versions():
            errors = {version.version: version.status.error_message for version in
                      self.manager.status(options.served_model_name).model_version_status}
            self.stop()
            raise ServeError(f"no version of {options.model_root} could be loaded: {errors}")
        # Bound here, before the event loop runs, so a taken port fails start() at once.
        self._sockets = tornado.netutil.bind_sockets(options.rest_port, options.host)
        self.rest_port = self._sockets[0].getsockname()[1]
        if options.grpc_port is not None:
            self._grpc_server, self.grpc_port = start_grpc_server(
                self.manager, options.limits, options.host, options.grpc_port,
                options.grpc_threads, options.request_timeout_seconds, self.metrics,
                self.request_log)
        return self.rest_port, self.grpc_port

    def _application(self) -> tornado.web.Application:
        routes = [(r"(?i)/v1/.*", _V1Handler, {"server": self}),
                  (re.escape(rest_api.OPENAPI_PATH), _OpenApiHandler, {"server": self})]
        if self.metrics_path:
            routes.insert(0, (re.escape(self.metrics_path), _MetricsHandler, {"server": self}))
        return tornado.web.Application(routes, default_handler_class=_NotFoundHandler)

    async def serve(self, stop: asyncio.Event) -> None:
        """Answers REST requests on the started server until `stop` is set."""
        self._http_server = tornado.httpserver.HTTPServer(
            self._application(), max_body_size=self.options.limits.max_body_bytes)
        self._http_server.add_sockets(self._sockets)
        await stop.wait()
        self._http_server.stop()
        await self._http_server.close_all_connections()

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=5).wait()
        self.manager.stop()
        if self.request_log is not None:  # last: the answered requests' records are written
            self.request_log.close()

    def describe(self) -> str:
        return ready_line(self.options.served_model_name, self.manager.loaded_versions(),
                          os.path.abspath(self.options.model_root), self.options.host,
                          self.rest_port, self.grpc_port)


def run(options: ServerOptions) -> None:
    """Starts the server, prints where it listens, serves until SIGINT or SIGTERM."""
    server = LocalServer(options)
    server.start()
    print(server.describe(), flush=True)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await server.serve(stop)

    try:
        asyncio.run(main())
    finally:
        server.stop()
    print("server stopped", flush=True)


def run_in_thread(options: ServerOptions) -> Tuple[LocalServer, Callable[[], None]]:
    """A started server answering on a background thread; call the returned stop() to end it.

    For benchmarks and embedding; `bertpipe serve` uses run().
    """
    server = LocalServer(options)
    server.start()
    ready, holder = threading.Event(), {}

    def loop_thread():
        async def main():
            holder["loop"], holder["stop"] = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await server.serve(holder["stop"])
        asyncio.run(main())

    thread = threading.Thread(target=loop_thread, daemon=True, name="rest-server")
    thread.start()
    ready.wait()

    def stop():
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join()
        server.stop()

    return server, stop
