"""The workflows benches compare csm with: the common per-contact design, and a no-op update.

Workflow code only, as the sandbox needs it: nothing here imports a database
driver (activities are called by name, payload types come from this module),
and nothing runs on import. Payloads are ids, kinds and result codes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from csm.passes.decision import NEXT_DEVICE

#: The name the per-contact journey's one activity is registered under.
ATTEMPT_DEVICE = "attempt_device"


@dataclass
class JourneyInput:
    """One contact's journey through one voice pass: where its attempt rows go, and its
    devices as (device id, kind) in the pass's order. Never an address."""

    sub_campaign_id: int
    campaign_id: int
    day: date
    pass_number: int
    contact_id: int
    devices: list[tuple[int, str]]


@dataclass
class DeviceAttempt:
    """One device attempt of a journey; the activity reads the address itself."""

    sub_campaign_id: int
    campaign_id: int
    day: date
    pass_number: int
    contact_id: int
    device_id: int
    device_kind: str


@workflow.defn(name="ContactJourney")
class ContactJourney:
    """The common design (a journey per contact, as in Dittofeed): a workflow for each
    contact that tries its devices in order, one activity per attempt, until one reaches
    someone; the result code of its last attempt is the workflow's result."""

    @workflow.run
    async def run(self, journey: JourneyInput) -> str:
        result = "skipped"
        for device_id, kind in journey.devices:
            result = await workflow.execute_activity(
                ATTEMPT_DEVICE,
                DeviceAttempt(
                    sub_campaign_id=journey.sub_campaign_id,
                    campaign_id=journey.campaign_id,
                    day=journey.day,
                    pass_number=journey.pass_number,
                    contact_id=journey.contact_id,
                    device_id=device_id,
                    device_kind=kind,
                ),
                result_type=str,
                start_to_close_timeout=timedelta(seconds=60),
            )
            if result not in NEXT_DEVICE:
                break
        return result


@workflow.defn(name="NoOpUpdates")
class NoOpUpdates:
    """The ceiling of an update round trip on a server: an update that only counts."""

    @workflow.init
    def __init__(self) -> None:
        self.updates = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.updates

    @workflow.update
    def touch(self, number: int) -> int:
        self.updates += 1
        return number

    @workflow.signal
    def finish(self) -> None:
        self.done = True
