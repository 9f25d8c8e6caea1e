"""Metrics for the labs that need them: a real Prometheus per run, its configuration, and the
client checks query it with."""

from harness.metrics.client import Alert, PrometheusClient, PrometheusError, Sample, Series
from harness.metrics.config import MetricsSpec
from harness.metrics.program import Prometheus, find_prometheus, install_prometheus

__all__ = [
    "Alert",
    "MetricsSpec",
    "Prometheus",
    "PrometheusClient",
    "PrometheusError",
    "Sample",
    "Series",
    "find_prometheus",
    "install_prometheus",
]
