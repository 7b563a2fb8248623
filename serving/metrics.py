"""Prometheus metrics of the local server, at the path TF Serving's monitoring config names.

`tensorflow_model_server --monitoring_config_file` (serving/deploy/monitoring.config) exposes
Prometheus metrics on the REST port; `bertpipe serve` reads the same file and exposes its own
at the same path, so one scrape config fits both. The metric names are this server's (TF
Serving's are `:tensorflow:serving:...`), with the same meaning where both have one:

- `bertpipe_serving_requests_total{api, endpoint, code}`: answered requests by result;
- `bertpipe_serving_request_latency_seconds{api, endpoint}`: time to answer;
- `bertpipe_serving_batch_size`: texts per model call, i.e. how well requests are batched;
- `bertpipe_serving_model_loads_total{version, result}`: version loads that succeeded or failed
  (TF Serving: `:tensorflow:cc:saved_model:load_attempt_count{model_path, status}`), so an alert
  can fire on a pushed version that does not load while the previous one keeps serving.

Each server has its own registry, so several servers in one process do not clash.
"""
from __future__ import annotations

from typing import Optional

import prometheus_client

from serving.tf_serving_protos import MonitoringConfig, parse_text_file

BATCH_SIZE_METRIC = "bertpipe_serving_batch_size"
MODEL_LOADS_METRIC = "bertpipe_serving_model_loads"
_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# TF Serving's PrometheusExporter::kPrometheusPath, used when a config enables but names none.
TF_SERVING_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class ServerMetrics:
    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "bertpipe_serving_requests", "Requests answered, by API, endpoint and result code.",
            ["api", "endpoint", "code"], registry=self.registry)
        self.latency = prometheus_client.Histogram(
            "bertpipe_serving_request_latency_seconds", "Time to answer a request.",
            ["api", "endpoint"], registry=self.registry)
        self.batch_size = prometheus_client.Histogram(
            BATCH_SIZE_METRIC, "Texts per model call (after request batching).",
            buckets=_BATCH_SIZE_BUCKETS, registry=self.registry)
        self.model_loads = prometheus_client.Counter(
            MODEL_LOADS_METRIC, "Model version loads, by version and result (ok/error).",
            ["version", "result"], registry=self.registry)

    def record_load(self, version: int, succeeded: bool) -> None:
        self.model_loads.labels(str(version), "ok" if succeeded else "error").inc()

    def record(self, api: str, endpoint: str, code: str, seconds: float) -> None:
        self.requests.labels(api, endpoint, code).inc()
        self.latency.labels(api, endpoint).observe(seconds)

    def page(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return prometheus_client.generate_latest(self.registry)


def prometheus_path(monitoring_config_file: str) -> Optional[str]:
    """The metrics path a MonitoringConfig file enables, or None (no file, or not enabled)."""
    if not monitoring_config_file:
        return None
    config = parse_text_file(monitoring_config_file, MonitoringConfig).prometheus_config
    if not config.enable:
        return None
    return config.path or TF_SERVING_PROMETHEUS_PATH
