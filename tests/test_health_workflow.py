"""A workflow through real Temporal, a real worker, real PostgreSQL and a real SMTP server."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from csm.database import head_revision
from csm.settings import Settings
from worker import build_worker
from workflows.health import StackCheckInput, StackCheckWorkflow


async def _run_check(client: Client, settings: Settings, check_smtp: bool):
    task_queue = f"health-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, task_queue=task_queue):
        return await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput(check_smtp=check_smtp),
            id=f"health-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )


async def test_stack_check_on_dev_server(client: Client, settings: Settings) -> None:
    health = await _run_check(client, settings, check_smtp=True)
    assert health.database.schema_revision == head_revision()
    assert health.database.server_version[:2].isdigit()
    assert health.smtp is not None
    assert health.smtp.greeting_code == 220
    assert health.smtp.noop_code == 250


async def test_stack_check_on_time_skipping_server(
    time_skipping_env: WorkflowEnvironment, settings: Settings
) -> None:
    health = await _run_check(time_skipping_env.client, settings, check_smtp=False)
    assert health.database.schema_revision == head_revision()
    assert health.smtp is None


async def test_search_attributes_are_registered(client: Client) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from csm.settings import SEARCH_ATTRIBUTES

    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert set(SEARCH_ATTRIBUTES) <= set(response.custom_attributes)
