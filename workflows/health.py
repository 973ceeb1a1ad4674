"""StackCheckWorkflow: one round trip through Temporal, a worker, the database and SMTP.

`csm dev check` and the quick start run it to show the stack is healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.health import DatabaseHealth, HealthActivities, SmtpHealth


@dataclass
class StackCheckInput:
    check_smtp: bool = True


@dataclass
class StackHealth:
    database: DatabaseHealth
    smtp: SmtpHealth | None


@workflow.defn(name="StackCheck")
class StackCheckWorkflow:
    @workflow.run
    async def run(self, params: StackCheckInput) -> StackHealth:
        quick = RetryPolicy(maximum_attempts=3)
        database = await workflow.execute_activity_method(
            HealthActivities.check_database,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=quick,
            summary="check database",
        )
        smtp = None
        if params.check_smtp:
            smtp = await workflow.execute_activity_method(
                HealthActivities.check_smtp,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=quick,
                summary="check smtp",
            )
        return StackHealth(database=database, smtp=smtp)
