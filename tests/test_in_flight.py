"""Live counts show attempts in flight: placed with a carrier, final status not come (issue 15)."""

from __future__ import annotations

import io
from datetime import date

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.cli.status_view import render_status
from csm.database import driver_connection
from csm.plan import PassCounts
from csm.results import PassResult, SubCampaignStatus, in_flight_counts

DAY = date(2026, 12, 3)


async def test_in_flight_counts_unsettled_placements_per_pass(engine: AsyncEngine) -> None:
    sub = 900_001  # a sub-campaign id no other test uses: provider_attempts has no FK
    rows = [
        (f"{sub}-20261203-1-5-9-0", "placed"),
        (f"{sub}-20261203-1-6-9-0", "placing"),
        (f"{sub}-20261203-1-7-9-0", "settled"),
        (f"{sub}-20261203-2-5-9-0", "placed"),
        (f"{sub}-20261202-1-5-9-0", "placed"),  # another day
        (f"{sub}1-20261203-1-5-9-0", "placed"),  # another sub-campaign, same digits first
    ]
    async with driver_connection(engine) as connection:
        await connection.executemany(
            "INSERT INTO provider_attempts (attempt_key, sub_campaign_id, channel, provider, state)"
            " VALUES ($1, $2, 'voice', 'twilio', $3)",
            [(key, int(key.split("-")[0]), state) for key, state in rows],
        )
    try:
        assert await in_flight_counts(engine, sub, DAY) == {1: 2, 2: 1}
    finally:
        async with driver_connection(engine) as connection:
            await connection.execute(
                "DELETE FROM provider_attempts WHERE attempt_key = ANY($1)", [k for k, _ in rows]
            )


def test_status_shows_attempts_in_flight_only_when_there_are_some() -> None:
    counts = PassCounts(selected=10, attempted=4)
    passes = [
        PassResult(1, "morning voice", "voice", "running", False, False, "", counts, in_flight=3),
        PassResult(2, "text", "sms", "pending", False, False, "", PassCounts()),
    ]
    status = SubCampaignStatus("march", "reminders", "wf", DAY, "running", 1, passes)
    for width in (80, 160):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(render_status(status))
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert text.count("in flight") == 1 and "3 in flight" in text
    assert status.as_json()["passes"][0]["in_flight"] == 3
