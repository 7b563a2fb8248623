"""The errors the local server answers with, and their HTTP and gRPC codes.

The codes are TF Serving's: it maps its canonical error codes to HTTP statuses in
tensorflow_serving/model_servers/http_server.cc (ToHTTPStatusCode): INVALID_ARGUMENT -> 400,
NOT_FOUND -> 404, UNAVAILABLE -> 503, INTERNAL -> 500. A REST error body is {"error": message}.
"""
from __future__ import annotations

import grpc


class ServeError(ValueError):
    """`bertpipe serve` cannot start on what it was given; the message says what to fix."""


class ServingError(Exception):
    """A request the server cannot answer; the message tells the client why."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL


class InvalidArgument(ServingError):
    """The request is malformed or breaks a limit: the client must change it."""

    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServingError):
    """No such model, or the version asked for is not loaded."""

    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Unavailable(ServingError):
    """The server cannot take the request now (queue full, no version loaded): retry later."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServingError):
    """The model did not answer within the server's request timeout."""

    http_status = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
