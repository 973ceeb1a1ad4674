"""One e-mail pass to a local SMTP sink, next to the raw aiosmtplib ceiling in the same run.

The pass is csm's real one: a sub-campaign workflow on a tuned Temporal dev
server runs its one e-mail pass activity in a worker of this process (contact
policy on, e-mail hours "any"), which fills a template with each contact's
attributes and sends through `SmtpEmail` over `--connections` reused
connections, recording every attempt in the ledger. The ceiling is a bare
asyncio loop: the same messages (same recipients, subject, body and layout)
sent with `aiosmtplib.SMTP.sendmail` over the same number of reused
connections, nothing else. It runs before and after the pass; the ratio is the
pass's rate over the mean of the two. `--compare-email-message` adds a second
pass (another sub-campaign, same list) whose every message is built as an
`EmailMessage` and flattened, as every message was before plain ones were
written straight to bytes.

Both sides send to one counting aiosmtpd sink in a process of its own (storing
a file per message would make the sink what is measured), and the sink's
count must grow by exactly the messages each side reports as sent.

    python bench/email_pass.py --contacts 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import string
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosmtplib
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from bench.stack import bench_servers
from csm.campaigns import create_campaign
from csm.channels import AttemptRequest
from csm.channels.email import SmtpEmail
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.devstack.smtp_sink import MessageCount
from csm.settings import Settings
from csm.smtp import SmtpConfig
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.servers import counting_smtp_sink
from csm.vocabulary import Channel
from worker import build_channels, build_worker
from workflows.subcampaign import SubCampaignWorkflow

SUBJECT = "Payment reminder for $first_name"
TEMPLATE = (
    "Dear $first_name,\n\n"
    "your balance of $balance is $days_past_due days past due.\n"
    "Please pay at your earliest convenience.\n"
)
SENDER = "csm@localhost"
DOMAIN = "csm.local"  # SmtpEmail's Message-ID domain


def strategy_text(connections: int) -> str:
    """One e-mail pass with as many attempts in flight as there are connections."""
    return f"""
timezone = "America/Chicago"
[[passes]]
name = "mail"
channel = "email"
subject = "{SUBJECT}"
template = {json.dumps(TEMPLATE)}
[passes.pacing]
concurrency = {connections}
"""


async def ceiling_messages(engine: AsyncEngine, list_name: str) -> list[tuple[str, bytes]]:
    """(recipient, message) for every e-mail device of the list, as the pass would write
    them: the same template filled with the same attributes, the same header layout."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT c.id, d.id, d.value, c.attributes::text FROM lists l"
                " JOIN list_members m ON m.list_id = l.id JOIN contacts c ON c.id = m.contact_id"
                " JOIN devices d ON d.contact_id = c.id AND d.kind = 'email'"
                " WHERE l.name = :name ORDER BY c.id, d.position"
            ),
            {"name": list_name},
        )
        records = rows.all()
    subject, body = string.Template(SUBJECT), string.Template(TEMPLATE)
    messages = []
    for contact_id, device_id, address, attributes in records:
        values = json.loads(attributes)
        lines = "\r\n".join(body.safe_substitute(values).splitlines())
        message = (
            f"From: {SENDER}\r\nTo: {address}\r\n"
            f"Subject: {subject.safe_substitute(values)}\r\n"
            f"Message-ID: <999999-20261125-1-{contact_id}-{device_id}-0@{DOMAIN}>\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\n"
            f"{lines}\r\n"
        )
        messages.append((address, message.encode("ascii")))
    return messages


async def ceiling(port: int, messages: list[tuple[str, bytes]], connections: int) -> float:
    """Send `messages` over `connections` reused aiosmtplib sessions; seconds taken."""
    started = time.perf_counter()
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port) for _ in range(connections)]
    await asyncio.gather(*(client.connect() for client in clients))
    pending = iter(messages)

    async def lane(client: aiosmtplib.SMTP) -> None:
        for address, message in pending:
            await client.sendmail(SENDER, [address], message)

    await asyncio.gather(*(lane(client) for client in clients))
    took = time.perf_counter() - started
    await asyncio.gather(*(client.quit() for client in clients))
    return took


async def measured_ceiling(
    port: int, count: MessageCount, messages: list[tuple[str, bytes]], connections: int, label: str
) -> float:
    before = count.value
    seconds = await ceiling(port, messages, connections)
    arrived = count.value - before
    if arrived != len(messages):
        raise SystemExit(f"the sink counted {arrived:,} of {len(messages):,} ceiling messages")
    rate = len(messages) / seconds
    print(
        f"ceiling {label} (raw aiosmtplib, {connections} connections): {len(messages):,} messages"
        f" in {seconds:.2f}s = {rate:,.0f} msg/s",
        flush=True,
    )
    return rate


