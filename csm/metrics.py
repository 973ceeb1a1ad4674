"""Prometheus metrics of the worker: the Temporal SDK's own, plus csm's.

Only the worker process serves them (`csm worker` / `python worker.py`, on
`CSM_METRICS_ADDRESS`): its client runs on a Temporal runtime with a
Prometheus exporter, and the pass activity records csm's metrics through
`activity.metric_meter()`, so both appear on the same `/metrics` endpoint.
Everywhere else (the CLI, tests, `ActivityEnvironment`) the default runtime
has no exporter and these metrics are no-ops.

csm's metrics (besides the SDK's `namespace`, `task_queue`, `activity_type`):

- `csm_attempts` (counter): ledger rows the pass activity wrote, by `channel`,
  `result` and `skip_reason` (empty unless the result is `skipped`);
- `csm_pass_duration_seconds` (histogram): runs of the pass activity, by
  `channel` and `outcome` (`completed`, `cancelled` on pause or stop, `failed`);
- `csm_cap_skips` (counter): contacts a cap held, by `channel` and `cap` (the
  cap's name from `capped:<name>`, or `recent_conversation`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from csm.errors import CsmError
from csm.ledger_rows import AttemptRow
from csm.vocabulary import SkipReason

ATTEMPTS = "csm_attempts"
PASS_DURATION = "csm_pass_duration_seconds"
CAP_SKIPS = "csm_cap_skips"

#: Buckets of the pass-duration histogram, in seconds: passes last seconds to hours.
PASS_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800)

_CAPPED = f"{SkipReason.CAPPED}:"


class MetricsError(CsmError):
    """The metrics endpoint cannot be served (a taken or malformed address)."""


def worker_runtime(address: str) -> Runtime | None:
    """A Temporal runtime serving Prometheus metrics on `address` (IP:port); None if empty.

    A process can bind an address once: only the worker calls this, once.
    """
    if not address:
        return None
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    histogram_bucket_overrides={PASS_DURATION: PASS_DURATION_BUCKETS},
                )
            )
        )
    except ValueError as err:
        raise MetricsError(
            f"cannot serve metrics on CSM_METRICS_ADDRESS={address!r} ({err}); give a free"
            " IP:port (a host name is not accepted), or set CSM_METRICS_ADDRESS= (empty) to"
            " turn metrics off"
        ) from err


class PassMetrics:
    """csm's metrics of one pass-activity run, created once per run."""

    __slots__ = ("attempts", "cap_skips", "duration")

    def __init__(self, meter: MetricMeter):
        self.attempts = meter.create_counter(ATTEMPTS, "attempt rows written to the ledger")
        self.cap_skips = meter.create_counter(CAP_SKIPS, "contacts skipped by a cap")
        self.duration = meter.create_histogram_float(
            PASS_DURATION, "runs of the pass activity", "s"
        )

    def recorded(self, rows: Iterable[AttemptRow]) -> None:
        """Count a committed batch's rows: one add per distinct label set."""
        for (channel, result, reason), n in Counter(
            (r.channel, r.result, r.skip_reason) for r in rows
        ).items():
            self.written(channel, result, reason, n)

    def written(self, channel: str, result: str, reason: str | None, n: int) -> None:
        """`n` ledger rows of one result (and skip reason) were committed."""
        if n <= 0:
            return
        self.attempts.add(n, {"channel": channel, "result": result, "skip_reason": reason or ""})
        if reason is None:
            return
        if reason.startswith(_CAPPED):
            cap = reason[len(_CAPPED) :]
        elif reason == SkipReason.RECENT_CONVERSATION:
            cap = str(SkipReason.RECENT_CONVERSATION)
        else:
            return
        self.cap_skips.add(n, {"channel": channel, "cap": cap})


_current: ContextVar[PassMetrics | None] = ContextVar("csm_pass_metrics", default=None)


def _meter() -> MetricMeter:
    try:
        return activity.metric_meter()
    except RuntimeError:  # called outside an activity: nothing to report to
        return MetricMeter.noop


@contextmanager
def pass_run(channel: str) -> Iterator[PassMetrics]:
    """Time one run of the pass activity and make its metrics `current()` meanwhile."""
    metrics = PassMetrics(_meter())
    token = _current.set(metrics)
    started = time.monotonic()
    outcome = "failed"
    try:
        yield metrics
        outcome = "completed"
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        _current.reset(token)
        metrics.duration.record(
            time.monotonic() - started, {"channel": channel, "outcome": outcome}
        )


def current() -> PassMetrics | None:
    """The metrics of the pass run in progress in this task, if any."""
    return _current.get()
