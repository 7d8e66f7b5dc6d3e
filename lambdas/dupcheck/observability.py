"""Powertools Logger, Tracer and Metrics: one instance of each, shared by every Lambda module.

Why a module of its own: the handlers decorate with these objects and the service layer's
observer records metrics through `record_metric`, so they must be the *same* objects (one
metric flush per invocation, one correlation id in every log line). `core` never imports this
module: it stays free of AWS libraries and reports through an observer the handlers wire up.

Outside Lambda (local server, CLI, tests) the same objects work: Tracer is disabled when no
X-Ray daemon is present (`POWERTOOLS_TRACE_DISABLED`, or automatically outside Lambda) and
Metrics only buffers until `log_metrics` flushes, so importing this module costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

Handler = TypeVar("Handler", bound=Callable[..., Any])

SERVICE = "dupcheck"
NAMESPACE = "dupcheck"
# The API's 5xx answers that are another server's fault, not the service's: an image or catalog
# host that failed or was too slow (502 `upstream_error`, 504 `upstream_timeout`). Counted by the
# API handler so that the API's 5XX alarm leaves them out (infra/components/alarms.py).
UPSTREAM_FAULTS_METRIC = "UpstreamFaults"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
)

# Units accepted by record_metric as plain strings, so callers outside this module (the service
# observer) need not import Powertools' enum.
_UNITS: dict[str, MetricUnit] = {unit.value.lower(): unit for unit in MetricUnit}


def record_metric(name: str, value: float, unit: str | MetricUnit = MetricUnit.Count) -> None:
    """Add one EMF metric to the current invocation's buffer; flushed by `@metrics.log_metrics`.

    Never raises: a metric is not worth failing a request for (an unknown unit is logged and
    recorded as Count).
    """
    if isinstance(unit, str):
        resolved = _UNITS.get(unit.lower())
        if resolved is None:
            logger.warning("unknown metric unit, recording as Count", extra={"metric": name, "unit": unit})
            resolved = MetricUnit.Count
        unit = resolved
    try:
        metrics.add_metric(name=name, unit=unit, value=value)
    except Exception:  # noqa: BLE001 - metrics must never break the request path
        logger.exception("could not record metric", extra={"metric": name})


def observe(name: str, value: float) -> None:
    """The service's `Observer` (`core.catalog.service.Observer`): a metric name and a value.

    The unit follows the name's suffix, so the service never needs to know about EMF units:
    `...Ms` is Milliseconds, anything else a Count.
    """
    record_metric(name, value, MetricUnit.Milliseconds if name.endswith("Ms") else MetricUnit.Count)


def lambda_entry(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """What every function's handler is wrapped in: each log line carries the Lambda context (and
    the request's id found at `correlation_id_path`, for an API's), an X-Ray segment round the
    call, and the invocation's metrics flushed at its end with a cold-start count."""

    def wrap(handler: Handler) -> Handler:
        observed = metrics.log_metrics(capture_cold_start_metric=True)(handler)
        observed = tracer.capture_lambda_handler(capture_response=False)(observed)
        return logger.inject_lambda_context(correlation_id_path=correlation_id_path, log_event=False)(observed)

    return wrap