class EmailMessageOnly(SmtpEmail):
    """Every message built as an `EmailMessage` and flattened by aiosmtplib."""

    def plain_bytes(self, request: AttemptRequest) -> bytes | None:
        return None


async def email_pass(
    env: WorkflowEnvironment,
    engine: AsyncEngine,
    settings: Settings,
    count: MessageCount,
    list_name: str,
    *,
    name: str,
    email: SmtpEmail,
) -> float:
    """Run the campaign's e-mail pass through a sub-campaign workflow; its msg/s."""
    queue = f"bench-mail-{uuid.uuid4().hex[:6]}"
    before = count.value
    channels = build_channels(settings)
    channels.providers[Channel.EMAIL] = email
    try:
        async with build_worker(
            env.client, settings, engine=engine, task_queue=queue, channels=channels
        ):
            launched_at = time.perf_counter()
            launched = await start_sub_campaign(
                env.client,
                engine,
                campaign="mail",
                list_name=list_name,
                task_queue=queue,
                name=name,
            )
            await launched.handle.result()
            end_to_end = time.perf_counter() - launched_at
            plan = await launched.handle.query(SubCampaignWorkflow.plan_query)  # needs a worker
    finally:
        await channels.close()
    counts = plan.passes[0].counts
    async with engine.connect() as connection:
        span = (
            await connection.execute(
                text(
                    "SELECT extract(epoch FROM max(updated_at) - min(started_at))"
                    " FROM pass_progress WHERE sub_campaign_id = :s"
                ),
                {"s": launched.sub_campaign.id},
            )
        ).scalar()
    sent = counts.results.get("success", 0)
    arrived = count.value - before
    if arrived != sent:
        raise SystemExit(f"the sink counted {arrived:,} messages, the ledger {sent:,} successes")
    seconds = float(span)
    rate = sent / seconds
    print(
        f"e-mail pass{' (EmailMessage path)' if isinstance(email, EmailMessageOnly) else ''}"
        f" (sub-campaign workflow, contact policy on, {settings.email_connections}"
        f" connections): {counts.selected:,} selected, {sent:,} sent, results"
        f" {dict(counts.results)} in {seconds:.2f}s = {rate:,.0f} msg/s"
        f" ({end_to_end:.2f}s from launch to the workflow's end)",
        flush=True,
    )
    return rate


async def run(contacts: int, connections: int, compare: bool) -> None:
    async with (
        counting_smtp_sink() as (port, count),
        bench_servers(pool_size=4) as (env, engine, url),
    ):
        settings = Settings(
            database_url=url,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_sender=SENDER,
            email_connections=connections,
            _env_file=None,
        )
        started = time.perf_counter()
        await create_synthetic_list(engine, "mail", contacts=contacts, seed=7, email_share=1)
        strategy = strategy_text(connections)
        await create_campaign(engine, "mail", load_strategy(strategy), strategy)
        await set_policy(engine, '[hours]\nemail = "any"\n', campaign="mail")
        messages = await ceiling_messages(engine, "mail")
        size = sum(len(m) for _, m in messages) / len(messages)
        print(
            f"list of {contacts:,} contacts, {len(messages):,} e-mail addresses, messages of"
            f" {size:.0f} bytes on average, ready in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        first = await measured_ceiling(port, count, messages, connections, "before")
        config = SmtpConfig.from_settings(settings)
        ours = await email_pass(
            env,
            engine,
            settings,
            count,
            "mail",
            name="mail",
            email=SmtpEmail(config, connections=connections),
        )
        if compare:
            before = await email_pass(
                env,
                engine,
                settings,
                count,
                "mail",
                name="mail-email-message",
                email=EmailMessageOnly(config, connections=connections),
            )
        second = await measured_ceiling(port, count, messages, connections, "after")
        mean = (first + second) / 2
        print(
            f"e-mail pass / raw ceiling: {ours:,.0f} / {mean:,.0f} msg/s"
            f" = {ours / mean:.2f} (goal >= 0.6)",
            flush=True,
        )
        if compare:
            print(
                f"EmailMessage path / raw ceiling: {before:,.0f} / {mean:,.0f} msg/s"
                f" = {before / mean:.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument(
        "--compare-email-message",
        action="store_true",
        help="also run the pass with every message built as an EmailMessage",
    )
    args = parser.parse_args()
    if args.contacts < 1 or args.connections < 1:
        parser.error("--contacts and --connections must be at least 1")
    asyncio.run(run(args.contacts, args.connections, args.compare_email_message))
    sys.stdout.flush()
    os._exit(0)  # temporalio can crash at interpreter exit after the work succeeded


if __name__ == "__main__":
    main()
